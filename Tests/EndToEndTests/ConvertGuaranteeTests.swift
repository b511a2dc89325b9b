import Foundation
import Testing
import TelemetryCompression
import TelemetryTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// convert's guarantees (docs/convert.md "Guarantees"), each checked against one clean run: a kill at any moment
/// (named fault points through `TELEMETRY_FAULT`, and random moments) followed by a re-run, a full disk, stale
/// files of dead runs. Issue 12's failure 5 and convert's part of failure 2. Small and bounded: 4 generated raw
/// logs of 300 pings in all; every child process is waited for on a thread of its own, never on the test pool.
@Suite(.serialized)
struct ConvertGuaranteeTests {
    /// Generated raw logs (gen_pings.py seed 5: 300 pings, 4 logs, 5 % damaged records) and their histogram cache.
    static let dataDirectory = TemporaryDirectory("convert-guarantees-data")
    static let data: Result<(rawlog: String, cache: String), Error> = Result {
        let out = dataDirectory.file("gen")
        let result = try runProcess("/usr/bin/env", ["python3", Fixtures.sharedPath("tools/gen_pings.py"), "--pings", "300",
                                                     "--format", "rawlog", "--log-files", "4", "--bad-fraction", "0.05",
                                                     "--seed", "5", "--procs", "1", "--out", out])
        guard result.status == 0 else { throw ChildProcessError.spawnFailed(executable: "gen_pings.py: \(result.stderr)", errno: 0) }
        return (out + "/rawlog", out + "/histogram-cache")
    }

    /// Runs `body` on a thread of its own (child processes are waited for there, not on Swift Testing's pool).
    static func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// `telemetry convert` of the generated logs into `out` (2 jobs, files rotated at 200,000 bytes so that a run
    /// makes several commits of several files each).
    static func convertArguments(_ out: String) throws -> [String] {
        let (rawlog, cache) = try data.get()
        return ["convert", rawlog, "--out", out, "--histogram-cache", cache, "--jobs", "2", "--max-file-size", "200000"]
    }

    static func convert(_ out: String, environment: [String: String] = [:]) async throws -> ProcessResult {
        let arguments = try convertArguments(out)
        return try await offThePool { try CLI.run(arguments, environment: environment) }
    }

