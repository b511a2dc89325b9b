import Foundation
import TelemetryCore
import TelemetryTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One small dataset of `../shared/tools/gen_pings.py` (120 pings, 5 % damaged records, 5 % resubmitted ids, raw
/// logs and storage files of the same pings, the histogram cache they need), generated once per test process,
/// and the answers `truth_reference.py` computes from its storage files and MANIFEST.json without any of the
/// project's code.
final class GeneratedPings: @unchecked Sendable {   // immutable after init
    static let shared: Result<GeneratedPings, Error> = Result { try GeneratedPings() }

    let directory = TemporaryDirectory("pipeline-gen")
    var rawlog: String { directory.file("gen/rawlog") }
    var histogramCache: String { directory.file("gen/histogram-cache") }
    /// The reference answers (see `truth_reference.py`).
    let j1: [String: Int]
    let j2: [String: Int]
    let duplicates: [String: Int]
    let bad: [String: Int]
    let pings: Int

    private init() throws {
        let out = directory.file("gen")
        for format in ["rawlog", "storage"] {
            let result = try runProcess("/usr/bin/env", [
                "python3", Fixtures.sharedPath("tools/gen_pings.py"), "--pings", "120", "--format", format, "--seed", "3",
                "--bad-fraction", "0.05", "--duplicate-fraction", "0.05", "--days", "3", "--log-files", "2", "--out", out,
            ])
            guard result.status == 0 else { throw TestFailure("gen_pings.py --format \(format) failed: \(result.stderr)") }
        }
        let reference = try runProcess("/usr/bin/env", ["python3", Fixtures.repoPath("Tests/EndToEndTests/truth_reference.py"), out])
        guard reference.status == 0, let object = try JSONSerialization.jsonObject(with: Data(reference.stdout.utf8)) as? [String: Any],
              let j1 = object["j1"] as? [String: Int], let j2 = object["j2"] as? [String: Int],
              let duplicates = object["duplicates"] as? [String: Int], let bad = object["bad"] as? [String: Int],
              let pings = object["pings"] as? Int, let badIDs = object["bad_ids"] as? [String],
              let duplicateIDs = object["duplicate_ids"] as? [String] else {
            throw TestFailure("truth_reference.py failed: \(reference.stderr)")
        }
        // The reference leaves damaged records out by document id: no damaged id may also be a resubmitted one.
        guard Set(badIDs).isDisjoint(with: duplicateIDs), !duplicates.isEmpty, !bad.isEmpty else {
            throw TestFailure("the generated dataset does not suit the reference (seed changed?)")
        }
        (self.j1, self.j2, self.duplicates, self.bad, self.pings) = (j1, j2, duplicates, bad, pings)
    }

    static func get() throws -> GeneratedPings { try shared.get() }

    /// The raw-log files, sorted.
    var rawLogs: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: rawlog)) ?? []).sorted().map { rawlog + "/" + $0 }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What a store answers to the truth questions, in SQL and as jobs.
struct StoreAnswers: Equatable {
    var j1: [String: Int]
    var j2: [String: Int]
    var duplicates: [String: Int]
    var badLines: [String: Int]
    var pings: Int

    /// J2 in SQL written here, independently of the project's histogram functions: element-wise sums of the
    /// GC_MS storage arrays (buckets only) per channel and bucket count.
    static let j2SQL = """
        WITH h AS (SELECT appUpdateChannel AS channel,
                          coalesce(json_extract(payload, '$.histograms.GC_MS'), json_extract(payload, '$.payload.histograms.GC_MS')) AS arr
                   FROM pings)
        SELECT channel || '|' || (json_array_length(arr) - 5) || '|' || b.key, sum(b.value)
        FROM h, json_each(h.arr) b
        WHERE json_type(arr) = 'array' AND b.key < json_array_length(arr) - 5 GROUP BY 1
        """

