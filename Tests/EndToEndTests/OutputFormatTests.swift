import Foundation
import Testing
import TelemetryTestSupport

/// `telemetry query --format table|csv|tsv|json` and `--no-header` on the sample's store, and BR-10
/// (non-finite reals must not make the JSON output invalid; `NaN` in a payload is a bad line).
struct OutputFormatTests {
    static let osQuery = Fixtures.repoPath("queries/os_distribution.sql")

    /// `(os, pings)` of EXPECTED.json's `by_OS`, ordered as `queries/os_distribution.sql` orders them.
    static func expectedOSRows() throws -> [(String, Int)] {
        try Sample.counts("by_OS").sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { ($0.key, $0.value) }
    }

    static func query(_ store: String, _ arguments: [String]) throws -> ProcessResult {
        let result = try CLI.run(["query", "--store", store] + arguments)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        return result
    }

    @Test("the OS distribution in csv, tsv, json and table, with and without a header")
    func osDistributionInEveryFormat() throws {
        let directory = TemporaryDirectory("e2e-formats")
        let (store, _) = try Sample.importInto(directory)
        let rows = try Self.expectedOSRows()
        #expect(rows.map(\.0) == ["WINNT", "Darwin", "Linux"])
        #expect(rows.map(\.1) == [259, 59, 45])

        let csv = try Self.query(store, ["--file", Self.osQuery, "--format", "csv"]).stdout
        #expect(csv == "os,pings\n" + rows.map { "\($0.0),\($0.1)\n" }.joined())
        let csvBare = try Self.query(store, ["--file", Self.osQuery, "--format", "csv", "--no-header"]).stdout
        #expect(csvBare == rows.map { "\($0.0),\($0.1)\n" }.joined())

        let tsv = try Self.query(store, ["--file", Self.osQuery, "--format", "tsv"]).stdout
        #expect(tsv == "os\tpings\n" + rows.map { "\($0.0)\t\($0.1)\n" }.joined())
        let tsvBare = try Self.query(store, ["--file", Self.osQuery, "--format", "tsv", "--no-header"]).stdout
        #expect(tsvBare == rows.map { "\($0.0)\t\($0.1)\n" }.joined())

        let table = try Self.query(store, ["--file", Self.osQuery]).stdout
        #expect(table == "os      pings\n------  -----\nWINNT     259\nDarwin     59\nLinux      45\n")
        let tableBare = try Self.query(store, ["--file", Self.osQuery, "--no-header"]).stdout
        #expect(tableBare == "WINNT   259\nDarwin   59\nLinux    45\n")

        let json = try Self.query(store, ["--file", Self.osQuery, "--format", "json"]).stdout
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]], "\(json)")
        #expect(objects.count == 3)
        #expect(objects.map { $0["os"] as? String } == rows.map { Optional($0.0) })
        #expect(objects.map { $0["pings"] as? Int } == rows.map { Optional($0.1) })
        #expect(objects.allSatisfy { $0.count == 2 })
        // --no-header does not apply to JSON: the keys are the column names either way.
        let jsonBare = try Self.query(store, ["--file", Self.osQuery, "--format", "json", "--no-header"]).stdout
        #expect(jsonBare == json)
    }

    @Test("values that need quoting: csv quotes, tsv escapes, json escapes; NULL, reals and blobs")
    func quotingAndTypes() throws {
        let directory = TemporaryDirectory("e2e-quoting")
        let (store, _) = try Sample.importInto(directory)
        let sql = """
            SELECT 'a,b' AS comma, 'say "hi"' AS quote, 'l1' || char(10) || 'l2' AS newline,
                   'x' || char(9) || 'y\\z' AS tab, NULL AS absent, 2.5 AS real, 3 AS int, x'00ff' AS blob, 'ü€' AS utf8
            """
        let csv = try Self.query(store, [sql, "--format", "csv"]).stdout
        #expect(csv == "comma,quote,newline,tab,absent,real,int,blob,utf8\n"
                + "\"a,b\",\"say \"\"hi\"\"\",\"l1\nl2\",x\ty\\z,,2.5,3,x'00ff',ü€\n")
        let tsv = try Self.query(store, [sql, "--format", "tsv", "--no-header"]).stdout
        #expect(tsv == "a,b\tsay \"hi\"\tl1\\nl2\tx\\ty\\\\z\t\t2.5\t3\tx'00ff'\tü€\n")
        let json = try Self.query(store, [sql, "--format", "json"]).stdout
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]], "\(json)")
        let row = try #require(objects.first as [String: Any]?)
        #expect(objects.count == 1)
        #expect(row["comma"] as? String == "a,b")
        #expect(row["quote"] as? String == "say \"hi\"")
        #expect(row["newline"] as? String == "l1\nl2")
        #expect(row["tab"] as? String == "x\ty\\z")
        #expect(row["absent"] is NSNull)
        #expect(row["real"] as? Double == 2.5)
        #expect(row["int"] as? Int == 3)
        #expect(row["blob"] as? String == "00ff")
        #expect(row["utf8"] as? String == "ü€")
    }

    @Test("table: a value with line breaks or tabs stays on its row (as spaces), piped output is never truncated")
    func tableKeepsRowsWhole() throws {
        let directory = TemporaryDirectory("e2e-table")
        let (store, _) = try Sample.importInto(directory)
        let sql = """
            SELECT 'l1' || char(10) || 'l2' || char(13, 10) || 'l3' || char(9) || 'x' AS text, 1 AS n
            UNION ALL SELECT 'ab', 22
            """
        #expect(try Self.query(store, [sql]).stdout == "text         n\n----------  --\nl1 l2 l3 x   1\nab          22\n")
        // A long value (a whole payload) is printed in full when stdout is not a terminal.
        let payload = try Self.query(store, ["SELECT max(length(payload)) AS n FROM pings", "--format", "csv", "--no-header"])
        let longest = try #require(Int(payload.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(longest > 1000)
        let table = try Self.query(store, ["SELECT payload FROM pings WHERE length(payload) = \(longest) LIMIT 1"]).stdout
        let lines = table.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.last?.unicodeScalars.count == longest, "the payload cell was cut")
        #expect(!table.contains("…"))
    }

    @Test("a query with no rows prints the header only (table, csv) or [] (json)")
    func emptyResult() throws {
        let directory = TemporaryDirectory("e2e-empty")
        let (store, _) = try Sample.importInto(directory)
        let sql = "SELECT os, count(*) AS pings FROM pings WHERE os = 'BeOS' GROUP BY os"
        #expect(try Self.query(store, [sql, "--format", "csv"]).stdout == "os,pings\n")
        #expect(try Self.query(store, [sql, "--format", "csv", "--no-header"]).stdout == "")
        #expect(try Self.query(store, [sql]).stdout == "os  pings\n--  -----\n")
        let json = try Self.query(store, [sql, "--format", "json"]).stdout
        #expect(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [Any] != nil)
        #expect(json.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
    }

    @Test("BR-10: NaN and ±Infinity in query results give valid RFC 8259 JSON (null)")
    func nonFiniteRealsInJSON() throws {
        let directory = TemporaryDirectory("e2e-br10")
        let (store, _) = try Sample.importInto(directory)
        let result = try Self.query(store, ["SELECT 0.0/0.0 AS x, 1e308*10 AS y, -1e308*10 AS z, 1.5 AS w", "--format", "json"])
        for token in ["NaN", "nan", "Infinity", "inf"] {
            #expect(!result.stdout.contains(token), "non-standard token \(token) in \(result.stdout)")
        }
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]],
                                   "\(result.stdout)")
        #expect(objects.count == 1)
        let row = try #require(objects.first as [String: Any]?)
        // SQLite itself turns 0.0/0.0 into NULL; 1e308*10 is +Inf, which the renderer writes as null.
        #expect(row["x"] is NSNull)
        #expect(row["y"] is NSNull)
        #expect(row["z"] is NSNull)
        #expect(row["w"] as? Double == 1.5)
        #expect(Set(row.keys) == ["x", "y", "z", "w"])

        // Python's strict consumer: json.tool accepts NaN by default, so parse with a hook that rejects it.
        let strict = try runProcess("/usr/bin/env", ["python3", "-c", """
            import json, sys
            def reject(token): raise ValueError("non-standard JSON token " + token)
            json.loads(sys.stdin.read(), parse_constant=reject)
            """], stdin: result.stdout)
        #expect(strict.status == 0, "python3 json.loads (strict): \(strict.stderr)")
        let tool = try runProcess("/usr/bin/env", ["python3", "-m", "json.tool"], stdin: result.stdout)
        #expect(tool.status == 0, "python3 -m json.tool: \(tool.stderr)")
        #expect(tool.stdout.contains("\"y\": null"))
    }

    @Test("BR-10: a payload with NaN/Infinity is a bad line invalid_json; the good line of the file is kept")
    func nonFiniteTokensInPayloadAreBadLines() throws {
        let directory = TemporaryDirectory("e2e-br10-import")
        let file = try directory.write(
            "storage/saved_session/Firefox/nightly/28.0a1/20131029030201.20131029.v2.log.0ab8723b6fb3455bb34b04d97482fda2",
            text: "id-1\t{\"ver\":2,\"simpleMeasurements\":{\"firstPaint\":NaN,\"uptime\":Infinity}}\n"
                + "0a1b2c3d-0000-4000-8000-000000000001\t{\"ver\":2,\"info\":{\"OS\":\"Linux\"},\"simpleMeasurements\":{\"uptime\":1}}\n")
        let store = directory.file("nan.db")
        let result = try CLI.run(["import", directory.file("storage"), "--store", store])
        #expect(result.status == 1)
        #expect(result.stdout.contains("Imported 1 pings from 1 file(s)"), "stdout: \(result.stdout)")
        #expect(result.stdout.contains("Bad lines: 1 (invalid_json 1)."), "stdout: \(result.stdout)")
        let errors = try CLI.csvRows("SELECT line, reason, instr(message, 'invalid token NaN at byte 44') > 0 FROM import_errors",
                                     store: store)
        #expect(errors == [["1", "invalid_json", "1"]])
        #expect(try CLI.csvRows("SELECT document_id, os, submission_date FROM pings", store: store)
                == [["0a1b2c3d-0000-4000-8000-000000000001", "Linux", "20131029"]])
        #expect(try CLI.scalar("SELECT count(*) FROM source_files WHERE path = '\(file)' AND status = 'ok'", store: store) == 1)
    }
}
