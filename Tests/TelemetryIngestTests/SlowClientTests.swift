import Foundation
import TelemetryCore
@testable import TelemetryIngest
import TelemetryTestSupport
import Testing

/// Slowloris over loopback (issue 18 item 1): 300 slow clients against a live server while normal submissions go
/// on. Serialized: each test holds hundreds of sockets; the waiting runs on a thread of its own.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct SlowClientTests {
    static let submitPath = "/submit/telemetry/" + Pings.path("0fdac909-d2ec-454c-b625-261a3e5d5c9b")

    /// A POST head that never ends: the request line, then `padding` header lines of 40 bytes.
    static func endlessHead(padding: Int) -> [UInt8] {
        var text = "POST \(submitPath) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for index in 0..<padding { text += "X-Padding-\(String(format: "%05d", index)): \(String(repeating: "p", count: 22))\r\n" }
        return Array((text + "\r\n").utf8)
    }

    /// A complete POST head declaring `length` body bytes, then the body.
    static func post(bodyLength length: Int) -> (request: [UInt8], headBytes: Int) {
        let head = Array("POST \(submitPath) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(length)\r\n\r\n".utf8)
        return (head + Array(repeating: UInt8(ascii: "b"), count: length), head.count)
    }

    /// `count` normal submissions of the real 18 KB idle-daily ping, each on a new connection: each one's status
    /// (-1: no answer) and latency in seconds.
    static func normalSubmissions(port: Int, count: Int, label: String) -> (statuses: [Int], seconds: [Double]) {
        let body = Pings.real.first ?? Pings.gzipJSON(bytes: 18_000, seed: 1)
        var statuses: [Int] = []
        var seconds: [Double] = []
        for index in 0..<count {
            let started = Date()
            let response = try? WireClient.exchange(port: port, "POST", "/submit/telemetry/" + Pings.path("\(label)-\(index)"), body: body)
            seconds.append(Date().timeIntervalSince(started))
            statuses.append(response?.status ?? -1)
        }
        return (statuses, seconds)
    }

    /// What one run saw; collected on the run's own thread, checked on the test's (expectations need its context).
    struct Run: Sendable {
        var heldAllSlowClients = false
        var during = IngestMetrics.Snapshot()
        var statuses: [Int] = []
        var seconds: [Double] = []
        var outcomes: [SlowClients.Outcome] = []
        var final = IngestMetrics.Snapshot()
        var metricsText = ""
        var drained = false
        var maxConnections = 0
        var stored: [String] = []
    }

    /// 100 heads that arrive fast enough but never end (the head timeout), 100 that trickle (the head minimum rate),
    /// 100 bodies that trickle (the body minimum rate); 100 normal submissions meanwhile all succeed, fast.
    @Test func threeHundredSlowClientsAreCutWhileNormalSubmissionsStayFast() async throws {
        let run = try await onOwnThread { () throws -> Run in
            raiseOpenFileLimit()
            let live = try LiveServer(label: "slowloris") {
                $0.headTimeout = .seconds(8)
                $0.minBytesPerSecond = 200
                $0.minRateGrace = .seconds(3)
                $0.minRateWindow = .seconds(2)
            }
            let fastHead = Self.endlessHead(padding: 500)   // 20 KB at 1,000 B/s: above the rate, never complete
            let slowHead = Self.endlessHead(padding: 100)   // at 5 B/s
            let slowBody = Self.post(bodyLength: 5_000)     // head at once, the body at 5 B/s
            var plans: [SlowClients.Plan] = []
            for index in 0..<300 {
                switch index % 3 {
                case 0: plans.append(.init(request: fastHead, opening: 60, perTick: 200))
                case 1: plans.append(.init(request: slowHead, opening: 60, perTick: 1))
                default: plans.append(.init(request: slowBody.request, opening: slowBody.headBytes, perTick: 1))
                }
            }
            let slow = try SlowClients(port: live.port, plans: plans)
            slow.start(tick: 0.2, forSeconds: 20)
            var run = Run()
            run.heldAllSlowClients = eventually { live.server.metrics.snapshot.openConnections >= 300 }
            (run.statuses, run.seconds) = Self.normalSubmissions(port: live.port, count: 100, label: "normal")
            run.during = live.server.metrics.snapshot
            slow.waitUntilDone()
            run.outcomes = slow.results
            run.drained = eventually { live.server.metrics.snapshot.openConnections == 0 }
            run.final = live.server.metrics.snapshot
            run.metricsText = live.server.metrics.prometheusText()
            live.stop()
            run.stored = try readRecordsQuietly(live.logPath)
            return run
        }
        #expect(run.heldAllSlowClients, "the server never held the 300 slow clients")
        // The submissions ran while every slow client was still connected.
        #expect(run.during.timeoutCount == 0 && run.during.openConnections >= 300,
                "\(run.during.openConnections) open, \(run.during.timeoutCount) cut during the submissions")
        #expect(run.statuses == Array(repeating: 200, count: 100), "\(run.statuses.filter { $0 != 200 })")
        let p99 = quantile(run.seconds, 0.99)
        #expect(p99 < 0.1, "p99 \(Int(p99 * 1000)) ms, max \(Int((run.seconds.max() ?? 0) * 1000)) ms")

        for (index, outcome) in run.outcomes.enumerated() {
            let (rule, window): (String, ClosedRange<Double>) = switch index % 3 {
            case 0: ("head timeout 8 s", 7.0...14.0)
            case 1: ("head minimum rate after 3 + 2 s", 4.0...10.0)
            default: ("body minimum rate after 3 + 2 s", 4.0...10.0)
            }
            #expect(outcome.status == 408, "client \(index) (\(rule)): \(outcome)")
            #expect(outcome.closedAfter.map { window.contains($0) } == true, "client \(index) (\(rule)): \(outcome)")
        }
        let m = run.final
        #expect(m.timeouts == [IngestTimeout(.head, .timeout): 100, IngestTimeout(.head, .minRate): 100,
                               IngestTimeout(.body, .minRate): 100], "\(m.timeouts)")
        #expect(m.responses[408] == 300 && m.responses[200] == 100, "\(m.responses)")
        #expect(run.drained, "connections left open")
        for line in ["telemetry_ingest_timeouts_total{phase=\"head\",rule=\"timeout\"} 100",
                     "telemetry_ingest_timeouts_total{phase=\"head\",rule=\"min_rate\"} 100",
                     "telemetry_ingest_timeouts_total{phase=\"body\",rule=\"min_rate\"} 100",
                     "telemetry_ingest_timeouts_total{phase=\"body\",rule=\"timeout\"} 0",
                     "telemetry_ingest_connections_shed_total 0"] {
            #expect(run.metricsText.contains(line + "\n"), "missing \(line)")
        }
        #expect(Set(run.stored) == Set((0..<100).map { Pings.path("normal-\($0)") }) && run.stored.count == 100)
    }

    /// At a cap of 40 connections, 300 slow heads (no timeout would cut them yet) are shed oldest first, and 50
    /// normal submissions on new connections all succeed.
    @Test func idleSlowConnectionsAreShedAtTheConnectionCap() async throws {
        let run = try await onOwnThread { () throws -> Run in
            raiseOpenFileLimit()
            let live = try LiveServer(label: "shed") {
                $0.maxConnections = 40
                $0.headTimeout = .seconds(120)
                $0.minBytesPerSecond = 0
            }
            var run = Run()
            run.maxConnections = live.server.maxConnections
            let head = Self.endlessHead(padding: 100)
            let slow = try SlowClients(port: live.port, plans: Array(repeating: .init(request: head, opening: 60, perTick: 1), count: 300))
            slow.start(tick: 0.2, forSeconds: 30)
            run.heldAllSlowClients = eventually { live.server.metrics.snapshot.connectionsShed >= 260 }
            run.during = live.server.metrics.snapshot
            (run.statuses, run.seconds) = Self.normalSubmissions(port: live.port, count: 50, label: "capped")
            run.final = live.server.metrics.snapshot
            usleep(200_000)   // the driver sees the last closes
            run.outcomes = slow.results
            slow.stop()
            live.stop()
            run.stored = try readRecordsQuietly(live.logPath)
            return run
        }
        #expect(run.maxConnections == 40)
        #expect(run.heldAllSlowClients, "\(run.during.connectionsShed) shed")
        #expect(run.during.openConnections <= 40, "\(run.during.openConnections) open")
        #expect(run.statuses == Array(repeating: 200, count: 50), "\(run.statuses)")
        let p99 = quantile(run.seconds, 0.99)
        #expect(p99 < 0.1, "p99 \(Int(p99 * 1000)) ms")
        let m = run.final
        #expect(m.connectionsShed >= 261 && m.connectionsShed <= 310, "\(m.connectionsShed) shed")
        #expect(m.connectionsRefused == 0 && m.timeoutCount == 0)
        #expect(m.openConnections <= 41)
        // Oldest first: the first 200 slow clients were shed (closed without an answer); at most 40 are left.
        #expect(run.outcomes.prefix(200).allSatisfy { $0.closedAfter != nil && $0.status == nil })
        let survivors = run.outcomes.filter { $0.closedAfter == nil }.count
        #expect(survivors <= 40, "\(survivors) slow clients still open")
        #expect(Set(run.stored) == Set((0..<50).map { Pings.path("capped-\($0)") }))
    }
}

/// The paths of every record in `directory` (reading errors throw; no expectations, so it can run off the test's
/// context).
func readRecordsQuietly(_ directory: String) throws -> [String] {
    var paths: [String] = []
    for path in logFiles(directory) {
        let reader = try RawLogReader(path: path, version: RawLogVersion.nameHint(forPath: path))
        try reader.forEach(record: { paths.append($0.pathString) }, event: { throw DamagedLog(path: path, event: "\($0)") })
    }
    return paths
}

struct DamagedLog: Error { var path: String; var event: String }
