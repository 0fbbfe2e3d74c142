/// Why bytes are not a DNS message. Servers answer FORMERR (or drop the packet when even the header is unreadable).
public enum DNSParseError: Error, Sendable, Equatable {
    case truncated
    case badPointer
    case labelTooLong
    case nameTooLong
    case badLabelType
    case badOPT
    case trailingBytes
}
