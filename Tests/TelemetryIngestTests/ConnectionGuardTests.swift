import Foundation
import NIOCore
import NIOEmbedded
@testable import TelemetryIngest
import Testing

private let submit = "/submit/telemetry/0fdac909-d2ec-454c-b625-261a3e5d5c9b/main/Firefox/40.0/release/20150801000000"

/// The slow-client rules (`ConnectionGuard`) on an `EmbeddedChannel`, whose clock the tests advance: exact times,
/// no waiting.
struct ConnectionGuardTests {
    static func rules(_ c: inout IngestConfiguration) {
        c.headTimeout = .seconds(10)
        c.requestTimeout = .seconds(30)
        c.minBytesPerSecond = 100
        c.minRateGrace = .seconds(5)
        c.minRateWindow = .seconds(5)
    }

    @Test func aHeadThatNeverCompletesIsAnswered408AtTheHeadTimeout() throws {
        let connection = try EmbeddedConnection(Self.rules)
        let loop = connection.channel.embeddedEventLoop
        #expect(connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\n").isEmpty)
        for _ in 0..<19 {   // 1,000 bytes every 500 ms: well above the minimum rate, but the head never ends
            loop.advanceTime(by: .milliseconds(500))
            #expect(connection.feed("X-Padding: " + String(repeating: "p", count: 987) + "\r\n").isEmpty)
        }
        #expect(connection.isOpen)
        loop.advanceTime(by: .milliseconds(500))   // 10 s after the accept
        let responses = connection.drain()
        #expect(responses.map(\.status) == [408])
        #expect(responses.first?.body == "Request timeout" && responses.first?.headers["connection"] == "close")
        #expect(!connection.isOpen)
        #expect(connection.metrics.snapshot.timeouts == [IngestTimeout(.head, .timeout): 1])
        #expect(connection.metrics.snapshot.responses == [408: 1])
    }

    @Test func aTricklingHeadIsCutByTheMinimumRate() throws {
        let connection = try EmbeddedConnection {
            Self.rules(&$0)
            $0.headTimeout = .seconds(20)
        }
        let loop = connection.channel.embeddedEventLoop
        _ = connection.feed("POST \(submit) HTTP/1.1\r\nX-Slow: ")
        // 10 bytes a second: after the 5 s grace, the window [5 s, 10 s) brings 50 bytes, below 100 B/s × 5 s.
        for _ in 0..<9 {
            loop.advanceTime(by: .seconds(1))
            #expect(connection.feed("aaaaaaaaaa").isEmpty)
        }
        #expect(connection.isOpen)
        loop.advanceTime(by: .seconds(1))
        #expect(connection.drain().map(\.status) == [408])
        #expect(!connection.isOpen)
        #expect(connection.metrics.snapshot.timeouts == [IngestTimeout(.head, .minRate): 1])
    }

    @Test func aTricklingBodyIsCutByTheMinimumRateAndNothingIsStored() throws {
        let connection = try EmbeddedConnection(Self.rules)
        let loop = connection.channel.embeddedEventLoop
        _ = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 90\r\n\r\n")
        var responses: [ParsedResponse] = []
        for _ in 0..<12 {   // 1 byte every 900 ms; the window [5 s, 10 s) brings 5 bytes
            loop.advanceTime(by: .milliseconds(900))
            responses += connection.feed("b")
        }
        #expect(responses.map(\.status) == [408])
        #expect(!connection.isOpen)
        #expect(connection.sink.records.isEmpty)
        #expect(connection.metrics.snapshot.timeouts == [IngestTimeout(.body, .minRate): 1])
    }

    @Test func aBodyAtTheMinimumRateIsServed() throws {
        let connection = try EmbeddedConnection {
            Self.rules(&$0)
            $0.limits.maxDataBytes = 10_000
        }
        let loop = connection.channel.embeddedEventLoop
        _ = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 2200\r\n\r\n")
        var responses: [ParsedResponse] = []
        for _ in 0..<20 {   // 110 B/s for 20 s
            loop.advanceTime(by: .seconds(1))
            responses += connection.feed(Array(repeating: UInt8(ascii: "b"), count: 110))
        }
        #expect(responses.map(\.status) == [200])
        #expect(connection.sink.records.count == 1)
        #expect(connection.metrics.snapshot.timeoutCount == 0)
    }

