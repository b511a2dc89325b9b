import Foundation
import NIOCore
import TelemetryCompression
import TelemetryCore
@testable import TelemetryIngest
import TelemetryTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A response as a test client read it off the wire.
struct WireResponse: Sendable {
    var status: Int
    /// Header names lowercased; the last value wins.
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
}

enum WireError: Error, CustomStringConvertible {
    case connect(Int32), send(Int32), closed, timeout, malformed(String)
    var description: String {
        switch self {
        case let .connect(e): "connect failed (errno \(e))"
        case let .send(e): "send failed (errno \(e))"
        case .closed: "connection closed by the server"
        case .timeout: "timed out"
        case let .malformed(s): "malformed response: \(s)"
        }
    }
}

/// A blocking HTTP/1.1 client on a raw loopback socket, so tests control every byte (lying lengths, slow bodies,
/// pipelining, disconnects). Every read has a timeout, so no test can hang.
final class WireClient {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var isOpen = true

    init(port: Int, timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw WireError.connect(errno) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        guard connectToLoopback(fd, port: port) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw WireError.connect(e)
        }
    }

    deinit { close() }

    func close() {
        if isOpen { Glibc.close(fd); isOpen = false }
    }

    /// Closes with an RST instead of a FIN (SO_LINGER 0): an abrupt disconnect.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw WireError.send(errno)
            }
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 { buffer.append(contentsOf: chunk[..<n]); return }
            if n == 0 { throw WireError.closed }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw WireError.timeout }
            if errno == ECONNRESET { throw WireError.closed }
            throw WireError.malformed("recv errno \(errno)")
        }
    }

    /// Reads one final response (skipping `100 Continue`).
    func readResponse() throws -> WireResponse {
        while true {
            var headerEnd: Int?
            while headerEnd == nil {
                if let range = findHeaderEnd() { headerEnd = range } else { try fill() }
            }
            guard let end = headerEnd else { throw WireError.malformed("no header end") }
            let headText = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeFirst(end + 4)
            var lines = headText.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ")
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw WireError.malformed(headText) }
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            if status == 100 { continue }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            while buffer.count < length { try fill() }
            let body = Array(buffer[..<length])
            buffer.removeFirst(length)
            return WireResponse(status: status, headers: headers, body: body)
        }
    }

    /// Reads one response whose headers only (HEAD request): no body follows.
    private func findHeaderEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 0...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }

    /// True when the server closes the connection (EOF or reset) within `seconds` without sending more bytes.
    func serverClosed(withinSeconds seconds: Double = 5) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(seconds * 1000))
        guard ready > 0 else { return false }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK))
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// A request's bytes: `Content-Length` from `body` unless `headers` has one or says chunked.
    static func request(_ method: String, _ target: String, body: [UInt8] = [], headers: [(String, String)] = []) -> [UInt8] {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        let hasLength = headers.contains { $0.0.lowercased() == "content-length" || $0.0.lowercased() == "transfer-encoding" }
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !hasLength && (method == "POST" || !body.isEmpty) { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + body
    }

    /// One request on a new connection.
    static func exchange(port: Int, _ method: String, _ target: String, body: [UInt8] = [],
                         headers: [(String, String)] = []) throws -> WireResponse {
        let client = try WireClient(port: port)
        try client.send(request(method, target, body: body, headers: headers))
        return try client.readResponse()
    }

    /// A chunked body: `chunks`, each as `<hex size>\r\n<bytes>\r\n`, then the last chunk.
    static func chunked(_ chunks: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for chunk in chunks where !chunk.isEmpty {
            out += Array("\(String(chunk.count, radix: 16))\r\n".utf8) + chunk + Array("\r\n".utf8)
        }
        return out + Array("0\r\n\r\n".utf8)
    }
}

/// A live `IngestServer` on 127.0.0.1, an ephemeral port and its own temporary log directory.
final class LiveServer: @unchecked Sendable {   // `lock` guards `stopped`; the rest is immutable
    let directory: TemporaryDirectory
    let server: IngestServer
    let port: Int
    let finished = FinishedFiles()
    private let lock = NSLock()
    private var stopped = false

    var logPath: String { server.configuration.logPath }

    init(operations: LogFileOperations = .posix, label: String = "ingest",
         _ configure: (inout IngestConfiguration) -> Void = { _ in }) throws {
        directory = TemporaryDirectory(label)
        var configuration = IngestConfiguration()
        configuration.port = 0
        configuration.logPath = directory.path + "/logs"
        configuration.eventLoopThreads = 2
        configure(&configuration)
        let finished = self.finished
        server = try IngestServer(configuration: configuration, log: { _ in }, onFinishedFile: { finished.add($0) },
                                  fileOperations: operations)
        port = try server.start()
    }

