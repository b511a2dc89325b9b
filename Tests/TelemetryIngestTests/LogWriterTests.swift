import Foundation
import TelemetryCore
@testable import TelemetryIngest
import TelemetryTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A switchable fault for `LogFileOperations.write` and a gate that holds writes back.
final class WriteFault: @unchecked Sendable {   // `lock` guards `failing` and `blocked`
    private let lock = NSCondition()
    private var failing = false
    private var blocked = false

    func setFailing(_ value: Bool) { lock.lock(); failing = value; lock.unlock() }
    func setBlocked(_ value: Bool) { lock.lock(); blocked = value; lock.broadcast(); lock.unlock() }

    /// POSIX operations whose `write` first waits while blocked, then, when failing, writes half the bytes (a
    /// torn record) and reports ENOSPC on the next call.
    func operations() -> LogFileOperations {
        var ops = LogFileOperations.posix
        let posixWrite = ops.write
        ops.write = { [self] fd, bytes in
            lock.lock()
            while blocked { lock.wait() }
            let fail = failing
            lock.unlock()
            guard fail else { return posixWrite(fd, bytes) }
            if bytes.count > 1 {
                return posixWrite(fd, UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count / 2)]))
            }
            errno = ENOSPC
            return -1
        }
        return ops
    }
}

/// Log files: naming, rotation by size and age, fsync policies, write errors, backpressure, recovery, shutdown.
@Suite(.timeLimit(.minutes(2)))
struct LogWriterTests {
    /// A body whose v1 record is exactly `recordBytes` long for `path`.
    static func body(recordBytes: Int, path: String, seed: Int = 0) -> [UInt8] {
        Pings.random(count: recordBytes - 15 - path.utf8.count, seed: seed)
    }

    @Test func fileNamesFollowTheSpec() throws {
        let live = try LiveServer { $0.includeRequestIP = true; $0.logBase = "telemetry.log" }
        #expect(try live.post(Pings.path("n"), Array("{}".utf8)).status == 200)
        let name = try #require(logFiles(live.logPath).first.map { ($0 as NSString).lastPathComponent })
        let parts = name.split(separator: ".")
        // telemetry.log.v2.<host>.<pid>.<created ms>; the host may itself contain dots.
        #expect(name.hasPrefix("telemetry.log.v2.\(currentHostName()).\(getpid())."))
        let created = try #require(UInt64(parts.last ?? ""))
        #expect(created <= nowMilliseconds() && created > nowMilliseconds() - 60_000)
        #expect(!name.hasSuffix(".finished"))
        live.stop()
        #expect(logFiles(live.logPath).map { ($0 as NSString).lastPathComponent } == [name + ".finished"])
    }

    @Test func severalWritersPutTheirIndexInTheName() throws {
        let live = try LiveServer { $0.writers = 2 }
        for connection in 0..<4 {
            let client = try WireClient(port: live.port)
            try client.send(WireClient.request("POST", "/submit/telemetry/" + Pings.path("w\(connection)"), body: Array("{}".utf8)))
            #expect(try client.readResponse().status == 200)
        }
        live.stop()
        let names = logFiles(live.logPath).map { ($0 as NSString).lastPathComponent }
        #expect(names.count == 2)
        let prefix = "telemetry.log.v1.\(currentHostName()).\(getpid())."
        #expect(Set(names.map { $0.dropFirst(prefix.count).split(separator: ".").first.map(String.init) ?? "" }) == ["0", "1"])
        #expect(try live.records().count == 4)
    }

    @Test func sizeRotationFinishesAfterTheAppendThatCrossesTheLimit() throws {
        let live = try LiveServer { $0.maxLogBytes = 1_000 }
        for index in 0..<5 {
            let path = Pings.path("size-\(index)")
            #expect(try live.post(path, Self.body(recordBytes: 400, path: path, seed: index)).status == 200)
        }
        // 400, 800, 1200 > 1000 → finished (by the finisher thread, soon after); then 400, 800 still open.
        #expect(eventually { logFiles(live.logPath).filter { $0.hasSuffix(".finished") }.count == 1 })
        let first = try readRecords(directory: live.logPath, finishedOnly: true)
        #expect(first.map(\.pathString) == (0..<3).map { Pings.path("size-\($0)") })
        live.stop()
        #expect(try live.records().count == 5)
        #expect(logFiles(live.logPath).count == 2)
    }

    @Test func idleFilesAreFinishedByAge() throws {
        let live = try LiveServer { $0.maxLogAge = .milliseconds(200) }
        #expect(try live.post(Pings.path("age-1"), Array("{}".utf8)).status == 200)
        #expect(eventually(seconds: 5) { live.finished.all.count == 1 })
        // Nothing was written since: no empty file appears, the next write goes to a new file.
        usleep(500_000)
        #expect(logFiles(live.logPath).count == 1)
        #expect(try live.post(Pings.path("age-2"), Array("{}".utf8)).status == 200)
        #expect(eventually(seconds: 5) { live.finished.all.count == 2 })
        #expect(Set(logFiles(live.logPath)) == Set(live.finished.all))
        #expect(try live.records(finishedOnly: true).map(\.pathString) == [Pings.path("age-1"), Pings.path("age-2")])
    }