    /// What an output tree holds, as sorted lines: `<partition>\t<storage line>` for every line of every published
    /// storage file (`<partition>` is its path without the random id), then `errors/<name>\t<line>` for every
    /// errors-file line. Equal lists mean the same records, each as many times.
    static func records(_ out: String) throws -> [String] {
        var lines: [String] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let directory = relative.isEmpty ? out : out + "/" + relative
            for name in try FileManager.default.contentsOfDirectory(atPath: directory) where !name.hasPrefix(".") {
                let path = relative.isEmpty ? name : relative + "/" + name
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: out + "/" + path, isDirectory: &isDirectory)
                if isDirectory.boolValue { pending.append(path); continue }
                if path.hasPrefix("errors/") {
                    let text = try String(contentsOfFile: out + "/" + path, encoding: .utf8)
                    lines += text.split(separator: "\n").map { path + "\t" + $0 }
                } else {
                    #expect(path.hasSuffix(".xz"), "not a storage file: \(path)")
                    // `<...>.v2.log.<32 hex>.xz` → `<...>.v2.log`
                    let partition = String(path.dropLast(".0123456789abcdef0123456789abcdef.xz".count))
                    try LineReader(source: try DecompressingReader(path: out + "/" + path)).forEachLine { line in
                        lines.append(partition + "\t" + String(decoding: line.bytes, as: UTF8.self))
                    }
                }
            }
        }
        return lines.sorted()
    }

    /// The records of one clean run (computed once).
    static let cleanDirectory = TemporaryDirectory("convert-guarantees-clean")
    static let clean: Result<[String], Error> = Result {
        let out = cleanDirectory.file("out")
        let result = try CLI.run(try convertArguments(out))
        guard result.status == 0 || result.status == 1 else {
            throw ChildProcessError.spawnFailed(executable: "clean convert: \(result.stderr)", errno: 0)
        }
        return try records(out)
    }

    /// Names left in `<out>/.convert/runs/` (run directories and locks of runs that are not finished).
    static func leftoverRuns(_ out: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: out + "/.convert/runs")) ?? []).sorted()
    }

    // MARK: Kills (failure 5)

    @Test func aKillAtEveryCommitStepThenARerunGivesExactlyOneCleanRun() async throws {
        let clean = try await Self.offThePool { try Self.clean.get() }
        #expect(clean.count >= 280, "clean run too small: \(clean.count) lines")
        #expect(clean.contains { $0.hasPrefix("errors/") }, "the damaged records make errors files")
        let directory = TemporaryDirectory("convert-guarantees-kill")
        let points = [("convert.record", 40), ("convert.stage", 3), ("convert.commit", 1), ("convert.publish", 1),
                      ("convert.publish", 6), ("convert.journal", 1), ("convert.commit", 3)]
        for (index, (point, count)) in points.enumerated() {
            let out = directory.file("out\(index)")
            let killed = try await Self.convert(out, environment: ["TELEMETRY_FAULT": "\(point):\(count)"])
            #expect(killed.status == 128 + SIGKILL, "\(point):\(count) did not kill the run: \(killed.status) \(killed.stderr)")
            #expect(!Self.leftoverRuns(out).isEmpty, "\(point):\(count): the dead run left no directory")
            let rerun = try await Self.convert(out)
            #expect(rerun.status == 0 || rerun.status == 1, "\(point):\(count): \(rerun.stderr)")
            #expect(try Self.records(out) == clean, "\(point):\(count): the re-run differs from a clean run")
            #expect(Self.leftoverRuns(out).isEmpty, "\(point):\(count): left \(Self.leftoverRuns(out))")
            if point == "convert.publish" || point == "convert.journal" {
                #expect(rerun.stdout.contains("Recovered: "), "\(point):\(count): \(rerun.stdout)")
            }
            if index == points.count - 1 {
                // A third run converts nothing: every input is in the journal.
                let third = try await Self.convert(out)
                #expect(third.status == 0, "\(third.stderr)")
                #expect(third.stdout.contains("Processed 0 records from 0 file(s)"), "\(third.stdout)")
                #expect(third.stdout.contains("Already converted: 4 input file(s) skipped"), "\(third.stdout)")
                #expect(try Self.records(out) == clean)
            }
        }
    }

    @Test func aKillAtARandomMomentThenARerunGivesOneCleanRun() async throws {
        let clean = try await Self.offThePool { try Self.clean.get() }
        let directory = TemporaryDirectory("convert-guarantees-random")
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<3 {
            let out = directory.file("out\(attempt)")
            let arguments = try Self.convertArguments(out)
            let delay = UInt32.random(in: 20_000...(attempt == 0 ? 150_000 : 900_000), using: &generator)
            _ = try await Self.offThePool {
                let process = try ChildProcess(CLI.executable, arguments, environment: ["TELEMETRY_STORE": ""])
                usleep(delay)
                process.send(SIGKILL)
                return process.wait()
            }
            let rerun = try await Self.convert(out)
            #expect(rerun.status == 0 || rerun.status == 1, "attempt \(attempt) (\(delay) µs): \(rerun.stderr)")
            #expect(try Self.records(out) == clean, "attempt \(attempt): killed after \(delay) µs, the re-run differs")
            #expect(Self.leftoverRuns(out).isEmpty)
        }
    }

    @Test func staleWorkAndPartialFilesOfDeadRunsAreRemovedAtStart() async throws {
        let clean = try await Self.offThePool { try Self.clean.get() }
        let directory = TemporaryDirectory("convert-guarantees-stale")
        let out = directory.file("out")
        // What earlier versions left: a work directory and a .partial file beside a final name.
        let legacyWork = try directory.write("out/.work/4242-0/1.log", text: "00000000-0000-4000-8000-000000000001\t{}\n")
        let partial = try directory.write("out/saved_session/Firefox/nightly/28.0a1/20131029030201.20131029.v2.log.0123456789abcdef0123456789abcdef.xz.partial",
                                          text: "half an xz file")
        // A dead run (its lock held by nobody) with a work file and a staged file, and a live run (lock held here).
        let deadWork = try directory.write("out/.convert/runs/deadrun/0/1.log", text: "x\t{}\n")
        let deadStaged = try directory.write("out/.convert/runs/deadrun/0/2.xz", text: "staged")
        _ = try directory.write("out/.convert/runs/deadrun.lock", text: "")
        let liveWork = try directory.write("out/.convert/runs/liverun/0/1.log", text: "y\t{}\n")
        let liveLock = try directory.write("out/.convert/runs/liverun.lock", text: "")
        let fd = open(liveLock, O_RDWR | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let result = try await Self.convert(out)
        #expect(result.status == 0 || result.status == 1, "\(result.stderr)")
        for path in [legacyWork, partial, deadWork, deadStaged, out + "/.work", out + "/.convert/runs/deadrun.lock"] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) was not removed")
        }
        #expect(FileManager.default.fileExists(atPath: liveWork), "a live run's work file was removed")
        #expect(result.stdout.contains("Removed 3 work director(ies) or partial file(s) of dead runs"), "\(result.stdout)")
        #expect(try Self.records(out) == clean)
        #expect(Self.leftoverRuns(out) == ["liverun", "liverun.lock"])
    }

    @Test func twoRunsOverTheSameInputsAtOnceGiveOneCleanRun() async throws {
        let clean = try await Self.offThePool { try Self.clean.get() }
        let directory = TemporaryDirectory("convert-guarantees-concurrent")
        let out = directory.file("out")
        let arguments = try Self.convertArguments(out)
        let statuses = try await Self.offThePool {
            let first = try ChildProcess(CLI.executable, arguments, environment: ["TELEMETRY_STORE": ""], stderr: directory.file("first.err"))
            let second = try ChildProcess(CLI.executable, arguments, environment: ["TELEMETRY_STORE": ""], stderr: directory.file("second.err"))
            return [first.wait(), second.wait()]
        }
        for (index, status) in statuses.enumerated() {
            let stderr = (try? String(contentsOfFile: directory.file(index == 0 ? "first.err" : "second.err"), encoding: .utf8)) ?? ""
            #expect(status == 0 || status == 1, "run \(index): \(status) \(stderr)")
        }
        // A run that lost a race for some input files says so; running again converts what is left.
        let again = try await Self.convert(out)
        #expect(again.status == 0 || again.status == 1, "\(again.stderr)")
        #expect(try Self.records(out) == clean, "two runs at once duplicated or lost records")
        #expect(Self.leftoverRuns(out).isEmpty)
    }

    // MARK: Full disk (failure 2)

    /// Runs `telemetry arguments` with RLIMIT_FSIZE at `bytes` (SIGXFSZ ignored, so writes fail with EFBIG as a
    /// full disk makes them fail with ENOSPC).
    static func runWithFileSizeLimit(_ bytes: Int, _ arguments: [String]) async throws -> ProcessResult {
        try await offThePool {
            try runProcess("/bin/sh", ["-c", "trap '' XFSZ; exec /usr/bin/prlimit --fsize=\(bytes) \"$@\"", "sh", CLI.executable] + arguments,
                           environment: ["TELEMETRY_STORE": ""])
        }
    }

    @Test func aFullDiskStopsConvertWithExitStatus2AndTheNextRunCompletes() async throws {
        let clean = try await Self.offThePool { try Self.clean.get() }
        let directory = TemporaryDirectory("convert-guarantees-full")
        // Work and staged files over the limit.
        let out = directory.file("out")
        let full = try await Self.runWithFileSizeLimit(60_000, try Self.convertArguments(out))
        #expect(full.status == 2, "\(full.status) \(full.stdout) \(full.stderr)")
        #expect(full.stderr.contains("write failed: File too large") && full.stderr.contains(out), "\(full.stderr)")
        let next = try await Self.convert(out)
        #expect(next.status == 0 || next.status == 1, "\(next.stderr)")
        #expect(try Self.records(out) == clean)
        #expect(Self.leftoverRuns(out).isEmpty)

        // An errors file over the limit (every line rejected): Foundation's FileHandle.write trapped here (SIGILL).
        var text = ""
        for i in 0..<1000 { text += String(format: "00000000-0000-4000-8000-%012d\t", i) + "{not json " + String(repeating: "x", count: 400) + "\n" }
        let input = try directory.write("bad.20131029.v2.log", text: text)
        let errorsOut = directory.file("errors-out")
        let refused = try await Self.runWithFileSizeLimit(60_000, ["convert", input, "--out", errorsOut])
        #expect(refused.status == 2, "\(refused.status) \(refused.stderr)")
        #expect(refused.stderr.contains(".errors.jsonl: write failed: File too large"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: errorsOut + "/errors/bad.20131029.v2.log.errors.jsonl"),
                "a partial errors file was published")
        let retried = try await Self.offThePool { try CLI.run(["convert", input, "--out", errorsOut]) }
        #expect(retried.status == 1, "\(retried.stderr)")
        #expect(retried.stdout.contains("1000 rejected"), "\(retried.stdout)")
        let errors = try String(contentsOfFile: errorsOut + "/errors/bad.20131029.v2.log.errors.jsonl", encoding: .utf8)
        #expect(errors.split(separator: "\n").count == 1000)

        // The summary to a full standard output: exit status 2, the conversion itself is committed.
        let summaryOut = directory.file("summary-out")
        let arguments = try Self.convertArguments(summaryOut)
        let toFull = try await Self.offThePool {
            try runProcess("/bin/sh", ["-c", "exec \"$0\" \"$@\" > /dev/full", CLI.executable] + arguments, environment: ["TELEMETRY_STORE": ""])
        }
        #expect(toFull.status == 2, "\(toFull.stderr)")
        #expect(toFull.stderr.contains("standard output: write failed: No space left on device"), "\(toFull.stderr)")
        #expect(try Self.records(summaryOut) == clean)
    }
}
