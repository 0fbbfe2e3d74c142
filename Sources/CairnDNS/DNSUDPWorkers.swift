import CCairnSocket
import CairnCore
import DNSWire
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// UDP queries answered on threads of their own, one socket each (SO_REUSEPORT on one port): a blocking `recvmmsg`
/// takes up to `batch` queries at once, they are answered in place, and one `sendmmsg` sends their replies.
///
/// Why not a NIO datagram channel: a query is a few microseconds of work, and on an event loop each wake-up paid for
/// an `epoll_wait`, an envelope and a buffer per message, the pipeline and the write queue, more than the answer
/// itself (docs/performance.md). Here a busy socket costs two system calls per batch and no allocation per query
/// once the ready answers hold the question. The sockets are plain file descriptors owned by this object; each thread
/// uses only its own, its buffers and its `DNSAnswerCache`.
final class DNSUDPWorkers: Sendable {
    /// Queries taken per `recvmmsg`, and replies sent per `sendmmsg`.
    static let batch = 32
    /// Bytes kept per query: larger datagrams are cut (a query needs a few hundred at most). Also the room per
    /// reply in the send buffer (`dns.ednsPayloadSize` is at most 4096); a larger reply is sent on its own.
    static let slot = 4096

    let port: Int
    private let sockets: [Int32]
    private let stopping: Atomic<Bool>
    private let pool: NIOThreadPool

    struct BindError: Error, CustomStringConvertible {
        let call: String
        let code: Int32
        var description: String { "DNS UDP \(call) failed: \(String(cString: strerror(code)))" }
    }

    /// Binds `count` sockets on `address` (port 0: a free one, the same for all) and starts a thread for each.
    static func bind(address: SocketAddress, count: Int, answerer: DNSQueryAnswerer, rateLimit: DNSRateLimit) throws -> DNSUDPWorkers {
        var sockets: [Int32] = []
        var address = address
        do {
            for _ in 0..<max(1, count) {
                let fd = try openSocket(address)
                sockets.append(fd)
                if address.port == 0 || address.port == nil { address = try localAddress(fd) }
            }
        } catch {
            for fd in sockets { Glibc.close(fd) }
            throw error
        }
        let workers = DNSUDPWorkers(port: address.port ?? 0, sockets: sockets)
        workers.start(answerer: answerer, rateLimit: rateLimit)
        return workers
    }

    private init(port: Int, sockets: [Int32]) {
        self.port = port
        self.sockets = sockets
        self.stopping = Atomic(false)
        self.pool = NIOThreadPool(numberOfThreads: sockets.count)
    }

    private func start(answerer: DNSQueryAnswerer, rateLimit: DNSRateLimit) {
        pool.start()
        for fd in sockets {
            pool.submit { [self] _ in
                var worker = DNSUDPWorker(fd: fd, answerer: answerer, rateLimit: rateLimit)
                worker.run(until: stopping)
                worker.deallocate()
            }
        }
    }

    /// Stops every thread (a blocked receive is woken by `shutdown`, or within its 0.5 s timeout) and closes the sockets.
    func close() async {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for fd in sockets { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        // The pool's threads end once their loops have (each sees the flag), and only then are the sockets closed.
        try? await pool.shutdownGracefully()
        for fd in sockets { _ = Glibc.close(fd) }
    }

    private static func openSocket(_ address: SocketAddress) throws -> Int32 {
        let family: Int32 = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BindError(call: "socket", code: errno) }
        func set(_ level: Int32, _ name: Int32, _ value: Int32) {
            var value = value
            _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
        set(SOL_SOCKET, SO_REUSEADDR, 1)
        set(SOL_SOCKET, SO_REUSEPORT, 1)
        // Room for bursts: a full receive buffer drops queries silently.
        set(SOL_SOCKET, SO_RCVBUF, 4 << 20)
        set(SOL_SOCKET, SO_SNDBUF, 4 << 20)
        // The thread looks at its stop flag at least twice a second when no query comes.
        var timeout = timeval(tv_sec: 0, tv_usec: 500_000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bound = address.withSockAddr { pointer, length in Glibc.bind(fd, pointer, socklen_t(length)) }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw BindError(call: "bind to \(address)", code: code)
        }
        return fd
    }

    private static func localAddress(_ fd: Int32) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let got = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard got == 0, let address = socketAddress(&storage) else { throw BindError(call: "getsockname", code: errno) }
        return address
    }

    /// The NIO address of a received `sockaddr_storage` (for the query log), nil for a family other than IP.
    static func socketAddress(_ storage: UnsafePointer<sockaddr_storage>) -> SocketAddress? {
        switch Int32(storage.pointee.ss_family) {
        case AF_INET: return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee) }
        case AF_INET6: return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee) }
        default: return nil
        }
    }
}

/// One thread's socket, buffers and ready answers. Its memory is allocated once and used by that thread only.
private struct DNSUDPWorker {
    let fd: Int32
    let answerer: DNSQueryAnswerer
    var limiter: ResponseRateLimiter
    var cache = DNSAnswerCache()
    /// The reply being built; cleared, not reallocated, for each query.
    var out = ByteBufferAllocator().buffer(capacity: DNSUDPWorkers.slot)
    let queries: UnsafeMutableRawPointer
    let replies: UnsafeMutableRawPointer
    let names: UnsafeMutablePointer<sockaddr_storage>
    let receiveVectors: UnsafeMutablePointer<iovec>
    let sendVectors: UnsafeMutablePointer<iovec>
    let received: UnsafeMutablePointer<CCairnSocket_mmsghdr>
    let sending: UnsafeMutablePointer<CCairnSocket_mmsghdr>

