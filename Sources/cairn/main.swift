import CairnCLI

if #available(macOS 10.15, *) {
    await CairnCommand.start()
}