    @Test(arguments: FsyncPolicy.allCases)
    func fsyncPolicies(policy: FsyncPolicy) throws {
        let live = try LiveServer { $0.fsync = policy; $0.fsyncInterval = .milliseconds(100) }
        for index in 0..<5 { #expect(try live.post(Pings.path("sync-\(index)"), Array("{}".utf8)).status == 200) }
        switch policy {
        case .always: #expect(live.server.metrics.snapshot.fsyncs >= 5)   // one per batch, each before its 200
        case .interval: #expect(eventually(seconds: 3) { live.server.metrics.snapshot.fsyncs >= 1 })
        case .never: usleep(300_000); #expect(live.server.metrics.snapshot.fsyncs == 0)
        }
        live.stop()
        #expect(try live.records().count == 5)
    }

    @Test func fullDiskAnswers500AndWritingResumesInANewFile() throws {
        let fault = WriteFault()
        let live = try LiveServer(operations: fault.operations())
        #expect(try live.post(Pings.path("before"), Array("{\"a\":1}".utf8)).status == 200)
        fault.setFailing(true)
        let failed = try live.post(Pings.path("during"), Pings.json(bytes: 2_000, seed: 1))
        #expect(failed.status == 500)
        #expect(failed.text == String(cString: strerror(ENOSPC)))
        // The file holding "before" was cut back to its complete record and finished at once.
        #expect(eventually { live.finished.all.count == 1 })
        fault.setFailing(false)
        #expect(try live.post(Pings.path("after"), Array("{\"a\":2}".utf8)).status == 200)
        live.stop()
        let files = logFiles(live.logPath)
        #expect(files.count == 2 && files.allSatisfy { $0.hasSuffix(".finished") })
        #expect(try live.records().map(\.pathString) == [Pings.path("before"), Pings.path("after")])   // no damage
        let m = live.server.metrics.snapshot
        #expect(m.writeErrors == 1 && m.responses[500] == 1 && m.storedRecords == 2)
    }

    @Test func failureOfTheFirstWriteRemovesTheEmptyFile() throws {
        let fault = WriteFault()
        let live = try LiveServer(operations: fault.operations())
        fault.setFailing(true)
        #expect(try live.post(Pings.path("x"), Array("{}".utf8)).status == 500)
        #expect(eventually { logFiles(live.logPath).isEmpty })
        fault.setFailing(false)
        #expect(try live.post(Pings.path("y"), Array("{}".utf8)).status == 200)
        live.stop()
        #expect(try live.records().map(\.pathString) == [Pings.path("y")])
    }

    @Test func fullQueueAnswers503UntilTheWriterCatchesUp() throws {
        let fault = WriteFault()
        let live = try LiveServer(operations: fault.operations()) { $0.queueCapacityBytes = 1_000 }
        fault.setBlocked(true)
        let statuses = Collected2()
        let group = DispatchGroup()
        for index in 0..<2 {   // 2 × 400 bytes fit; the writer holds them
            group.enter()
            DispatchQueue.global().async {
                let path = Pings.path("q\(index)")
                statuses.add((try? live.post(path, LogWriterTests.body(recordBytes: 400, path: path, seed: index)).status) ?? -1)
                group.leave()
            }
        }
        #expect(eventually { live.server.queuedBytes >= 800 })
        let path = Pings.path("q2")
        let refused = try live.post(path, Self.body(recordBytes: 400, path: path, seed: 2))
        #expect(refused.status == 503)
        fault.setBlocked(false)
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(statuses.all == [200, 200])
        #expect(try live.post(path, Self.body(recordBytes: 400, path: path, seed: 2)).status == 200)   // the retry
        live.stop()
        #expect(try live.records().count == 3)
    }

    @Test func shutdownFinishesTheRequestInProgressAndTheFile() throws {
        let live = try LiveServer()
        let body = Pings.json(bytes: 10_000, seed: 9)
        let client = try WireClient(port: live.port)
        let request = WireClient.request("POST", "/submit/telemetry/" + Pings.path("inflight"), body: body)
        try client.send(Array(request.dropLast(5_000)))
        usleep(100_000)
        let stopped = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { live.stop(); stopped.signal() }
        #expect(eventually { (try? WireClient(port: live.port)) == nil })   // no longer accepting
        try client.send(Array(request.suffix(5_000)))
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(client.serverClosed())   // the request in progress was the connection's last
        #expect(stopped.wait(timeout: .now() + 10) == .success)
        let files = logFiles(live.logPath)
        #expect(files.count == 1 && files[0].hasSuffix(".finished"))
        #expect(try live.records().map(\.data) == [body])
    }

    @Test func abandonedFilesAreRecoveredAtStart() throws {
        let directory = TemporaryDirectory("ingest-recovery")
        let logs = directory.path + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let deadPID = try exitedProcessID()
        let host = currentHostName()
        let records = (0..<3).map { RawRecord(version: .v1, timestamp: UInt64(1_000 + $0), path: Array("p\($0)".utf8), data: Array("{\"n\":\($0)}".utf8)) }
        var torn = records.flatMap { $0.encoded() }
        let tornRecord = RawRecord(version: .v1, timestamp: 9, path: Array("torn".utf8), data: Array(repeating: 0x41, count: 100)).encoded()
        torn += tornRecord.prefix(60)
        let abandoned = "\(logs)/telemetry.log.v1.\(host).\(deadPID).1700000000000"
        try Data(torn).write(to: URL(fileURLWithPath: abandoned))
        let emptyOne = "\(logs)/telemetry.log.v1.\(host).\(deadPID).1700000000001"
        try Data(tornRecord.prefix(10)).write(to: URL(fileURLWithPath: emptyOne))
        // Same-PID restart (a container's PID 1): a dead server's file named with this process's PID, lock free.
        let samePID = "\(logs)/telemetry.log.v1.\(host).\(getpid()).1700000000002"
        try Data(records[0].encoded()).write(to: URL(fileURLWithPath: samePID))
        // A live writer's file: its lock is held (here by this test), whatever the PID in its name.
        let live1 = "\(logs)/telemetry.log.v1.\(host).\(deadPID).1700000000004"
        try Data(records[0].encoded()).write(to: URL(fileURLWithPath: live1))
        let liveLock = open(live1, O_RDONLY)
        #expect(flock(liveLock, LOCK_EX | LOCK_NB) == 0)
        defer { close(liveLock) }
        let otherHost = "\(logs)/telemetry.log.v1.some-other-host.\(deadPID).1700000000003"
        try Data(torn).write(to: URL(fileURLWithPath: otherHost))

        let finished = FinishedFiles()
        var configuration = IngestConfiguration()
        configuration.port = 0
        configuration.logPath = logs
        let server = try IngestServer(configuration: configuration, onFinishedFile: { finished.add($0) })
        try server.start()
        server.shutdown()
        #expect(Set(finished.all) == [abandoned + ".finished", samePID + ".finished"] && finished.all.count == 2)
        #expect(!FileManager.default.fileExists(atPath: emptyOne))
        #expect(FileManager.default.fileExists(atPath: live1))
        #expect(FileManager.default.fileExists(atPath: samePID + ".finished"))
        #expect(FileManager.default.fileExists(atPath: otherHost))
        let reader = try RawLogReader(path: abandoned + ".finished", version: .v1, mode: .strict)
        var recovered: [RawRecord] = []
        try reader.forEach(record: { recovered.append($0) })
        #expect(recovered.map(\.path) == records.map(\.path))
        #expect(reader.fileSize == records.reduce(0) { $0 + $1.encodedByteCount })
    }

    /// The pid of a child that has exited (so no process has it, barring immediate reuse).
    private func exitedProcessID() throws -> Int32 { try spawnAndWait("/bin/true") }

    @Test func statsLogHasTheSeedFieldsInOrder() throws {
        let directory = TemporaryDirectory("ingest-stats")
        let statsPath = directory.path + "/stats.jsonl"
        let live = try LiveServer { $0.statsLogFile = statsPath }
        let path = Pings.path("stats")
        #expect(try live.post(path + "?q=1", Array("{\"a\":\"b\"}".utf8)).status == 200)
        #expect(try WireClient.exchange(port: live.port, "GET", "/nope").status == 404)
        #expect(try live.post(path, Pings.random(count: 204_801, seed: 1)).status == 202)
        live.stop()
        let lines = try String(contentsOfFile: statsPath, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        let keys = ["url", "duration_ms", "code", "size", "level", "message", "timestamp"]
        for line in lines {
            let positions = keys.map { line.range(of: "\"\($0)\":")?.lowerBound }
            #expect(positions.allSatisfy { $0 != nil } && positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "\(line)")
        }
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects[0]["url"] as? String == "/submit/telemetry/\(path)?q=1")
        #expect(objects[0]["code"] as? Int == 200)
        #expect(objects[0]["size"] as? Int == 15 + path.utf8.count + 9)
        #expect(objects[0]["message"] as? String == "OK")
        #expect(objects[0]["level"] as? String == "info")
        #expect((objects[0]["duration_ms"] as? Double ?? -1) >= 0)
        let stamp = objects[0]["timestamp"] as? String ?? ""
        #expect(stamp.count == 24 && stamp.hasSuffix("Z") && stamp.contains("T"), "\(stamp)")
        #expect(objects[1]["code"] as? Int == 404 && objects[1]["size"] as? Int == 0 && objects[1]["message"] as? String == "Not Found")
        #expect(objects[2]["code"] as? Int == 202 && objects[2]["size"] as? Int == 0)
    }
}

/// Statuses collected from several threads.
final class Collected2: @unchecked Sendable {   // `lock` guards `items`
    private let lock = NSLock()
    private var items: [Int] = []
    func add(_ item: Int) { lock.lock(); items.append(item); lock.unlock() }
    var all: [Int] { lock.lock(); defer { lock.unlock() }; return items }
}
