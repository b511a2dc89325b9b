import Foundation
import Testing
import TelemetryStore
import TelemetryTestSupport

/// `kill -9` (or Ctrl-C) in the middle of an import, then the same import again: the store must end up exactly
/// like one clean import (one transaction per source file; docs/store.md "Import").
struct KillResumeTests {
    /// Generates 1500 pings (348 xz files, ~55 MB of JSON) with `../shared/tools/gen_pings.py`; returns the storage root.
    static func generate(into directory: TemporaryDirectory) throws -> String {
        let out = directory.file("gen")
        let result = try runProcess("/usr/bin/env", ["python3", Fixtures.sharedPath("tools/gen_pings.py"), "--pings", "1500",
                                                     "--format", "storage", "--seed", "7", "--out", out])
        try #require(result.status == 0, "gen_pings.py failed: \(result.stderr)")
        return out + "/storage"
    }

    /// Number of regular files under `root`.
    static func fileCount(_ root: String) -> Int {
        let enumerator = FileManager.default.enumerator(at: URL(fileURLWithPath: root), includingPropertiesForKeys: [.isRegularFileKey])
        var count = 0
        while let url = enumerator?.nextObject() as? URL {
            if (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true { count += 1 }
        }
        return count
    }

    /// Committed `source_files` rows of `store`, read through a separate read-only connection (nil while the
    /// store is not there yet or is busy being created).
    static func committedFiles(_ store: String) -> Int? {
        guard FileManager.default.fileExists(atPath: store),
              let connection = try? Connection(path: store, create: false, readOnly: true),
              let count = try? connection.scalarInt("SELECT count(*) FROM source_files") else { return nil }
        return Int(count)
    }

    /// Starts `telemetry import root --store store --jobs 2`, waits until at least `killAt` files are committed,
    /// then sends `signal`. Returns the number of files committed once the process is gone, and its stdout.
    static func importAndSignal(_ signal: Int32, root: String, store: String, killAt: Int, total: Int,
                                sourceLocation: SourceLocation = #_sourceLocation) throws -> (committed: Int, stdout: String) {
        let stdoutPath = store + ".stdout"
        let process = try ChildProcess(CLI.executable, ["import", root, "--store", store, "--jobs", "2"],
                                       environment: ["TELEMETRY_STORE": ""], stdout: stdoutPath)
        let deadline = Date(timeIntervalSinceNow: 300)
        while process.isRunning && Date() < deadline {
            if let committed = committedFiles(store), committed >= killAt { break }
            usleep(2_000)
        }
        let wasRunning = process.isRunning
        process.send(signal)
        process.wait()
        #expect(wasRunning, "the import finished before it could be stopped at \(killAt) of \(total) files",
                sourceLocation: sourceLocation)
        if signal == SIGKILL {
            #expect(process.terminatingSignal == SIGKILL, "the import was not killed by the signal", sourceLocation: sourceLocation)
        } else {
            // SIGINT: the file in progress is rolled back, the summary printed, and the exit status is 1.
            #expect(process.terminatingSignal == nil, sourceLocation: sourceLocation)
            #expect(process.exitStatus == 1, sourceLocation: sourceLocation)
        }
        let stdout = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
        return (committedFiles(store) ?? 0, stdout)
    }

    /// Every row of `sql` in `a` equals the row at the same position in `b` (stepped in lockstep, nothing buffered).
    static func sameRows(_ sql: String, _ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let left = try Connection(path: a, create: false, readOnly: true)
        let right = try Connection(path: b, create: false, readOnly: true)
        let l = try left.prepare(sql), r = try right.prepare(sql)
        #expect(l.columnCount == r.columnCount, sourceLocation: sourceLocation)
        var row = 0
        while true {
            let hasLeft = try l.step(), hasRight = try r.step()
            guard hasLeft == hasRight else {
                Issue.record("row \(row): \(a) has \(hasLeft ? "more" : "fewer") rows than \(b)", sourceLocation: sourceLocation)
                return
            }
            if !hasLeft { break }
            for column in 0..<l.columnCount where l.value(column) != r.value(column) {
                Issue.record("row \(row), column \(l.columnName(column)) (document \(l.columnText(0) ?? "?")) differs",
                             sourceLocation: sourceLocation)
                return
            }
            row += 1
        }
        #expect(row > 0, "no rows compared", sourceLocation: sourceLocation)
    }

