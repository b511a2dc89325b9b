import Foundation
import Testing
import TelemetryTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 17 item 1: a payload never chooses where a file is written. Dimension values become one escaped path
/// component each (docs/convert.md "Path components"); every write stays inside the output root.
@Suite(.timeLimit(.minutes(3)))
struct HostilePathTests {
    /// The schema of the seed with every dimension open (`*`), so hostile values reach the layout unmapped.
    static let openSchema = """
    {"version": 1, "dimensions": [
      {"field_name": "reason", "allowed_values": "*"}, {"field_name": "appName", "allowed_values": "*"},
      {"field_name": "appUpdateChannel", "allowed_values": "*"}, {"field_name": "appVersion", "allowed_values": "*"},
      {"field_name": "appBuildID", "allowed_values": "*"}, {"field_name": "submission_date", "allowed_values": "*"}]}
    """

    static func ping(reason: String, appName: String, channel: String, version: String, build: String) -> String {
        func q(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                if scalar.value < 0x20 || scalar.value >= 0x7F || scalar == "\"" || scalar == "\\" {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        return #"{"ver":2,"info":{"reason":\#(q(reason)),"appName":\#(q(appName)),"appUpdateChannel":\#(q(channel)),"appVersion":\#(q(version)),"appBuildID":\#(q(build))}}"#
    }

    /// The expected stored value, computed here independently of the product (docs/convert.md): the spec's
    /// `[^a-zA-Z0-9_/.]` → `_`, empty → UNKNOWN, longer than 96 bytes once `/` and `.` are escaped → OTHER.
    static func expectedStored(_ value: String) -> String {
        var safe = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", "/", ".": safe.unicodeScalars.append(scalar)
            default: safe += "_"
            }
        }
        if safe.isEmpty { return "UNKNOWN" }
        let escaped = safe.count + 2 * safe.filter { $0 == "/" || $0 == "." }.count
        return escaped > 96 ? "OTHER" : safe
    }