    /// The answers of `store`, from one `telemetry query` of five statements (a `#` row between them).
    static func of(_ store: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> StoreAnswers {
        let statements = [
            "SELECT coalesce(os, 'NULL'), count(*) FROM pings GROUP BY 1",
            j2SQL,
            "SELECT document_id || '/' || ping_type, copies FROM duplicate_documents",
            "SELECT reason, count(*) FROM import_errors WHERE severity = 'error' GROUP BY 1",
            "SELECT 'pings', count(*) FROM pings",
        ]
        let rows = try CLI.csvRows(statements.joined(separator: ";\nSELECT '#';\n"), store: store, sourceLocation: sourceLocation)
        var groups: [[String: Int]] = [[:]]
        for row in rows {
            if row == ["#"] { groups.append([:]); continue }
            if row.count == 2 { groups[groups.count - 1][row[0]] = Int(row[1]) }
        }
        guard groups.count == statements.count else { throw TestFailure("\(store): unexpected query output \(rows.prefix(5))") }
        return StoreAnswers(j1: groups[0], j2: groups[1], duplicates: groups[2], badLines: groups[3], pings: groups[4]["pings"] ?? -1)
    }

    /// Checks J1 and J2 as jobs (`os-distribution`, `histogram-by-channel --histogram GC_MS`) against `reference`.
    static func checkJobs(_ store: String, against reference: GeneratedPings, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let os = try CLI.run(["job", "os-distribution", "--store", store])
        #expect(os.status == 1, "pings without info.OS are reported as bad pings", sourceLocation: sourceLocation)
        var j1: [String: Int] = [:]
        for line in os.stdout.split(separator: "\n") {
            let fields = line.split(separator: "\t")
            if fields.count == 2 { j1[String(fields[0])] = Int(fields[1]) }
        }
        var expected = reference.j1
        let withoutOS = expected.removeValue(forKey: "NULL") ?? 0
        #expect(j1 == expected, sourceLocation: sourceLocation)
        #expect(os.stderr.components(separatedBy: "no info.OS").count - 1 == withoutOS, sourceLocation: sourceLocation)

        let histogram = try CLI.run(["job", "histogram-by-channel", "--histogram", "GC_MS", "--store", store])
        #expect(histogram.status == 0, "\(histogram.stderr)", sourceLocation: sourceLocation)
        // One row per channel and layout: `channel` alone, or `channel [n buckets]` when the channel's pings carry
        // several layouts; the value is the storage-format sum (n buckets, then the five statistics).
        var j2: [String: Int] = [:]
        var rows = 0
        for line in histogram.stdout.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 2 else { continue }
            let array = try #require(try JSONSerialization.jsonObject(with: Data(fields[1].utf8)) as? [NSNumber], "\(line)",
                                     sourceLocation: sourceLocation)
            let bucketCount = array.count - 5
            var channel = String(fields[0])
            if let open = channel.range(of: " [", options: .backwards), channel.hasSuffix(" buckets]") {
                #expect(channel[open.upperBound...] == "\(bucketCount) buckets]", "\(line)", sourceLocation: sourceLocation)
                channel = String(channel[..<open.lowerBound])
            }
            for (index, sum) in array.prefix(bucketCount).enumerated() {
                #expect(j2.updateValue(sum.intValue, forKey: "\(channel)|\(bucketCount)|\(index)") == nil, "\(line)",
                        sourceLocation: sourceLocation)
            }
            rows += 1
        }
        #expect(rows > 0, "\(histogram.stdout)", sourceLocation: sourceLocation)
        #expect(j2 == reference.j2, sourceLocation: sourceLocation)
    }

    /// Checks every SQL answer against `reference`; `badLines` is what this store's imports must have recorded.
    func check(against reference: GeneratedPings, badLines: [String: Int], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(j1 == reference.j1, sourceLocation: sourceLocation)
        #expect(j2 == reference.j2, sourceLocation: sourceLocation)
        #expect(duplicates == reference.duplicates, sourceLocation: sourceLocation)
        #expect(pings == reference.pings, sourceLocation: sourceLocation)
        #expect(self.badLines == badLines, sourceLocation: sourceLocation)
    }
}