    /// What a store must hold after any sequence of killed and completed imports: consistent tables, nothing
    /// half-imported, and (after completion) exactly the clean import's rows.
    static func checkConsistent(_ store: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try CLI.csvRows("PRAGMA integrity_check", store: store) == [["ok"]], sourceLocation: sourceLocation)
        #expect(try CLI.scalar("SELECT count(*) FROM source_files WHERE status = 'importing'", store: store) == 0,
                sourceLocation: sourceLocation)
        #expect(try CLI.scalar("SELECT count(*) FROM source_files WHERE status <> 'ok'", store: store) == 0,
                sourceLocation: sourceLocation)
        // Every ping belongs to a committed file, and each file's count is what it recorded.
        #expect(try CLI.scalar("SELECT count(*) FROM pings WHERE file_id NOT IN (SELECT file_id FROM source_files)",
                               store: store) == 0, sourceLocation: sourceLocation)
        #expect(try CLI.scalar("""
            SELECT count(*) FROM source_files f
            WHERE record_count <> (SELECT count(*) FROM pings p WHERE p.file_id = f.file_id)
            """, store: store) == 0, sourceLocation: sourceLocation)
    }

    @Test("kill -9 at about 30% (or at 30% then 65%, or Ctrl-C at 30%), import again: the store equals a clean import's")
    func killedImportResumesToTheCleanResult() throws {
        let directory = TemporaryDirectory("e2e-kill")
        let root = try Self.generate(into: directory)
        let total = Self.fileCount(root)
        #expect(total == 348)

        // The reference: one clean, uninterrupted import.
        let clean = directory.file("B.db")
        let reference = try CLI.run(["import", root, "--store", clean, "--jobs", "2"])
        try #require(reference.status == 0, "clean import failed: \(reference.stdout)\n\(reference.stderr)")
        #expect(reference.stdout.hasPrefix("Imported 1500 pings from \(total) file(s)"), "\(reference.stdout)")
        #expect(try CLI.scalar("SELECT count(*) FROM pings", store: clean) == 1500)
        try Self.checkConsistent(clean)

        // Stop points as fractions of the files: kill -9 at 30%; kill -9 at 30% and the resumed import at 65%;
        // Ctrl-C (SIGINT) at 30%, which must roll back the file in progress and say how to finish.
        let schedules: [(name: String, signal: Int32, fractions: [Double])] = [
            ("kill-30", SIGKILL, [0.3]), ("kill-30-65", SIGKILL, [0.3, 0.65]), ("int-30", SIGINT, [0.3]),
        ]
        for schedule in schedules {
            let store = directory.file("A-\(schedule.name).db")
            var committed = 0
            for fraction in schedule.fractions {
                let stopped = try Self.importAndSignal(schedule.signal, root: root, store: store,
                                                       killAt: Int(Double(total) * fraction), total: total)
                committed = stopped.committed
                #expect(committed >= Int(Double(total) * fraction) && committed < total,
                        "\(schedule.name): stopped with \(committed) of \(total) files committed (aimed at \(fraction))")
                if schedule.signal == SIGINT {
                    #expect(stopped.stdout.contains("Interrupted: the files done are committed; run the same command again to finish."),
                            "stdout: \(stopped.stdout)")
                    #expect(stopped.stdout.hasPrefix("Imported "), "stdout: \(stopped.stdout)")
                    #expect(stopped.stdout.contains("from \(committed) file(s)"), "stdout: \(stopped.stdout)")
                }
                try Self.checkConsistent(store)
            }
            let pingsBefore = try #require(try CLI.scalar("SELECT count(*) FROM pings", store: store))
            #expect(pingsBefore > 0 && pingsBefore < 1500)
            let resumed = try CLI.run(["import", root, "--store", store, "--jobs", "2"])
            #expect(resumed.status == 0, "resume failed: \(resumed.stdout)\n\(resumed.stderr)")
            #expect(resumed.stdout.hasPrefix("Imported \(1500 - pingsBefore) pings "), "\(resumed.stdout)")
            #expect(resumed.stdout.contains("from \(total - committed) file(s)"), "\(resumed.stdout)")
            #expect(resumed.stdout.contains("; \(committed) unchanged file(s) skipped."), "\(resumed.stdout)")
            try Self.checkConsistent(store)

            #expect(try CLI.scalar("SELECT count(*) FROM source_files", store: store) == total)
            #expect(try CLI.scalar("SELECT count(*) FROM pings", store: store) == 1500)
            try Self.sameRows("""
                SELECT document_id, reason, appUpdateChannel, appVersion, appBuildID, submission_date, os, payload
                FROM pings ORDER BY document_id, payload
                """, store, clean)
            try Self.sameRows("""
                SELECT path, size, content_hash, format, status, record_count, bad_line_count, uncompressed_bytes
                FROM source_files ORDER BY path
                """, store, clean)
        }
    }
}