    /// Every path under `root` (relative), directories included, without following symlinks.
    static func entries(under root: String) -> [String] {
        var found: [String] = []
        func visit(_ relative: String) {
            let path = relative.isEmpty ? root : root + "/" + relative
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
            for name in names {
                let child = relative.isEmpty ? name : relative + "/" + name
                found.append(child)
                var st = stat()
                if lstat(root + "/" + child, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { visit(child) }
            }
        }
        visit("")
        return found.sorted()
    }

    @Test func hostileValuesStayInsideTheRootAndImportExactly() throws {
        let tmp = TemporaryDirectory("hostile-values")
        let schema = try tmp.write("schema.json", text: Self.openSchema)
        let values = ["../../../../tmp/pwn", "31.0/beta", "..", ".", "a\u{0}b", String(repeating: "x", count: 300), "50%", "%2E%2E", ""]
        var lines = ""
        for (i, value) in values.enumerated() {
            lines += "doc-\(i)\t" + Self.ping(reason: value, appName: value, channel: value, version: value, build: value) + "\n"
        }
        let input = try tmp.write("in/pings.20140102.v2.log", text: lines)
        let deep = tmp.path + "/a/b/c/d/out"   // four levels up from anywhere under out/ is still inside tmp
        let convert = try CLI.run(["convert", input, "--out", deep, "--schema", schema, "--jobs", "1"])
        #expect(convert.status == 0, "\(convert.stdout)\(convert.stderr)")
        #expect(convert.stdout.contains("\(values.count) converted, 0 rejected"), "\(convert.stdout)")
        let outside = Self.entries(under: tmp.path).filter { !$0.hasPrefix("a/b/c/d/out") && !$0.hasPrefix("in") && $0 != "schema.json" }
        #expect(outside == ["a", "a/b", "a/b/c", "a/b/c/d"], "written outside the root: \(outside)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/pwn"))
        let files = Self.entries(under: deep).filter { $0.hasSuffix(".xz") }
        #expect(files.count == values.count, "\(files)")
        #expect(files.contains { $0.hasPrefix("%2E%2E%2F..%2F..%2F..%2Ftmp%2Fpwn/%2E%2E%2F..%2F..%2F..%2Ftmp%2Fpwn/") }, "\(files)")
        for file in files { #expect(file.split(separator: "/").count == 5 && file.split(separator: "/").allSatisfy { $0.utf8.count <= 255 }, "\(file)") }

        let store = tmp.file("s.db")
        let imported = try CLI.run(["import", deep, "--store", store, "--schema", schema])
        #expect(imported.status == 0, "\(imported.stdout)\(imported.stderr)")
        let rows = try CLI.csvRows("SELECT document_id, reason, appName, appUpdateChannel, appVersion, appBuildID FROM pings ORDER BY document_id", store: store)
        let expected = values.enumerated().map { ["doc-\($0.offset)"] + Array(repeating: Self.expectedStored($0.element), count: 5) }
            .sorted { $0[0] < $1[0] }
        #expect(rows == expected)
    }

    /// Random byte strings as dimension values (a seeded generator: a failure reproduces): nothing lands outside
    /// the root and every converted ping imports with exactly its stored dimension values.
    @Test func fuzzedDimensionValuesRoundTrip() throws {
        let tmp = TemporaryDirectory("hostile-fuzz")
        let schema = try tmp.write("schema.json", text: Self.openSchema)
        var rng = SplitMix64(seed: 0x17_0001)
        let alphabet = Array("./%/..aZ09_-".unicodeScalars)
        func randomValue() -> String {
            let length = Int(rng.next() % 4 == 0 ? rng.next() % 300 : rng.next() % 12)
            var scalars = String.UnicodeScalarView()
            for _ in 0..<length {
                let r = rng.next()
                if r % 2 == 0 {
                    scalars.append(alphabet[Int((r >> 8) % UInt64(alphabet.count))])
                } else {
                    scalars.append(Unicode.Scalar(UInt8((r >> 8) & 0xFF)))   // any byte value, NUL included
                }
            }
            return String(scalars)
        }
        var expected: [[String]] = []
        var lines = ""
        for i in 0..<200 {
            let dims = (0..<5).map { _ in randomValue() }
            let id = String(format: "doc-%03d", i)
            lines += id + "\t" + Self.ping(reason: dims[0], appName: dims[1], channel: dims[2], version: dims[3], build: dims[4]) + "\n"
            expected.append([id] + dims.map(Self.expectedStored))
        }
        let input = try tmp.write("in/fuzz.20140102.v2.log", text: lines)
        let deep = tmp.path + "/a/b/c/d/e/f/out"
        let convert = try CLI.run(["convert", input, "--out", deep, "--schema", schema, "--jobs", "1"])
        #expect(convert.status == 0, "\(convert.stdout)\(convert.stderr)")
        #expect(convert.stdout.contains("200 converted, 0 rejected"), "\(convert.stdout)")
        let outside = Self.entries(under: tmp.path).filter { !$0.hasPrefix("a/b/c/d/e/f/out") && !$0.hasPrefix("in") && $0 != "schema.json" }
        #expect(outside == ["a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e", "a/b/c/d/e/f"], "written outside the root: \(outside)")
        for entry in Self.entries(under: deep) {
            #expect(entry.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && $0.utf8.count <= 255 }, "\(entry)")
        }
        let store = tmp.file("s.db")
        let imported = try CLI.run(["import", deep, "--store", store, "--schema", schema])
        #expect(imported.status == 0, "\(imported.stdout)\(imported.stderr)")
        let rows = try CLI.csvRows("SELECT document_id, reason, appName, appUpdateChannel, appVersion, appBuildID FROM pings ORDER BY document_id", store: store)
        #expect(rows.count == 200)
        #expect(rows == expected)
    }

    /// A symlink inside the output root pointing outside: the records of that partition are refused (counted
    /// `invalid_path`, exit 1), the others are written, and nothing appears outside.
    @Test func symlinkInsideTheRootPointingOutsideIsRefused() throws {
        let tmp = TemporaryDirectory("hostile-symlink")
        let out = tmp.path + "/out", elsewhere = tmp.path + "/elsewhere"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: out + "/saved_session", withDestinationPath: elsewhere)
        let lines = "doc-1\t" + Self.ping(reason: "saved-session", appName: "Firefox", channel: "nightly", version: "31.0a1", build: "20140101") + "\n"
            + "doc-2\t" + Self.ping(reason: "idle-daily", appName: "Firefox", channel: "nightly", version: "31.0a1", build: "20140101") + "\n"
        let input = try tmp.write("in/p.20140102.v2.log", text: lines)
        let convert = try CLI.run(["convert", input, "--out", out, "--jobs", "1"])
        #expect(convert.status == 1, "\(convert.stdout)\(convert.stderr)")
        #expect(convert.stdout.contains("1 converted, 1 rejected"), "\(convert.stdout)")
        #expect(convert.stdout.contains("invalid_path 1"), "\(convert.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty)
        #expect(Self.entries(under: out).contains { $0.hasPrefix("idle_daily/Firefox/nightly/31.0a1/20140101.20140102.v2.log.") && $0.hasSuffix(".xz") })
        let errors = try String(contentsOfFile: out + "/errors/p.20140102.v2.log.errors.jsonl", encoding: .utf8)
        #expect(errors.contains("\"category\":\"invalid_path\"") && errors.contains("outside the output root"), "\(errors)")
    }

    /// `serve --convert-into` over loopback: a hostile payload from any HTTP client writes only inside the
    /// storage tree, under one escaped directory, and imports with its value.
    @Test func serveConvertIntoKeepsAHostilePayloadInsideTheStorageTree() throws {
        let tmp = TemporaryDirectory("hostile-serve")
        let logs = tmp.path + "/logs", out = tmp.path + "/s/t/o/r/storage"
        let server = try ServeProcess(["--log-path", logs, "--max-log-age-ms", "300", "--convert-into", out], in: tmp)
        let port = try #require(server.port())
        let body = Self.ping(reason: "saved-session", appName: "Firefox", channel: "nightly", version: "../../../../pwn", build: "2014.01/../x")
        #expect(try Wire.post(port: port, path: "0fdac909-d2ec-454c-b625-261a3e5d5c9b/saved-session/Firefox/31.0/nightly/20140101",
                              body: Array(body.utf8)) == 200)
        let converted = ServeTests.eventually(seconds: 20) { ServeTests.regularFiles(under: out).contains { $0.hasSuffix(".xz") } }
        server.send(SIGTERM)
        #expect(server.wait(seconds: 30) == 0)
        #expect(converted, "\(server.stderr())")
        let outside = Self.entries(under: tmp.path).filter { !$0.hasPrefix("s/t/o/r/storage") && !$0.hasPrefix("logs") && !$0.hasSuffix(".txt") && !$0.hasPrefix("port-") }
        #expect(outside == ["s", "s/t", "s/t/o", "s/t/o/r"], "written outside the storage tree: \(outside)")
        let files = ServeTests.regularFiles(under: out).filter { $0.hasSuffix(".xz") }
        #expect(files.count == 1 && files[0].hasPrefix("saved_session/Firefox/nightly/%2E%2E%2F..%2F..%2F..%2Fpwn/2014%2E01%2F%2E%2E%2Fx.")
                && files[0].split(separator: "/").count == 5, "\(files)")
        let store = tmp.file("s.db")
        #expect(try CLI.run(["import", out, "--store", store]).status == 0)
        #expect(try CLI.csvRows("SELECT appVersion, appBuildID FROM pings", store: store) == [["../../../../pwn", "2014.01/../x"]])
    }
}

