import CairnCore
import DNSWire
import NIOCore

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
        respondPlanned(to: query, client: client, transport: transport, state: state).map { ($0.reply, $0.message) }
    }

    /// A UDP query, answered from `cache` when it holds the answer, else the full way (storing what it worked out
    /// when that can be stored). Writes the reply into `out` and returns the question's type and the rcode; nil
    /// (nothing written) when the packet deserves no reply.
    public func respond(
        toUDP query: UnsafeRawBufferPointer, client: DNSClient, state: RegistryState, cache: inout DNSAnswerCache,
        into out: inout ByteBuffer
    ) -> (type: UInt16, rcode: UInt16)? {
        let mask = resolver.networkMask(client)
        let quick = mask == nil ? nil : DNSAnswerCache.read(query)
        if let quick, let mask {
            let size = resolver.configuration.ednsPayloadSize
            let limit = min(quick.ednsSize.map { max(512, Int($0)) } ?? 512, size)
            if let hit = cache.answer(
                quick, in: query, mask: mask, sequence: state.sequence, limit: limit, ednsPayloadSize: size, into: &out)
            {
                return hit
            }
        }
        guard let (reply, message, plan) = respondPlanned(to: Array(query), client: client.bytes, transport: .udp, state: state) else {
            return nil
        }
        if let quick, let mask, let plan, let question = message.questions.first {
            if quick.dnssecOK, resolver.signing(question, client: client.bytes, state: state) != nil {
                // A signed answer is kept only when every answer holds the same record sets (and so the same RRSIGs).
                cache.storeSigned(
                    quick, in: query, mask: mask, sequence: state.sequence, question: question, plan: plan, reply: message,
                    expiresAt: resolver.signer.readyUntil())
            } else {
                cache.store(quick, in: query, mask: mask, sequence: state.sequence, question: question, plan: plan)
            }
        }
        out.writeBytes(reply)
        return (message.questions.first?.type ?? 0, message.rcode)
    }

    /// Like `respond`, with the plan the answer was drawn from when the resolver answered a question (nil for
    /// errors found before it: FORMERR, NOTIMP, BADVERS).
    func respondPlanned(to query: [UInt8], client: [UInt8], transport: Transport, state: RegistryState) -> (
        reply: [UInt8], message: DNSMessage, plan: DNSAnswerPlan?
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
            return unplanned(encode(DNSMessage(header: header), limit: 512))
        }
        let clientSize = message.edns.map { max(512, Int($0.udpPayloadSize)) } ?? 512
        let limit = transport == .tcp ? 65_535 : min(clientSize, resolver.configuration.ednsPayloadSize)
        var reply = DNSMessage(header: header, questions: message.questions)
        if message.edns != nil { reply.edns = EDNS(udpPayloadSize: UInt16(resolver.configuration.ednsPayloadSize)) }
        if let edns = message.edns, edns.version > 0 {
            reply.header.rcode = DNSRcode.badVers & 0xF
            reply.edns?.extendedRcode = UInt8(DNSRcode.badVers >> 4)
            return unplanned(encode(reply, limit: limit))
        }
        guard header.opcode == 0 else {
            reply.header.rcode = DNSRcode.notImp
            return unplanned(encode(reply, limit: limit))
        }
        guard message.questions.count == 1, let question = message.questions.first else {
            reply.header.rcode = DNSRcode.formErr
            return unplanned(encode(reply, limit: limit))
        }
        let plan = resolver.plan(question, client: client, state: state)
        let signing = message.edns?.dnssecOK == true ? resolver.signing(question, client: client, state: state) : nil
        var rng = SplitMix64(seed: FastSeed.next())
        if signing != nil, let pick = plan.pick, plan.pool.count > pick {
            // A signed answer drawn at random needs a signature for the set drawn. So that a name with many records
            // costs at most `DNSSECSigner.draws` signatures per snapshot and hour, whatever the query rate, the draw
            // is one of that many per snapshot, each as random as any other.
            var hasher = Hasher()
            hasher.combine(question.name)
            hasher.combine(question.type)
            hasher.combine(state.sequence)
            rng = SplitMix64(seed: UInt64(bitPattern: Int64(hasher.finalize())) &+ FastSeed.next() % DNSSECSigner.draws)
        }
        var answer = plan.answer(using: &rng)
        if message.edns?.dnssecOK == true {
            // RFC 3225: the DO bit is copied into the response; a signed zone's answer carries its proofs.
            reply.edns?.dnssecOK = true
            if let (zone, keys) = signing {
                resolver.signer.sign(&answer, question: question, zone: zone, keys: keys) {
                    resolver.typesAt(question.name, zone: zone, client: client, state: state)
                }
            }
        }
        reply.header.rcode = answer.rcode
        reply.header.authoritative = answer.authoritative
        reply.answers = answer.answers
        reply.authority = answer.authority
        let (bytes, sent) = encode(reply, limit: limit)
        return (bytes, sent, plan)
    }

    private func unplanned(_ encoded: (reply: [UInt8], message: DNSMessage)) -> (reply: [UInt8], message: DNSMessage, plan: DNSAnswerPlan?)
    {
        (encoded.reply, encoded.message, nil)
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
