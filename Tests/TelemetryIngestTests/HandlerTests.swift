import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import TelemetryCore
@testable import TelemetryIngest
import Testing

/// An in-memory `SubmissionSink` for `EmbeddedChannel` tests: completes each promise at once, on the caller's
/// (the embedded loop's) thread.
final class MemorySink: SubmissionSink, @unchecked Sendable {   // used on the embedded loop's thread only
    var records: [RawRecord] = []
    var full = false
    var failure: IngestError?
    /// When true, records are kept but not answered: their promises wait in `held` (a log write in progress).
    var hold = false
    var held: [(record: RawRecord, promise: EventLoopPromise<Int>)] = []

    func hasRoom(forBytes bytes: Int) -> Bool { !full }

    func submit(_ record: RawRecord, promise: EventLoopPromise<Int>) -> SubmitOutcome {
        if full { return .full }
        if hold {
            held.append((record, promise))
            return .queued
        }
        if let failure {
            promise.fail(failure)
        } else {
            records.append(record)
            promise.succeed(record.encodedByteCount)
        }
        return .queued
    }
}

/// A response parsed out of the bytes the pipeline wrote.
struct ParsedResponse: Equatable, CustomStringConvertible {
    var status: Int
    var headers: [String: String]
    var body: String
    var description: String { "\(status) \(body)" }
}

/// The full connection pipeline (`IngestServer.configurePipeline`) on an `EmbeddedChannel`, fed raw bytes.
final class EmbeddedConnection {
    let channel = EmbeddedChannel()
    let sink = MemorySink()
    let metrics = IngestMetrics()
    /// The connection's slow-client guard.
    let connectionGuard: ConnectionGuard
    private var pending: [UInt8] = []
    /// Everything the pipeline wrote so far, as text.
    private(set) var rawOutput = ""