    deinit { stop() }

    /// Graceful shutdown (idempotent): afterwards every file is finished.
    func stop() {
        lock.lock()
        let first = !stopped
        stopped = true
        lock.unlock()
        if first { server.shutdown(gracePeriod: .seconds(5)) }
    }

    func post(_ path: String, _ body: [UInt8], headers: [(String, String)] = []) throws -> WireResponse {
        try WireClient.exchange(port: port, "POST", server.configuration.urlPrefix + path, body: body, headers: headers)
    }

    /// Every record in the log directory (finished and unfinished files), read with the tolerant reader; fails the
    /// test on any damage.
    func records(finishedOnly: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws -> [RawRecord] {
        try readRecords(directory: logPath, finishedOnly: finishedOnly, sourceLocation: sourceLocation)
    }
}

/// The `.finished` paths a server reported, in order.
final class FinishedFiles: @unchecked Sendable {   // `lock` guards `paths`
    private let lock = NSLock()
    private var paths: [String] = []
    func add(_ path: String) { lock.lock(); paths.append(path); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return paths }
}

/// Log files in `directory`, sorted by name.
func logFiles(_ directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted().map { directory + "/" + $0 }
}

/// Reads every record of every log file in `directory` (the version from the name tag), expecting no damage.
func readRecords(directory: String, finishedOnly: Bool = false,
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> [RawRecord] {
    var records: [RawRecord] = []
    for path in logFiles(directory) where !finishedOnly || path.hasSuffix(".finished") {
        let reader = try RawLogReader(path: path, version: RawLogVersion.nameHint(forPath: path))
        try reader.forEach(record: { records.append($0) },
                           event: { Issue.record("damage in \(path): \($0)", sourceLocation: sourceLocation) })
    }
    return records
}

/// Test payloads: the real pings of `../shared/datasets/real/raw-logs` (gzip and plain) and generated ones.
enum Pings {
    /// The bodies of the real raw logs: an 18,255-byte gzip idle-daily ping, a 2,488-byte gzip and a 5,369-byte
    /// plain saved-session ping.
    static let real: [[UInt8]] = {
        var bodies: [[UInt8]] = []
        for name in ["telemetry1.log", "unicode.v1.packed"] {
            guard let reader = try? RawLogReader(path: Fixtures.sharedPath("datasets/real/raw-logs/\(name)"), version: .v1) else { continue }
            try? reader.forEach(record: { bodies.append($0.data) })
        }
        return bodies
    }()

    /// A JSON ping of about `bytes` bytes, different for each `seed`.
    static func json(bytes: Int, seed: Int) -> [UInt8] {
        var text = "{\"ver\":4,\"type\":\"main\",\"id\":\"\(UUID(seed: seed))\",\"payload\":\""
        var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 | 1
        while text.utf8.count < bytes - 2 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            text.append(Character(UnicodeScalar(UInt8(97 + state % 26))))
        }
        return Array((text + "\"}").utf8)
    }

    /// `json(bytes:seed:)` gzipped.
    static func gzipJSON(bytes: Int, seed: Int) -> [UInt8] { Gzip.compress(json(bytes: bytes, seed: seed)) }

    /// Exactly `count` pseudo-random bytes.
    static func random(count: Int, seed: Int) -> [UInt8] {
        var state = UInt64(truncatingIfNeeded: seed) &* 0x2545_F491_4F6C_DD1D | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    /// A submission path for `documentID`.
    static func path(_ documentID: String, reason: String = "main") -> String {
        "\(documentID)/\(reason)/Firefox/40.0/release/20150801000000"
    }
}

extension UUID {
    /// A deterministic UUID for `seed`.
    init(seed: Int) {
        let s = String(format: "%08x-0000-4000-8000-%012x", seed & 0xFFFF_FFFF, seed)
        self = UUID(uuidString: s) ?? UUID()
    }
}

/// Wall-clock ms now (for timestamp windows).
func nowMilliseconds() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

/// Polls `condition` every 10 ms until true or `seconds` pass.
func eventually(seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(10_000)
    }
    return try condition()
}

/// Spawns `executable` with `posix_spawn` (no signal blocked in the child) and waits for it; returns its pid.
func spawnAndWait(_ executable: String, _ arguments: [String] = []) throws -> pid_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, nil, &attributes, argv, environ)
    guard rc == 0 else { throw WireError.connect(rc) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return pid
}

/// Connects the socket `fd` to 127.0.0.1:`port` (blocking). Returns `connect(2)`'s result: 0, or -1 with `errno` set.
func connectToLoopback(_ fd: Int32, port: Int) -> Int32 {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}