    @Test func aConnectionThatNeverSendsAByteIsClosedWithoutAnAnswer() throws {
        let connection = try EmbeddedConnection(Self.rules)
        connection.channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(connection.drain().isEmpty)
        #expect(!connection.isOpen)
        #expect(connection.metrics.snapshot.timeouts == [IngestTimeout(.head, .timeout): 1])
        #expect(connection.metrics.snapshot.requests == 0)
    }

    @Test func keepAliveWaitsForTheIdleTimeoutAndTheHeadTimerStartsAtTheFirstByte() throws {
        let connection = try EmbeddedConnection(Self.rules)
        let loop = connection.channel.embeddedEventLoop
        #expect(connection.feed("GET /status HTTP/1.1\r\nHost: a\r\n\r\n").map(\.status) == [200])
        loop.advanceTime(by: .seconds(20))   // longer than the head timeout: between requests it does not apply
        #expect(connection.isOpen)
        _ = connection.feed("GET /sta")
        loop.advanceTime(by: .seconds(9))
        #expect(connection.isOpen)
        loop.advanceTime(by: .seconds(1))
        #expect(connection.drain().map(\.status) == [408])
        #expect(!connection.isOpen)
        #expect(connection.metrics.snapshot.timeouts == [IngestTimeout(.head, .timeout): 1])
    }

    @Test func theRequestTimeoutStillBoundsABodyAboveTheMinimumRate() throws {
        let connection = try EmbeddedConnection {
            Self.rules(&$0)
            $0.limits.maxDataBytes = 100_000
        }
        let loop = connection.channel.embeddedEventLoop
        _ = connection.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 90000\r\n\r\n")
        for _ in 0..<29 {
            loop.advanceTime(by: .seconds(1))
            _ = connection.feed(Array(repeating: UInt8(ascii: "b"), count: 1_000))
        }
        #expect(connection.isOpen)
        loop.advanceTime(by: .seconds(1))
        #expect(connection.drain().map(\.status) == [408])
        #expect(connection.metrics.snapshot.timeouts == [IngestTimeout(.body, .timeout): 1])
    }

    /// Shedding order: a request being written to the log is never shed, whatever its age; of the others, the
    /// one idle the longest goes first; a body arriving at the minimum rate is not shed.
    @Test func sheddingSparesRequestsBeingWrittenAndPicksTheOldestIdle() throws {
        func rules(_ c: inout IngestConfiguration) {
            Self.rules(&c)
            c.limits.maxDataBytes = 10_000
        }
        let writing = try EmbeddedConnection(rules)
        writing.sink.hold = true
        let idle = try EmbeddedConnection(rules)
        let fastBody = try EmbeddedConnection(rules)
        let slowBody = try EmbeddedConnection(rules)
        // All were accepted at t = 0 (each on its own loop); the idle one finishes a request at 2 s.
        idle.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(idle.feed("GET /status HTTP/1.1\r\nHost: a\r\n\r\n").map(\.status) == [200])
        #expect(writing.feed("POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}").isEmpty)
        #expect(writing.connectionGuard.phase == .writing)
        let head = "POST \(submit) HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n"
        _ = fastBody.feed(head + String(repeating: "b", count: 900))   // 900 bytes: 180 B/s over a 5 s window
        _ = slowBody.feed(head + String(repeating: "b", count: 60))    // 60 bytes: 12 B/s

        #expect(writing.connectionGuard.sheddingSince(now: 3_000_000_000) == nil)
        #expect(idle.connectionGuard.sheddingSince(now: 3_000_000_000) == 2_000_000_000)
        #expect(fastBody.connectionGuard.sheddingSince(now: 1_000_000_000) == nil)
        #expect(slowBody.connectionGuard.sheddingSince(now: 1_000_000_000) == 0)
        let registry = LoopConnections()
        for connection in [writing, idle] { registry.guards[ObjectIdentifier(connection.connectionGuard)] = connection.connectionGuard }
        let none = ObjectIdentifier(registry)
        #expect(registry.oldestSheddable(sparing: none, now: 3_000_000_000) === idle.connectionGuard)
        registry.guards[ObjectIdentifier(idle.connectionGuard)] = nil
        #expect(registry.oldestSheddable(sparing: none, now: 3_000_000_000) == nil)

        // Once written and answered, the request's connection is idle and may go.
        writing.sink.held.first?.promise.succeed(20)
        #expect(writing.drain().map(\.status) == [200])
        #expect(writing.connectionGuard.phase == .waiting)
        #expect(registry.oldestSheddable(sparing: none, now: 3_000_000_000) === writing.connectionGuard)
    }
}
