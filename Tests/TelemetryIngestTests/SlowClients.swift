import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a thread of its own and awaits it: tests that block for seconds (sockets, sleeps) must not hold
/// one of Swift Testing's pool threads (two on a 2-core machine), which would starve the other suites.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (at most 65,536): a slow-client test holds
/// hundreds of client and server sockets in one process while other suites run beside it.
func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    let wanted = min(limit.rlim_max, 65_536)
    if limit.rlim_cur < wanted {
        limit.rlim_cur = wanted
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Slowloris clients: raw non-blocking loopback sockets driven by one thread. Each connects, sends the first
/// `opening` bytes of its request at once, then `perTick` more every tick — never the last byte, so its request
/// never completes — and records when the server closed it and with which status (nil: closed without an answer).
final class SlowClients: @unchecked Sendable {   // `lock` guards `outcomes` and `stopRequested`; the sockets belong to the driver thread
    struct Plan {
        var request: [UInt8]
        var opening: Int
        var perTick: Int
    }

    struct Outcome: Sendable {
        /// The status of the response the server sent before closing, nil when it sent none.
        var status: Int?
        /// Seconds from this client's connect to the server's close; nil while open.
        var closedAfter: Double?
    }

    private struct Client {
        var fd: Int32
        var plan: Plan
        var sent: Int
        var connectedAt: Date
        var received: [UInt8] = []
        var open = true
    }

    private let lock = NSLock()
    private var outcomes: [Outcome]
    private var stopRequested = false
    private var clients: [Client] = []
    private let finished = DispatchSemaphore(value: 0)

    /// Connects every client (blocking connects, in order) and sends each one's opening bytes.
    /// - Throws: `WireError.connect` when a connect fails.
    init(port: Int, plans: [Plan]) throws {
        outcomes = Array(repeating: Outcome(), count: plans.count)
        for plan in plans {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw WireError.connect(errno) }
            guard connectToLoopback(fd, port: port) == 0 else {
                let e = errno
                Glibc.close(fd)
                clients.forEach { Glibc.close($0.fd) }
                throw WireError.connect(e)
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var client = Client(fd: fd, plan: plan, sent: 0, connectedAt: Date())
            send(&client, count: plan.opening)
            clients.append(client)
        }
    }

    deinit { clients.forEach { if $0.open { Glibc.close($0.fd) } } }

    /// Starts the driver thread: a tick every `tick` seconds until every client is closed, `seconds` pass or
    /// `stop()`; then the sockets still open are closed by the client.
    func start(tick: Double, forSeconds seconds: Double) {
        Thread { [self] in
            drive(tick: tick, deadline: Date(timeIntervalSinceNow: seconds))
            finished.signal()
        }.start()
    }

    /// Asks the driver to stop at its next wake-up and waits for it.
    func stop() {
        lock.lock()
        stopRequested = true
        lock.unlock()
        finished.wait()
    }

    /// Waits until the driver stopped by itself.
    func waitUntilDone() { finished.wait() }

    /// What happened to each client so far, in plan order.
    var results: [Outcome] { lock.lock(); defer { lock.unlock() }; return outcomes }

    /// Clients the server has not closed yet.
    var openCount: Int { results.filter { $0.closedAfter == nil }.count }

    private var isStopRequested: Bool { lock.lock(); defer { lock.unlock() }; return stopRequested }

    private func drive(tick: Double, deadline: Date) {
        var nextTick = Date()
        while Date() < deadline && !isStopRequested && clients.contains(where: \.open) {
            if Date() >= nextTick {
                for index in clients.indices where clients[index].open {
                    let remaining = clients[index].plan.request.count - 1 - clients[index].sent
                    send(&clients[index], count: min(clients[index].plan.perTick, remaining))
                }
                nextTick = Date(timeIntervalSinceNow: tick)
            }
            // Wait for the server (a response or a close) until the next tick.
            let openIndices = clients.indices.filter { clients[$0].open }
            var descriptors = openIndices.map { pollfd(fd: clients[$0].fd, events: Int16(POLLIN), revents: 0) }
            let waitMs = Int32(max(1, min(nextTick.timeIntervalSinceNow, deadline.timeIntervalSinceNow) * 1000))
            guard poll(&descriptors, nfds_t(descriptors.count), waitMs) > 0 else { continue }
            for (slot, index) in openIndices.enumerated() where descriptors[slot].revents != 0 {
                receive(&clients[index], index: index)
            }
        }
        for index in clients.indices where clients[index].open {
            Glibc.close(clients[index].fd)
            clients[index].open = false
        }
    }

    private func send(_ client: inout Client, count: Int) {
        guard count > 0, client.open else { return }
        let n = client.plan.request.withUnsafeBytes {
            Glibc.send(client.fd, $0.baseAddress! + client.sent, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
        if n > 0 { client.sent += n }
        // EAGAIN: the server is not reading (fine for a slow client); EPIPE/ECONNRESET: closed, seen by receive.
    }

    private func receive(_ client: inout Client, index: Int) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                client.received += chunk[..<n]
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return }
            // EOF or reset: the server closed this client.
            Glibc.close(client.fd)
            client.open = false
            let statusLine = String(decoding: client.received.prefix(32), as: UTF8.self).split(separator: " ")
            let status = statusLine.count >= 2 && statusLine[0].hasPrefix("HTTP/") ? Int(statusLine[1]) : nil
            let outcome = Outcome(status: status, closedAfter: Date().timeIntervalSince(client.connectedAt))
            lock.lock()
            outcomes[index] = outcome
            lock.unlock()
            return
        }
    }
}

/// The latency quantile `q` (0…1) of `samples` (seconds): the smallest sample at or above that share.
func quantile(_ samples: [Double], _ q: Double) -> Double {
    let sorted = samples.sorted()
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}