/// SplitMix64: a small seeded generator so a fuzz failure reproduces.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Issue 17 item 2 and issue 18 item 6 through the command line: `import --filter` and `job --filter`.
@Suite(.timeLimit(.minutes(2)))
struct VersionFilterTests {
    @Test func importFilterSelectsVersionsTwentyEightToThirtyOne() throws {
        let tmp = TemporaryDirectory("version-filter")
        let storage = tmp.path + "/storage"
        for (i, version) in FilterTable.versions.enumerated() {
            _ = try tmp.write("storage/saved_session/Firefox/nightly/\(version)/20140101000000.20140102.v2.log",
                              text: "doc-\(i)\t{\"ver\":2,\"info\":{\"appVersion\":\"\(version)\"}}\n")
        }
        let filter = try tmp.write("filter.json", text: """
        {"version": 1, "dimensions": [{"field_name": "reason", "allowed_values": "*"}, {"field_name": "appName", "allowed_values": "*"},
         {"field_name": "appUpdateChannel", "allowed_values": "*"}, {"field_name": "appVersion", "allowed_values": {"min": "28", "max": "31"}},
         {"field_name": "appBuildID", "allowed_values": "*"}, {"field_name": "submission_date", "allowed_values": "*"}]}
        """)
        let store = tmp.file("s.db")
        let imported = try CLI.run(["import", storage, "--store", store, "--filter", filter])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try CLI.csvRows("SELECT appVersion FROM pings ORDER BY appVersion", store: store) == [["29.0"], ["31.0a1"], ["31.0a2"]])

        let typo = try tmp.write("typo.json", text: """
        {"version": 1, "dimensions": [{"field_name": "reason", "allowed_values": "*"}, {"field_name": "appName", "allowed_values": "*"},
         {"field_name": "appUpdateChannel", "allowed_values": "*"}, {"field_name": "appVersion", "allowed_values": {"mn": "28"}},
         {"field_name": "appBuildID", "allowed_values": "*"}, {"field_name": "submission_date", "allowed_values": "*"}]}
        """)
        let refused = try CLI.run(["import", storage, "--store", tmp.file("t.db"), "--filter", typo])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("unknown key 'mn'") && refused.stderr.contains("typo.json"), "\(refused.stderr)")
    }
}

enum FilterTable {
    static let versions = ["3.6", "4.0b12", "10.0esr", "29.0", "31.0a1", "31.0a2", "100.0"]
}