/// The stages chained as an analyst chains them (issue 11): each reported failure, then the truth test.
@Suite(.timeLimit(.minutes(10)))
struct PipelineTests {
    /// Failure 1: a raw-log import without definitions used to stay failed and then report clean.
    @Test func rawLogsImportedWithoutDefinitionsAreRetriedWithThem() throws {
        let generated = try GeneratedPings.get()
        let directory = TemporaryDirectory("pipeline-retry")
        let store = directory.file("s.db")
        let first = try CLI.run(["import", generated.rawlog, "--store", store])
        #expect(first.status == 1)
        #expect(first.stderr.contains("warning: no --histogram-cache or --histogram-server"), "\(first.stderr)")
        #expect(first.stdout.contains("Records without histogram definitions (unknown_revision) in 2 file(s)"), "\(first.stdout)")
        let message = try CLI.csvRows("SELECT DISTINCT substr(message, instr(message, '(no Histograms.json')) FROM import_errors WHERE reason = 'unknown_revision' LIMIT 1", store: store)
        #expect(message.first?.first?.hasSuffix(": no --histogram-cache or --histogram-server given)") == true, "\(message)")

        // A no-op re-run names the files that still have errors.
        let again = try CLI.run(["import", generated.rawlog, "--store", store])
        #expect(again.stdout.contains("Unchanged, still with errors from an earlier import:\n  \(generated.rawLogs[0])\n"), "\(again.stdout)")

        // With definitions the same files are read again and everything importable is imported.
        let retried = try CLI.run(["import", generated.rawlog, "--store", store, "--histogram-cache", generated.histogramCache])
        #expect(retried.stdout.contains("Retried 2 file(s) whose records lacked histogram definitions at an earlier import."), "\(retried.stdout)")
        try StoreAnswers.of(store).check(against: generated, badLines: generated.bad)
        let unchanged = try CLI.run(["import", generated.rawlog, "--store", store])
        #expect(unchanged.status == 0)
        #expect(unchanged.stdout.contains("Imported 0 pings from 0 file(s)"))

        // --force reads them again whatever their state, and the answers stay the same.
        let forced = try CLI.run(["import", "--force", generated.rawLogs[0], "--store", store])
        #expect(forced.stdout.contains("Re-imported 1 file(s) (--force)."), "\(forced.stdout)")
        try StoreAnswers.of(store).check(against: generated, badLines: generated.bad)
    }

    /// Failure 2: `.import` ignored the store's remembered histogram cache; it and `telemetry import` now build
    /// the same store.
    @Test func dotImportAndImportBuildIdenticalStores() throws {
        let generated = try GeneratedPings.get()
        let directory = TemporaryDirectory("pipeline-dot-import")
        let (command, shell) = (directory.file("command.db"), directory.file("shell.db"))
        // Both stores first remember the cache (an import of the committed sample), then import the raw logs.
        for store in [command, shell] {
            _ = try CLI.run(["import", Sample.storage, "--store", store, "--histogram-cache", generated.histogramCache])
        }
        let imported = try CLI.run(["import", generated.rawlog, "--store", command])
        #expect(imported.status == 1)   // the damaged records
        let script = try CLI.run(["run", "-", "--store", shell], stdin: ".import \(generated.rawlog)\n")
        #expect(script.stderr.contains("Imported \(generated.pings) pings from 2 files."), "\(script.stderr)")
        let dump = """
            SELECT p.document_id, p.line, p.reason, p.appName, p.appUpdateChannel, p.appVersion, p.appBuildID, p.os, p.revision,
                   p.payload FROM pings p ORDER BY p.file_id, p.line;
            SELECT reason, line, severity, message FROM import_errors ORDER BY path, line, reason;
            SELECT path, status, record_count, bad_line_count FROM source_files ORDER BY path;
            """
        let fromCommand = try CLI.run(["query", dump, "--store", command, "--format", "csv"])
        let fromShell = try CLI.run(["query", dump, "--store", shell, "--format", "csv"])
        #expect(fromCommand.status == 0, "\(fromCommand.stderr)")
        #expect(fromCommand.stdout == fromShell.stdout)
        #expect(try StoreAnswers.of(shell).j2 == StoreAnswers.of(command).j2)
    }

