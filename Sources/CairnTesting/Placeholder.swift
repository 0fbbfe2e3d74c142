enum _PlaceholderCairnTesting {}
