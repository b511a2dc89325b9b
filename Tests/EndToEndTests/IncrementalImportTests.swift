import Foundation
import Testing
import TelemetryTestSupport

/// Importing again: unchanged files are skipped, changed ones replace their earlier rows (never duplicate them).
struct IncrementalImportTests {
    /// A file of the sample with one bad line (invalid_json at line 3), relative to the storage root.
    static let damagedFile = "main/Firefox/beta/24.0/20130911001025.20131016.v2.log.7f551fccbea92e0d90e6b55f4381bee5.xz"
    /// A file of the sample without bad lines (16 good records).
    static let cleanFile = "saved_session/Firefox/nightly/27.0a1/20131015030204.20131016.v2.log.18979d514726d074b5d7aa5c2326b1da.xz"

    @Test("importing the sample twice: the second run imports 0 pings, skips all 52 files, exits 0; counts unchanged")
    func secondImportIsANoOp() throws {
        let directory = TemporaryDirectory("e2e-incremental")
        let (store, first) = try Sample.importInto(directory)
        #expect(first.status == 1)
        let files = try Sample.number("files")
        #expect(files == 52)

        let second = try CLI.run(["import", Sample.storage, "--store", store])
        #expect(second.status == 0, "nothing new failed, so the second run succeeds; stdout: \(second.stdout)")
        let lines = second.stdout.components(separatedBy: "\n")
        #expect(lines.first?.hasPrefix("Imported 0 pings from 0 file(s) into \(store) in ") == true, "\(lines.first ?? "")")
        #expect(lines.first?.hasSuffix("; \(files) unchanged file(s) skipped, 1 of them still with errors from an earlier import (see import_errors).") == true, "\(lines.first ?? "")")
        #expect(lines.contains("Bad lines: 0."))
        #expect(try CLI.scalar("SELECT count(*) FROM pings", store: store) == 363)
        #expect(try CLI.scalar("SELECT count(*) FROM import_errors", store: store) == 7)
        #expect(try CLI.scalar("SELECT count(*) FROM source_files", store: store) == files)

        // The same directory spelled relatively (from the package root) is the same set of files.
        let relative = try CLI.run(["import", "datasets/sample/storage/", "--store", store, "--json"],
                                   currentDirectory: Fixtures.packageRoot.path)
        #expect(relative.status == 0)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(relative.stdout.utf8)) as? [String: Any])
        #expect(summary["pings"] as? Int == 0)
        #expect(summary["files_unchanged"] as? Int == files)
        #expect(summary["files_imported"] as? Int == 0)
        #expect(try CLI.scalar("SELECT count(*) FROM pings", store: store) == 363)
        #expect(try CLI.scalar("SELECT count(*) FROM source_files", store: store) == files)
    }

    @Test("a touched file (same content) is skipped; a rewritten one replaces its rows and its bad lines")
    func changedFilesAreReplaced() throws {
        let directory = TemporaryDirectory("e2e-changed")
        let root = directory.file("storage")
        try FileManager.default.copyItem(atPath: Sample.storage, toPath: root)
        let store = directory.file("copy.db")
        #expect(try CLI.run(["import", root, "--store", store]).status == 1)

        // Same bytes, new mtime: the content hash says unchanged.
        let clean = root + "/" + Self.cleanFile
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: clean)
        let touched = try CLI.run(["import", root, "--store", store])
        #expect(touched.status == 0)
        #expect(touched.stdout.hasPrefix("Imported 0 pings from 0 file(s)"), "stdout: \(touched.stdout)")
        #expect(touched.stdout.contains("; 52 unchanged file(s) skipped, 1 of them still with errors"))

        // The same records as plain text: the file changed, so its rows are replaced, not added to.
        for file in [Self.cleanFile, Self.damagedFile] {
            let path = root + "/" + file
            let plain = try runProcess("/usr/bin/env", ["xz", "-dc", path])
            #expect(plain.status == 0, "xz -dc: \(plain.stderr)")
            try Data(plain.stdout.utf8).write(to: URL(fileURLWithPath: path))
        }
        let rewritten = try CLI.run(["import", root, "--store", store])
        #expect(rewritten.status == 1, "the rewritten damaged file still has its bad line")
        #expect(rewritten.stdout.contains("from 2 file(s)"), "stdout: \(rewritten.stdout)")
        #expect(rewritten.stdout.contains("50 unchanged file(s) skipped, 1 of them still with errors from an earlier import (see import_errors), 2 changed file(s) replaced"), "stdout: \(rewritten.stdout)")
        #expect(rewritten.stdout.contains("Bad lines: 1 (invalid_json 1)."), "stdout: \(rewritten.stdout)")
        #expect(try CLI.scalar("SELECT count(*) FROM pings", store: store) == 363)
        #expect(try CLI.scalar("SELECT count(DISTINCT document_id) FROM pings", store: store) == 360)
        #expect(try CLI.scalar("SELECT count(*) FROM import_errors", store: store) == 7, "bad lines recorded once, not twice")
        #expect(try CLI.counts("SELECT format, count(*) FROM source_files WHERE status = 'ok' GROUP BY format", store: store)
                == ["xz": 49, "plain": 2])
        #expect(try CLI.csvRows("SELECT record_count, bad_line_count FROM source_files WHERE path = '\(clean)'", store: store)
                == [["16", "0"]])
        #expect(try CLI.counts("SELECT os, count(*) FROM pings GROUP BY 1", store: store) == (try Sample.counts("by_OS")))
    }
}