    /// Failure 3: `convert --out DIR` then `import DIR` exited 1 on convert's own errors/ files.
    @Test func convertOutputImportsCleanly() throws {
        let generated = try GeneratedPings.get()
        let directory = TemporaryDirectory("pipeline-convert")
        let out = directory.file("out")
        let converted = try CLI.run(["convert", generated.rawlog, "--out", out, "--histogram-cache", generated.histogramCache, "--json"])
        #expect(converted.status == 1)   // records were rejected…
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(converted.stdout.utf8)) as? [String: Any])
        #expect(summary["failures"] as? [String: Int] == generated.bad)
        #expect(FileManager.default.fileExists(atPath: out + "/errors"))
        let store = directory.file("s.db")
        let imported = try CLI.run(["import", out, "--store", store])
        #expect(imported.status == 0, "\(imported.stdout)\(imported.stderr)")   // …but everything importable is imported
        #expect(imported.stdout.contains("Skipped 2 rejected-record file(s) of telemetry convert (errors/*.errors.jsonl)."), "\(imported.stdout)")
        try StoreAnswers.of(store).check(against: generated, badLines: [:])
    }

    /// Failure 8: a typo in a parameter name or a path gave an empty answer with exit status 0.
    @Test func unboundParametersAndEmptyPathsAreErrors() throws {
        let directory = TemporaryDirectory("pipeline-typos")
        let (store, _) = try Sample.importInto(directory)
        let unbound = try CLI.run(["query", "SELECT count(*) FROM pings WHERE os = :os", "--store", store])
        #expect(unbound.status == 1)
        #expect(unbound.stderr.contains("parameter :os has no value"), "\(unbound.stderr)")
        let explicitNull = try CLI.run(["query", "SELECT count(*) FROM pings WHERE :os IS NULL", "--store", store, "--param", "os=NULL",
                                        "--format", "csv", "--no-header"])
        let pings = try #require(try CLI.scalar("SELECT count(*) FROM pings", store: store))
        #expect(explicitNull.status == 0, "\(explicitNull.stderr)")
        #expect(explicitNull.stdout == "\(pings)\n")
        let given = try CLI.run(["query", "SELECT count(*) FROM pings WHERE os = :os", "--store", store, "--param", "os=WINNT",
                                 "--format", "csv", "--no-header"])
        #expect(given.status == 0 && Int(given.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 0)
        let script = try CLI.run(["run", "-", "--store", store], stdin: "SELECT count(*) FROM pings WHERE appUpdateChannel = :chanel;\n")
        #expect(script.status == 1)
        #expect(script.stderr.contains("parameter :chanel has no value"), "\(script.stderr)")

        let empty = directory.file("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let nothing = try CLI.run(["import", empty, "--store", store])
        #expect(nothing.status == 1)
        #expect(nothing.stdout.contains("warning: \(empty): no file to import there"), "\(nothing.stdout)")
        let dotImport = try CLI.run(["run", "-", "--store", store], stdin: ".import \(empty)\n")
        #expect(dotImport.status == 1)
        #expect(dotImport.stderr.contains("\(empty): no file to import there"), "\(dotImport.stderr)")
    }
}