    init(_ configure: (inout IngestConfiguration) -> Void = { _ in }) throws {
        var configuration = IngestConfiguration()
        configuration.limits = RawLogLimits(maxPathBytes: 80, maxDataBytes: 100, maxIPBytes: 100)
        configure(&configuration)
        let context = IngestContext(configuration: configuration, metrics: metrics, statsLog: nil, log: { _ in },
                                    metricsText: { "telemetry_ingest_requests_total 0\n" })
        connectionGuard = try IngestServer.configurePipeline(channel, context: context, sink: sink, idleTimeout: .seconds(30))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4242)).wait()
    }

    /// Writes `bytes` in, returns the complete responses written out since the last call.
    func feed(_ bytes: [UInt8]) -> [ParsedResponse] {
        do { try channel.writeInbound(channel.allocator.buffer(bytes: bytes)) } catch {}   // parser errors are handled
        return drain()
    }

    func feed(_ text: String) -> [ParsedResponse] { feed(Array(text.utf8)) }

    func drain() -> [ParsedResponse] {
        while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
            pending += buffer.readableBytesView
            rawOutput += String(buffer: buffer)
        }
        var responses: [ParsedResponse] = []
        while let response = parseOne() {
            if response.status != 100 { responses.append(response) }
        }
        return responses
    }

    var isOpen: Bool { channel.isActive }

    private func parseOne() -> ParsedResponse? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard pending.count >= 4, let end = (0...(pending.count - 4)).first(where: { Array(pending[$0..<($0 + 4)]) == separator }) else {
            return nil
        }
        let head = String(decoding: pending[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let status = Int(head[0].split(separator: " ")[1]) ?? 0
        let length = status == 100 ? 0 : Int(headers["content-length"] ?? "0") ?? 0
        let noBody = headers["x-head-request"] != nil
        guard pending.count >= end + 4 + (noBody ? 0 : length) else { return nil }
        let body = String(decoding: pending[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        pending.removeFirst(end + 4 + length)
        return ParsedResponse(status: status, headers: headers, body: body)
    }
}

/// One request → one response: the §7.1 decision table, row by row.
struct StatusVector: Sendable, CustomTestStringConvertible {
    var name: String
    var request: String
    var status: Int
    var body: String?
    var closes = false
    var stores = false
    var testDescription: String { name }
}

private let submit = "/submit/telemetry/0fdac909-d2ec-454c-b625-261a3e5d5c9b/main/Firefox/40.0/release/20150801000000"

struct HandlerTests {
    static let vectors: [StatusVector] = [
        .init(name: "GET /status", request: "GET /status HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, body: "OK"),
        .init(name: "GET /status with a query is another URL", request: "GET /status?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
              status: 404, body: "Not Found"),
        .init(name: "GET elsewhere", request: "GET /submit/telemetry/x HTTP/1.1\r\nHost: a\r\n\r\n", status: 404, body: "Not Found"),
        .init(name: "PUT", request: "PUT /submit/telemetry/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
              status: 405, body: "Wrong request type"),
        .init(name: "DELETE", request: "DELETE /status HTTP/1.1\r\nHost: a\r\n\r\n", status: 405, body: "Wrong request type"),
        .init(name: "POST without Content-Length", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\n\r\n",
              status: 411, body: "Missing content length"),
        .init(name: "POST with Content-Length 0", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
              status: 411, body: "Missing content length"),
        .init(name: "negative Content-Length", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
              status: 400, body: "Bad request", closes: true),
        .init(name: "unparsable Content-Length", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
              status: 400, body: "Bad request", closes: true),
        .init(name: "body over max_data_length", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n" + String(repeating: "x", count: 101),
              status: 202, body: "Request too large (101 bytes). Limit is 100 bytes. Server will discard submission."),
        .init(name: "body at max_data_length", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + String(repeating: "x", count: 100),
              status: 200, body: "OK", stores: true),
        .init(name: "missing length is checked before the prefix", request: "POST /elsewhere HTTP/1.1\r\nHost: a\r\n\r\n",
              status: 411, body: "Missing content length"),
        .init(name: "size is checked before the prefix", request: "POST /elsewhere HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n" + String(repeating: "x", count: 101),
              status: 202, body: "Request too large (101 bytes). Limit is 100 bytes. Server will discard submission."),
        .init(name: "POST outside the prefix", request: "POST /submit/other/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
              status: 404, body: "Not Found"),
        .init(name: "POST /status", request: "POST /status HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}", status: 404, body: "Not Found"),
        .init(name: "path over max_path_length", request: "POST /submit/telemetry/\(String(repeating: "p", count: 81)) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
              status: 202, body: "Path too long (81 bytes). Limit is 80 bytes"),
        .init(name: "path at max_path_length", request: "POST /submit/telemetry/\(String(repeating: "p", count: 80)) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
              status: 200, body: "OK", stores: true),
        .init(name: "the path limit ignores the query", request: "POST /submit/telemetry/\(String(repeating: "p", count: 80))?\(String(repeating: "q", count: 50)) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
              status: 200, body: "OK", stores: true),
        .init(name: "plain POST", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n{\"ver\":2}",
              status: 200, body: "OK", stores: true),
        .init(name: "chunked POST", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"ve\r\n5\r\nr\":2}\r\n0\r\n\r\n",
              status: 200, body: "OK", stores: true),
        .init(name: "empty chunked POST", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
              status: 411, body: "Missing content length"),
        .init(name: "chunked POST over the limit", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n\(String(repeating: "x", count: 101))\r\n0\r\n\r\n",
              status: 202, body: "Request too large (101 bytes). Limit is 100 bytes. Server will discard submission."),
        .init(name: "Connection: close", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
              status: 200, body: "OK", closes: true, stores: true),
        .init(name: "HTTP/1.0 without keep-alive", request: "POST \(submit) HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
              status: 200, body: "OK", closes: true, stores: true),
        .init(name: "not HTTP", request: "\u{16}\u{03}\u{01}garbage\r\n\r\n", status: 400, body: "Bad request", closes: true),
        .init(name: "rejected Expect: 100-continue closes", request: "POST \(submit) HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n",
              status: 202, body: "Request too large (101 bytes). Limit is 100 bytes. Server will discard submission.", closes: true),
    ]

    @Test(arguments: vectors)
    func decisionTable(_ v: StatusVector) throws {
        let connection = try EmbeddedConnection()
        let responses = connection.feed(v.request)
        try #require(responses.count == 1, "responses: \(responses)")
        #expect(responses[0].status == v.status)
        if let body = v.body { #expect(responses[0].body == body) }
        #expect(responses[0].headers["content-type"] == "text/plain")
        #expect(!connection.isOpen == v.closes)
        #expect(connection.sink.records.count == (v.stores ? 1 : 0))
        #expect(connection.metrics.snapshot.responses[v.status] == 1)
    }

    @Test func metricsUsesThePrometheusContentType() throws {
        let connection = try EmbeddedConnection()
        let responses = connection.feed("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.headers["content-type"] == "text/plain; version=0.0.4")
        #expect(responses.first?.body.contains("telemetry_ingest_requests_total") == true)
    }

    @Test func headGetsHeadersOnly() throws {
        let connection = try EmbeddedConnection()
        _ = connection.feed("HEAD /status HTTP/1.1\r\nHost: a\r\n\r\nGET /status HTTP/1.1\r\nHost: a\r\n\r\n")
        // The HEAD response carries Content-Length but no body; the next response follows directly.
        let text = connection.rawOutput
        #expect(text.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(text.contains("content-length: 18\r\n\r\nHTTP/1.1 200 OK\r\n") || text.contains("Content-Length: 18\r\n\r\nHTTP/1.1 200 OK\r\n"), "\(text)")
        #expect(text.hasSuffix("\r\n\r\nOK"))
    }

    @Test func storedRecordHasThePathAfterThePrefixWithoutTheQuery() throws {
        let connection = try EmbeddedConnection()
        let before = nowMilliseconds()
        let responses = connection.feed("POST \(submit)?v=4#frag HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n{\"ver\":2}")
        let after = nowMilliseconds()
        #expect(responses.map(\.status) == [200])
        let record = try #require(connection.sink.records.first)
        #expect(record.pathString == String(submit.dropFirst("/submit/telemetry/".count)))
        #expect(record.data == Array("{\"ver\":2}".utf8))
        #expect(record.version == .v1 && record.ip == nil)
        #expect((before...after).contains(record.timestamp))
    }

    @Test func absoluteFormTargetsUseTheirPath() throws {
        let connection = try EmbeddedConnection()
        let responses = connection.feed("POST http://example.org\(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
        #expect(responses.map(\.status) == [200])
        #expect(connection.sink.records.first?.pathString == String(submit.dropFirst("/submit/telemetry/".count)))
    }

    @Test func chunkedBodyGivesTheSameRecordAsContentLength() throws {
        let plain = try EmbeddedConnection(), chunked = try EmbeddedConnection()
        _ = plain.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n{\"ver\":2}")
        _ = chunked.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n7\r\nver\":2}\r\n0\r\n\r\n")
        let a = try #require(plain.sink.records.first), b = try #require(chunked.sink.records.first)
        #expect(a.path == b.path && a.data == b.data && a.version == b.version)
    }

    @Test func v2RecordsCarryThePeerAddressOrXForwardedFor() throws {
        let connection = try EmbeddedConnection { $0.includeRequestIP = true }
        _ = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
        _ = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 127.0.0.1, 8.8.8.8\r\nContent-Length: 2\r\n\r\n{}")
        _ = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 8.8.4.4\r\nContent-Length: 2\r\n\r\n{}")
        let long = String(repeating: "1.1.1.1, ", count: 12)
        _ = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: \(long)\r\nContent-Length: 2\r\n\r\n{}")
        let ips = connection.sink.records.map { $0.ipString }
        #expect(ips == ["127.0.0.1", "127.0.0.1, 8.8.8.8", "10.0.0.1, 8.8.4.4", "0.0.0.0"])
        #expect(connection.sink.records.allSatisfy { $0.version == .v2 })
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let connection = try EmbeddedConnection()
        let one = "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n{1}"
        let two = "GET /status HTTP/1.1\r\nHost: a\r\n\r\n"
        let three = "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n{3}"
        let four = "POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n{4}"
        let responses = connection.feed(one + two + three + four)
        let all = responses + connection.drain()
        #expect(all.map(\.status) == [200, 200, 200, 404])
        #expect(connection.sink.records.map { String(decoding: $0.data, as: UTF8.self) } == ["{1}", "{3}"])
        #expect(connection.isOpen)
    }

    @Test func earlyAnswerKeepsTheConnectionUsable() throws {
        // 202 is sent before the body arrives; the body is read and dropped; the next request works.
        let connection = try EmbeddedConnection()
        var responses = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 150\r\n\r\n")
        #expect(responses.map(\.status) == [202])
        responses = connection.feed(String(repeating: "z", count: 150) + "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
        #expect(responses.map(\.status) == [200])
        #expect(connection.sink.records.map(\.data) == [Array("{}".utf8)])
        #expect(connection.isOpen)
    }

    @Test func lyingContentLengthStoresExactlyTheDeclaredBytes() throws {
        // hazards.md BR-02: 100 bytes declared, 300 sent; the excess is parsed as the next request → 400, close.
        let connection = try EmbeddedConnection()
        let declared = String(repeating: "a", count: 100)
        let excess = String(repeating: "b", count: 300)
        let responses = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + declared + excess)
        #expect(responses.map(\.status) == [200, 400])
        #expect(connection.sink.records.map(\.data) == [Array(declared.utf8)])
        #expect(!connection.isOpen)
    }

    @Test func expectContinueIsAnswered() throws {
        let connection = try EmbeddedConnection()
        #expect(connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n").isEmpty)
        #expect(connection.rawOutput.hasPrefix("HTTP/1.1 100 Continue\r\n"))
        let responses = connection.feed("{}")
        #expect(responses.map(\.status) == [200])
        #expect(connection.isOpen)
    }

    @Test func fullQueueAnswers503() throws {
        let connection = try EmbeddedConnection()
        connection.sink.full = true
        let responses = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
        #expect(responses.map(\.status) == [503])
        #expect(responses.first?.body == "Server busy, try again later")
        #expect(connection.isOpen)
    }

    @Test func writeFailureAnswers500WithTheOSMessage() throws {
        let connection = try EmbeddedConnection()
        connection.sink.failure = .io(path: "/x", operation: "write", errno: ENOSPC, message: "No space left on device")
        let responses = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}")
        #expect(responses.map(\.status) == [500])
        #expect(responses.first?.body == "No space left on device")
        #expect(connection.isOpen)
        connection.sink.failure = nil
        #expect(connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}").map(\.status) == [200])
    }

    @Test func requestTimeoutAnswers408AndCloses() throws {
        let connection = try EmbeddedConnection { $0.requestTimeout = .seconds(5) }
        #expect(connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n{\"a\"").isEmpty)
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(connection.drain().map(\.status) == [408])
        #expect(!connection.isOpen)
        #expect(connection.sink.records.isEmpty)
    }

    @Test func storedPathParsing() {
        let prefix = Array("/submit/telemetry/".utf8)
        #expect(IngestHandler.storedPath(uri: "/submit/telemetry/a/b?c", prefix: prefix) == Array("a/b".utf8))
        #expect(IngestHandler.storedPath(uri: "/submit/telemetry/", prefix: prefix) == [])
        #expect(IngestHandler.storedPath(uri: "/submit/telemetry", prefix: prefix) == nil)
        #expect(IngestHandler.storedPath(uri: "/Submit/telemetry/a", prefix: prefix) == nil)
        #expect(IngestHandler.storedPath(uri: "https://h:1/submit/telemetry/a%20b", prefix: prefix) == Array("a%20b".utf8))
        #expect(IngestHandler.storedPath(uri: "/submit/telemetry//x/y", prefix: prefix) == Array("/x/y".utf8))
    }
}
