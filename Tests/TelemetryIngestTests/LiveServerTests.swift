import Foundation
import TelemetryCore
@testable import TelemetryIngest
import TelemetryTestSupport
import Testing

/// One submission a test sent and saw acknowledged, with the window its receive time must fall in.
private struct Sent: Sendable {
    var path: String
    var body: [UInt8]
    var before: UInt64
    var after: UInt64
}

/// Collects results from concurrent client threads.
private final class Collected<T: Sendable>: @unchecked Sendable {   // `lock` guards `items`
    private let lock = NSLock()
    private var items: [T] = []
    func add(_ item: T) { lock.lock(); items.append(item); lock.unlock() }
    var all: [T] { lock.lock(); defer { lock.unlock() }; return items }
}

/// Live loopback tests: one `IngestServer` per test on an ephemeral port, real sockets, real files.
@Suite(.timeLimit(.minutes(3)))
struct LiveServerTests {
    // MARK: Round trip

    @Test(arguments: [false, true])
    func roundTripOfVariedPings(includeIP: Bool) throws {
        let live = try LiveServer {
            $0.includeRequestIP = includeIP
            $0.maxLogBytes = 1_500_000   // several size rotations
        }
        var varied: [[UInt8]] = Pings.real
        try #require(varied.count == 3, "the real raw logs in ../shared/datasets/real/raw-logs hold 3 pings")
        for seed in 0..<120 { varied.append(Pings.gzipJSON(bytes: 200 + seed * 1_700, seed: seed)) }
        for seed in 120..<240 { varied.append(Pings.json(bytes: 50 + (seed * 977) % 60_000, seed: seed)) }
        for seed in 240..<250 { varied.append(Pings.random(count: 204_800, seed: seed)) }   // at the limit
        for seed in 250..<260 { varied.append(Pings.random(count: 1 + seed % 3, seed: seed)) }   // tiny
        let bodies = varied
        let sent = Collected<Sent>()
        let failures = Collected<String>()
        let workers = 8
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            do {
                let client = try WireClient(port: live.port)   // keep-alive: one connection per worker
                for index in stride(from: worker, to: bodies.count, by: workers) {
                    let path = Pings.path(UUID(seed: 10_000 + index).uuidString.lowercased(), reason: index % 2 == 0 ? "main" : "saved-session")
                    let before = nowMilliseconds()
                    try client.send(WireClient.request("POST", "/submit/telemetry/\(path)?v=4", body: bodies[index]))
                    let response = try client.readResponse()
                    let after = nowMilliseconds()
                    if response.status == 200 { sent.add(Sent(path: path, body: bodies[index], before: before, after: after)) } else {
                        failures.add("\(index): \(response.status) \(response.text)")
                    }
                }
            } catch {
                failures.add("worker \(worker): \(error)")
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
        live.stop()
        // Everything is finished after a graceful stop, and nothing unfinished is left behind.
        let files = logFiles(live.logPath)
        #expect(files.allSatisfy { $0.hasSuffix(".finished") }, "\(files)")
        #expect(files.count >= 3, "expected size rotations, got \(files.count) file(s)")
        #expect(files.allSatisfy { $0.contains(includeIP ? ".v2." : ".v1.") })
        #expect(Set(live.finished.all) == Set(files))

        let records = try live.records(finishedOnly: true)
        #expect(records.count == bodies.count)
        let byPath = Dictionary(grouping: records, by: \.pathString)
        for submission in sent.all {
            guard let record = byPath[submission.path]?.first else {
                Issue.record("missing \(submission.path)")
                continue
            }
            #expect(byPath[submission.path]?.count == 1)
            #expect(record.data == submission.body, "\(submission.path)")
            #expect((submission.before...submission.after).contains(record.timestamp), "\(submission.path)")
            #expect(record.version == (includeIP ? .v2 : .v1))
            #expect(record.ipString == (includeIP ? "127.0.0.1" : nil))
        }
        // Each file respects the size rule: only the record that took it over the limit may end past it.
        for path in files {
            let reader = try RawLogReader(path: path)
            var sizes: [Int] = []
            try reader.forEach(record: { sizes.append($0.encodedByteCount) })
            #expect(sizes.dropLast().reduce(0, +) <= live.server.configuration.maxLogBytes, "\(path)")
        }
        let m = live.server.metrics.snapshot
        #expect(m.storedRecords == bodies.count)
        #expect(m.responses[200] == bodies.count)
        #expect(m.filesFinished == files.count)
    }

    // MARK: Every error path of the spec over the wire

    @Test func decisionTableOverLoopback() throws {
        let live = try LiveServer { $0.limits = RawLogLimits(maxPathBytes: 80, maxDataBytes: 100, maxIPBytes: 100) }
        for vector in HandlerTests.vectors {
            let client = try WireClient(port: live.port)
            try client.send(Array(vector.request.utf8))
            let response = try client.readResponse()
            #expect(response.status == vector.status, "\(vector.name)")
            if let body = vector.body { #expect(response.text == body, "\(vector.name)") }
            #expect(client.serverClosed(withinSeconds: vector.closes ? 5 : 0.3) == vector.closes, "\(vector.name)")
        }
        live.stop()
        #expect(try live.records().count == HandlerTests.vectors.filter(\.stores).count)
        // The server kept serving through every error.
        #expect(live.server.metrics.snapshot.requests == HandlerTests.vectors.count)
    }

    @Test func statusAndMetricsEndpoints() throws {
        let live = try LiveServer()
        #expect(try WireClient.exchange(port: live.port, "GET", "/status").text == "OK")
        _ = try live.post(Pings.path("m"), Array("{}".utf8))
        _ = try WireClient.exchange(port: live.port, "GET", "/nope")
        let metrics = try WireClient.exchange(port: live.port, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"] == "text/plain; version=0.0.4")
        for line in ["telemetry_ingest_requests_total{code=\"200\"} 2", "telemetry_ingest_requests_total{code=\"404\"} 1",
                     "telemetry_ingest_errors_total{code=\"404\"} 1", "telemetry_ingest_stored_records_total 1",
                     "telemetry_ingest_received_bytes_total 2", "# TYPE telemetry_ingest_open_connections gauge"] {
            #expect(metrics.text.contains(line + "\n"), "missing \(line)")
        }
    }

    // MARK: Connections

    @Test func keepAliveAndPipelining() throws {
        let live = try LiveServer()
        let client = try WireClient(port: live.port)
        var batch: [UInt8] = []
        for index in 0..<20 {
            batch += index % 5 == 4 ? WireClient.request("GET", "/status")
                : WireClient.request("POST", "/submit/telemetry/" + Pings.path("pipe-\(index)"), body: Array("{\"n\":\(index)}".utf8))
        }
        try client.send(batch)
        for _ in 0..<20 { #expect(try client.readResponse().status == 200) }
        // Still open for more.
        try client.send(WireClient.request("GET", "/status"))
        #expect(try client.readResponse().text == "OK")
        live.stop()
        let stored = try live.records().map(\.pathString)
        #expect(stored == (0..<20).filter { $0 % 5 != 4 }.map { Pings.path("pipe-\($0)") })
    }

    @Test func sixtyFourConcurrentClients() throws {
        let live = try LiveServer()
        let statuses = Collected<Int>()
        DispatchQueue.concurrentPerform(iterations: 64) { client in
            guard let connection = try? WireClient(port: live.port) else { return statuses.add(-1) }
            for request in 0..<10 {
                let body = Pings.json(bytes: 500 + client * 10 + request, seed: client * 100 + request)
                do {
                    try connection.send(WireClient.request("POST", "/submit/telemetry/" + Pings.path("c\(client)-\(request)"), body: body))
                    statuses.add(try connection.readResponse().status)
                } catch {
                    statuses.add(-2)
                }
            }
        }
        #expect(statuses.all.count == 640)
        #expect(statuses.all.allSatisfy { $0 == 200 })
        live.stop()
        let records = try live.records()
        #expect(records.count == 640)
        #expect(Set(records.map(\.pathString)).count == 640)
    }

    @Test func slowClientWithinTheTimeoutIsServedAndAStalledOneIsCut() throws {
        let live = try LiveServer { $0.requestTimeout = .milliseconds(1_500) }
        let body = Pings.json(bytes: 1_000, seed: 1)
        let slow = try WireClient(port: live.port)
        try slow.send(Array(WireClient.request("POST", "/submit/telemetry/" + Pings.path("slow"), body: body).dropLast(body.count)))
        for piece in stride(from: 0, to: body.count, by: 200) {
            usleep(100_000)
            try slow.send(Array(body[piece..<min(piece + 200, body.count)]))
        }
        #expect(try slow.readResponse().status == 200)

        let stalled = try WireClient(port: live.port)
        let started = Date()
        try stalled.send(Array(WireClient.request("POST", "/submit/telemetry/" + Pings.path("stalled"), body: body).dropLast(500)))
        let response = try stalled.readResponse()
        #expect(response.status == 408)
        #expect(stalled.serverClosed())
        #expect(Date().timeIntervalSince(started) < 5)
        live.stop()
        #expect(try live.records().map(\.pathString) == [Pings.path("slow")])
    }

    @Test func idleConnectionsAreClosed() throws {
        // IdleStateHandler measures real time, so this is a live test rather than an EmbeddedChannel one.
        let live = try LiveServer { $0.idleTimeout = .milliseconds(300) }
        let client = try WireClient(port: live.port)
        try client.send(WireClient.request("GET", "/status"))
        #expect(try client.readResponse().status == 200)
        let started = Date()
        #expect(client.serverClosed(withinSeconds: 5))
        #expect(Date().timeIntervalSince(started) >= 0.25)
    }

    @Test func clientDisconnectingMidBodyLeavesNoRecord() throws {
        let live = try LiveServer()
        let body = Pings.json(bytes: 50_000, seed: 2)
        for abrupt in [false, true] {
            let client = try WireClient(port: live.port)
            try client.send(Array(WireClient.request("POST", "/submit/telemetry/" + Pings.path("gone"), body: body).dropLast(20_000)))
            if abrupt { client.reset() } else { client.close() }
        }
        #expect(eventually { live.server.metrics.snapshot.openConnections == 0 })
        #expect(try live.post(Pings.path("after"), body).status == 200)
        live.stop()
        #expect(try live.records().map(\.pathString) == [Pings.path("after")])
    }

    // MARK: Hazards

    @Test func br01BodiesWithoutAUsableContentLength() throws {
        let live = try LiveServer()
        let id = "0fdac909-d2ec-454c-b625-261a3e5d5c9b"
        let target = "/submit/telemetry/" + Pings.path(id)
        let body = Array("{\"ver\":2}".utf8)
        let chunked = try WireClient.exchange(port: live.port, "POST", target, body: WireClient.chunked([Array(body[..<4]), Array(body[4...])]),
                                              headers: [("Transfer-Encoding", "chunked")])
        #expect(chunked.status == 200)
        let zero = try WireClient.exchange(port: live.port, "POST", target, headers: [("Content-Length", "0")])
        #expect(zero.status == 411 && zero.text == "Missing content length")
        let negative = try WireClient(port: live.port)
        try negative.send("POST \(target) HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n")
        #expect(try negative.readResponse().status == 400)
        #expect(negative.serverClosed())
        let plain = try live.post(Pings.path(id), body)
        #expect(plain.status == 200)
        live.stop()
        let records = try live.records()
        #expect(records.count == 2)
        #expect(records.allSatisfy { $0.data == body && $0.pathString == Pings.path(id) })
        #expect(records.allSatisfy { !$0.data.isEmpty })
    }

    @Test func br02OversizedBodiesAndALyingContentLength() throws {
        let live = try LiveServer()
        let big = Pings.random(count: 204_801, seed: 3)
        let response = try live.post(Pings.path("big"), big)
        #expect(response.status == 202)
        #expect(response.text == "Request too large (204801 bytes). Limit is 204800 bytes. Server will discard submission.")
        #expect(live.server.metrics.snapshot.discardedOversized == 1)

        let liar = try WireClient(port: live.port)
        let declared = Array(repeating: UInt8(ascii: "a"), count: 100)
        let excess = Array(repeating: UInt8(ascii: "b"), count: 300_000)
        try liar.send(Array("POST /submit/telemetry/\(Pings.path("liar")) HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n".utf8) + declared)
        #expect(try liar.readResponse().status == 200)
        try? liar.send(excess)   // the server may close while these are still being sent
        #expect((try? liar.readResponse().status) == 400)
        #expect(liar.serverClosed())
        live.stop()
        let records = try live.records()
        #expect(records.map(\.pathString) == [Pings.path("liar")])
        #expect(records.first?.data == declared)
        let onDisk = logFiles(live.logPath).reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        #expect(onDisk == records.reduce(0) { $0 + $1.encodedByteCount })
    }

    @Test func br04EmptyDocumentIDAndIDOnlyPathsAreStored() throws {
        let live = try LiveServer()
        let emptyID = "/saved-session/Firefox/31.0/release/20140715214327"
        let idOnly = "0fdac909-d2ec-454c-b625-261a3e5d5c9b"
        #expect(try live.post(emptyID, Array("{\"ver\":2,\"info\":{\"reason\":\"saved-session\"}}".utf8)).status == 200)
        #expect(try live.post(idOnly, Array("{\"ver\":2}".utf8)).status == 200)
        live.stop()
        #expect(try live.records().map(\.pathString) == [emptyID, idOnly])
    }

    @Test func br23ServerTimeNotClientTime() throws {
        let live = try LiveServer()
        var windows: [ClosedRange<UInt64>] = []
        for creation in ["2030-01-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z"] {
            let before = nowMilliseconds()
            let body = Array("{\"ver\":4,\"type\":\"main\",\"id\":\"x\",\"creationDate\":\"\(creation)\"}".utf8)
            #expect(try live.post(Pings.path("clock"), body, headers: [("Date", "Tue, 01 Jan 2030 00:00:00 GMT")]).status == 200)
            windows.append(before...nowMilliseconds())
        }
        live.stop()
        let records = try live.records()
        #expect(records.count == 2)
        for (record, window) in zip(records, windows) {
            #expect(window.contains(record.timestamp), "receive time \(record.timestamp) outside \(window)")
        }
    }

    @Test func br25RetriedDuplicatesAreAllStored() throws {
        let live = try LiveServer()
        let path = Pings.path("0fdac909-d2ec-454c-b625-261a3e5d5c9b", reason: "saved-session")
        let body = Pings.gzipJSON(bytes: 3_000, seed: 25)
        var times: [UInt64] = []
        for delay in [0, 1, 4] {   // t, t+1 s, t+5 s
            if delay > 0 { sleep(UInt32(delay)) }
            times.append(nowMilliseconds())
            #expect(try live.post(path, body).status == 200)
        }
        live.stop()
        let records = try live.records()
        #expect(records.count == 3)
        #expect(records.allSatisfy { $0.pathString == path && $0.data == body })
        #expect(records.map(\.timestamp) == records.map(\.timestamp).sorted())
        #expect(records.last!.timestamp - records.first!.timestamp >= 4_900)
    }
}