    init(fd: Int32, answerer: DNSQueryAnswerer, rateLimit: DNSRateLimit) {
        let batch = DNSUDPWorkers.batch
        let slot = DNSUDPWorkers.slot
        self.fd = fd
        self.answerer = answerer
        self.limiter = ResponseRateLimiter(perSecond: rateLimit.responsesPerSecond, slip: rateLimit.slip)
        queries = UnsafeMutableRawPointer.allocate(byteCount: batch * slot, alignment: 16)
        replies = UnsafeMutableRawPointer.allocate(byteCount: batch * slot, alignment: 16)
        names = .allocate(capacity: batch)
        names.initialize(repeating: sockaddr_storage(), count: batch)
        receiveVectors = .allocate(capacity: batch)
        sendVectors = .allocate(capacity: batch)
        received = .allocate(capacity: batch)
        sending = .allocate(capacity: batch)
        for i in 0..<batch {
            receiveVectors[i] = iovec(iov_base: queries + i * slot, iov_len: slot)
            sendVectors[i] = iovec(iov_base: replies + i * slot, iov_len: 0)
            received[i] = CCairnSocket_mmsghdr()
            sending[i] = CCairnSocket_mmsghdr()
        }
    }

    func deallocate() {
        queries.deallocate()
        replies.deallocate()
        names.deallocate()
        receiveVectors.deallocate()
        sendVectors.deallocate()
        received.deallocate()
        sending.deallocate()
    }

    mutating func run(until stopping: borrowing Atomic<Bool>) {
        let batch = DNSUDPWorkers.batch
        while !stopping.load(ordering: .relaxed) {
            for i in 0..<batch {
                received[i].msg_hdr = msghdr(
                    msg_name: UnsafeMutableRawPointer(names + i), msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                    msg_iov: receiveVectors + i, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
                received[i].msg_len = 0
            }
            // Waits for the first query (up to the receive timeout), then takes what else is queued without waiting.
            let count = Int(CCairnSocket_recvmmsg(fd, received, UInt32(batch), CCairnSocket_MSG_WAITFORONE, nil))
            guard count > 0 else {
                // 0: the socket was shut down (the stop flag says so). EAGAIN: the receive timeout. EINTR. ECONNREFUSED
                // and the like: an ICMP error about an earlier reply, reported once. None stops the server; anything
                // else (out of kernel memory, say) is retried after a pause rather than in a tight loop.
                if count < 0 {
                    switch errno {
                    case EBADF: return
                    case EAGAIN, EWOULDBLOCK, EINTR, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN: break
                    default: usleep(10_000)
                    }
                }
                continue
            }
            var replyCount = 0
            for i in 0..<count {
                let query = UnsafeRawBufferPointer(start: queries + i * DNSUDPWorkers.slot, count: Int(received[i].msg_len))
                if answer(query, from: names + i, into: replyCount) {
                    sending[replyCount].msg_hdr = msghdr(
                        msg_name: UnsafeMutableRawPointer(names + i), msg_namelen: received[i].msg_hdr.msg_namelen,
                        msg_iov: sendVectors + replyCount, msg_iovlen: 1, msg_control: nil, msg_controllen: 0, msg_flags: 0)
                    sending[replyCount].msg_len = 0
                    replyCount += 1
                }
            }
            send(replyCount)
        }
    }

    /// Answers one query into reply slot `index` (or sends a reply too large for it at once); false when nothing is
    /// to go out in the batch for it.
    private mutating func answer(_ query: UnsafeRawBufferPointer, from name: UnsafeMutablePointer<sockaddr_storage>, into index: Int)
        -> Bool
    {
        let client = DNSClient(sockaddr: name)
        out.clear()
        guard answerer.reply(toUDP: query, client: client, address: { DNSUDPWorkers.socketAddress(name) }, cache: &cache, into: &out)
        else { return false }
        if limiter.perSecond > 0 {
            switch limiter.verdict(for: client.bytes, now: Double(NIODeadline.now().uptimeNanoseconds) / 1e9) {
            case .send: break
            case .drop: return false
            case .slip:
                // Header and question only, TC set: the client learns to ask over TCP.
                let reply = Array(out.readableBytesView)
                guard reply.count >= 12, let question = try? DNSMessage.parse(reply) else { return false }
                var truncated = DNSMessage(header: question.header, questions: question.questions)
                truncated.header.truncated = true
                out.clear()
                out.writeBytes(truncated.encode().bytes)
            }
        }
        let length = out.readableBytes
        guard length <= DNSUDPWorkers.slot else {
            let namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = out.withUnsafeReadableBytes { bytes in
                name.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, namelen) }
            }
            return false
        }
        return out.withUnsafeReadableBytes { bytes in
            guard length > 0, let base = bytes.baseAddress else { return false }
            (replies + index * DNSUDPWorkers.slot).copyMemory(from: base, byteCount: length)
            sendVectors[index].iov_len = length
            return true
        }
    }

    /// Sends the batch's replies; a reply the kernel refuses (an unreachable client) is dropped, the rest still go.
    private func send(_ count: Int) {
        var sent = 0
        while sent < count {
            let result = Int(CCairnSocket_sendmmsg(fd, sending + sent, UInt32(count - sent), 0))
            if result > 0 {
                sent += result
            } else if result < 0 && errno == EINTR {
                continue
            } else {
                sent += 1
            }
        }
    }
}
