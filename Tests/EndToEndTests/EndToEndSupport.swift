import Foundation
import Testing
import TelemetryTestSupport

/// Runs the built `telemetry` executable (`Fixtures.telemetryExecutable`).
enum CLI {
    /// Path of the executable under test.
    static var executable: String { Fixtures.telemetryExecutable }

    /// Runs `telemetry arguments…` and waits for it. `TELEMETRY_STORE` is blanked so that only `--store` counts.
    static func run(_ arguments: [String], currentDirectory: String? = nil,
                    environment: [String: String] = [:], stdin: String? = nil) throws -> ProcessResult {
        var env = ["TELEMETRY_STORE": ""]
        for (key, value) in environment { env[key] = value }
        return try runProcess(executable, arguments, stdin: stdin, environment: env, currentDirectory: currentDirectory)
    }

    /// `telemetry query SQL --store STORE --format csv --no-header`, split into rows of fields.
    /// Only for results without commas, quotes or newlines inside values (counts and dimension values).
    static func csvRows(_ sql: String, store: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [[String]] {
        let result = try run(["query", sql, "--store", store, "--format", "csv", "--no-header"])
        #expect(result.status == 0, "query failed: \(result.stderr)", sourceLocation: sourceLocation)
        return result.stdout.split(separator: "\n", omittingEmptySubsequences: true).map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// The single integer a one-row, one-column query returns (nil when the output is not that).
    static func scalar(_ sql: String, store: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int? {
        let rows = try csvRows(sql, store: store, sourceLocation: sourceLocation)
        guard rows.count == 1, rows[0].count == 1 else { return nil }
        return Int(rows[0][0])
    }

    /// `[first column: second column as Int]` of a two-column query (a `GROUP BY` count).
    static func counts(_ sql: String, store: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try csvRows(sql, store: store, sourceLocation: sourceLocation) where row.count == 2 {
            counts[row[0]] = Int(row[1])
        }
        return counts
    }
}

/// The committed sample dataset and its expected numbers (`datasets/sample/EXPECTED.json`).
enum Sample {
    static let storage = Fixtures.repoPath("datasets/sample/storage")

    /// `datasets/sample/EXPECTED.json`, parsed.
    static func expected() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.repoPath("datasets/sample/EXPECTED.json")))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// `expected()[key]` as a `[String: Int]` map (the `by_*` counts, `bad_lines`).
    static func counts(_ key: String) throws -> [String: Int] {
        let object = try #require(try expected()[key] as? [String: Any], "EXPECTED.json has no object \(key)")
        return object.compactMapValues { ($0 as? NSNumber)?.intValue }
    }

    /// `expected()[key]` as an Int.
    static func number(_ key: String) throws -> Int {
        try #require((try expected()[key] as? NSNumber)?.intValue, "EXPECTED.json has no number \(key)")
    }

    /// Imports the sample into `<directory>/sample.db` and returns the store path and the run's result.
    static func importInto(_ directory: TemporaryDirectory, extra: [String] = []) throws -> (store: String, result: ProcessResult) {
        let store = directory.file("sample.db")
        let result = try CLI.run(["import", storage, "--store", store] + extra)
        return (store, result)
    }

    /// The saved queries (`queries/*.sql`), by file name without extension, sorted.
    static let queryNames: [String] = {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.repoPath("queries"))) ?? []
        return files.filter { $0.hasSuffix(".sql") }.map { String($0.dropLast(4)) }.sorted()
    }()
}

/// Golden files under `Tests/EndToEndTests/Golden/` (STYLE.md §7).
///
/// With `RECORD_GOLDEN=1` in the environment the actual text is written to the golden file and the test FAILS,
/// so that every re-record is looked at before it is committed; otherwise the text must match exactly.
enum Golden {
    static let directory = Fixtures.repoPath("Tests/EndToEndTests/Golden")

    static var isRecording: Bool { ProcessInfo.processInfo.environment["RECORD_GOLDEN"] == "1" }

    static func path(_ name: String) -> String { directory + "/" + name + ".txt" }

    static func check(_ actual: String, named name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = path(name)
        if isRecording {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(actual.utf8).write(to: URL(fileURLWithPath: file))
            Issue.record("recorded \(file) (RECORD_GOLDEN=1): review the diff, then run again without RECORD_GOLDEN",
                         sourceLocation: sourceLocation)
            return
        }
        guard let expected = try? String(contentsOfFile: file, encoding: .utf8) else {
            Issue.record("no golden file \(file): record it with RECORD_GOLDEN=1", sourceLocation: sourceLocation)
            return
        }
        if expected != actual {
            let difference = firstDifference(expected: expected, actual: actual)
            Issue.record("output differs from \(file) (re-record with RECORD_GOLDEN=1 if the change is intended)\n\(difference)",
                         sourceLocation: sourceLocation)
        }
    }

    /// The first line that differs, both ways, for the failure message.
    static func firstDifference(expected: String, actual: String) -> String {
        let e = expected.components(separatedBy: "\n"), a = actual.components(separatedBy: "\n")
        for index in 0..<max(e.count, a.count) {
            let left = index < e.count ? e[index] : "<end of file>"
            let right = index < a.count ? a[index] : "<end of output>"
            if left != right { return "line \(index + 1):\n  golden: \(left)\n  actual: \(right)" }
        }
        return "(same lines; whitespace at the end differs)"
    }
}
