import CairnCore
import DNSWire

/// Bytes in, bytes out: parsing, opcode and EDNS handling, size limits. Pure, so it is tested with tables
/// and fuzzed without sockets.
public struct DNSResponder: Sendable {
    public enum Transport: Sendable { case udp, tcp }

    public let resolver: DNSResolver

    public init(resolver: DNSResolver) { self.resolver = resolver }

    /// The reply to a query, or nil when the packet deserves no answer (not even a readable header, or a response).
    public func respond(to query: [UInt8], client: [UInt8], transport: Transport, state: RegistryState) -> (
        reply: [UInt8], message: DNSMessage
    )? {
        guard query.count >= 12 else { return nil }
        let id = UInt16(query[0]) << 8 | UInt16(query[1])
        let flags = UInt16(query[2]) << 8 | UInt16(query[3])
        guard flags & 0x8000 == 0 else { return nil }  // a response: never answer, or two servers could loop
        var header = DNSHeader(id: id, flags: (flags & 0x7900) | 0x8000)  // keep opcode and RD; QR set
        let message: DNSMessage
        do {
            message = try DNSMessage.parse(query)
        } catch {
            header.rcode = DNSRcode.formErr
            return encode(DNSMessage(header: header), limit: 512)
        }
        let clientSize = message.edns.map { max(512, Int($0.udpPayloadSize)) } ?? 512
        let limit = transport == .tcp ? 65_535 : min(clientSize, resolver.configuration.ednsPayloadSize)
        var reply = DNSMessage(header: header, questions: message.questions)
        if message.edns != nil { reply.edns = EDNS(udpPayloadSize: UInt16(resolver.configuration.ednsPayloadSize)) }
        if let edns = message.edns, edns.version > 0 {
            reply.header.rcode = DNSRcode.badVers & 0xF
            reply.edns?.extendedRcode = UInt8(DNSRcode.badVers >> 4)
            return encode(reply, limit: limit)
        }
        guard header.opcode == 0 else {
            reply.header.rcode = DNSRcode.notImp
            return encode(reply, limit: limit)
        }
        guard message.questions.count == 1, let question = message.questions.first else {
            reply.header.rcode = DNSRcode.formErr
            return encode(reply, limit: limit)
        }
        let answer = resolver.answer(question, client: client, state: state)
        reply.header.rcode = answer.rcode
        reply.header.authoritative = answer.authoritative
        reply.answers = answer.answers
        reply.authority = answer.authority
        return encode(reply, limit: limit)
    }

    func encode(_ message: DNSMessage, limit: Int) -> (reply: [UInt8], message: DNSMessage) {
        let (bytes, truncated) = message.encode(maxSize: limit)
        var sent = message
        if truncated {
            sent.header.truncated = true
            sent.answers = []
            sent.authority = []
            sent.additional = []
        }
        return (bytes, sent)
    }
}