/// The truth test (issue 11 item 9): every raw record POSTed to a live `telemetry serve` that rotates its logs
/// while imports run; the finished logs converted with the histogram cache and imported; the same raw logs
/// imported directly and with `.import`. Every store must give the reference's answers exactly, in SQL and as
/// jobs, and a second run of every import must change nothing.
@Suite(.timeLimit(.minutes(10)))
struct PipelineTruthTests {
    @Test func servedConvertedAndImportedPingsGiveTheReferenceAnswers() throws {
        let generated = try GeneratedPings.get()
        let directory = TemporaryDirectory("pipeline-truth")
        let logs = directory.file("logs")
        let liveStore = directory.file("live.db")

        // Serve, rotating about every 250 kB; import the log directory every 50 submissions while it is written:
        // the open log is skipped (failure 4: it used to be imported, then again once renamed .finished).
        let server = try ServeProcess(["--log-path", logs, "--max-log-size", "250000"], in: directory)
        let port = try #require(server.port())
        var posted = 0
        var skippedOpen = false
        for path in generated.rawLogs {
            let reader = try RawLogReader(path: path)
            while let item = try reader.next() {
                guard case let .record(record) = item else { continue }
                let status = try Wire.post(port: port, path: record.pathString, body: record.data)
                #expect(status == 200, "\(record.pathString): \(status)")
                posted += 1
                if posted % 50 == 0 {
                    let live = try CLI.run(["import", logs, "--store", liveStore, "--histogram-cache", generated.histogramCache])
                    #expect(live.status <= 1, "\(live.stderr)")
                    if live.stdout.contains("raw log(s) telemetry serve has not finished") { skippedOpen = true }
                }
            }
        }
        server.send(SIGTERM)
        #expect(server.wait(seconds: 20) == 0)
        #expect(skippedOpen)
        let finished = try FileManager.default.contentsOfDirectory(atPath: logs).sorted().map { logs + "/" + $0 }
        #expect(finished.count >= 3 && finished.allSatisfy { $0.hasSuffix(".finished") }, "\(finished)")
        let lastLive = try CLI.run(["import", logs, "--store", liveStore])
        #expect(lastLive.status == 1, "\(lastLive.stderr)")   // the damaged records of the last files
        let live = try StoreAnswers.of(liveStore)
        live.check(against: generated, badLines: generated.bad)
        try StoreAnswers.checkJobs(liveStore, against: generated)

        // The finished logs converted with the cache, then imported: no bad line is left for the import.
        let out = directory.file("converted")
        let converted = try CLI.run(["convert"] + finished + ["--out", out, "--histogram-cache", generated.histogramCache, "--json"])
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(converted.stdout.utf8)) as? [String: Any], "\(converted.stderr)")
        #expect(summary["failures"] as? [String: Int] == generated.bad)
        let convertedStore = directory.file("converted.db")
        let imported = try CLI.run(["import", out, "--store", convertedStore])
        #expect(imported.status == 0, "\(imported.stdout)\(imported.stderr)")
        try StoreAnswers.of(convertedStore).check(against: generated, badLines: [:])
        try StoreAnswers.checkJobs(convertedStore, against: generated)

        // The generator's raw logs imported directly, and with .import in the REPL (the cache given once).
        let rawStore = directory.file("raw.db")
        let raw = try CLI.run(["import", generated.rawlog, "--store", rawStore, "--histogram-cache", generated.histogramCache])
        #expect(raw.status == 1)
        try StoreAnswers.of(rawStore).check(against: generated, badLines: generated.bad)
        try StoreAnswers.checkJobs(rawStore, against: generated)
        let replStore = directory.file("repl.db")
        let repl = try CLI.run(["run", "-", "--store", replStore], stdin: ".import \(generated.rawlog) --histogram-cache \(generated.histogramCache)\n")
        #expect(repl.stderr.contains("Imported \(generated.pings) pings from 2 files."), "\(repl.stderr)")
        try StoreAnswers.of(replStore).check(against: generated, badLines: generated.bad)

        // A second run of every import changes nothing.
        let again: [(String, [String], String?)] = [
            (liveStore, ["import", logs, "--store", liveStore], nil),
            (convertedStore, ["import", out, "--store", convertedStore], nil),
            (rawStore, ["import", generated.rawlog, "--store", rawStore], nil),
            (replStore, ["run", "-", "--store", replStore], ".import \(generated.rawlog)\n"),
        ]
        for (store, arguments, stdin) in again {
            let before = try StoreAnswers.of(store)
            let rerun = try CLI.run(arguments, stdin: stdin)
            #expect(rerun.stdout.contains("Imported 0 pings from 0 file(s)") || rerun.stderr.contains("Imported 0 pings from 0 files."),
                    "\(rerun.stdout)\(rerun.stderr)")
            let after = try StoreAnswers.of(store)
            #expect(after == before)
        }
    }
}
