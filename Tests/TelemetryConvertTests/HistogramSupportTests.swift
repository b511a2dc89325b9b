import Foundation
import Testing
import TelemetryCompression
import TelemetryConvert
import TelemetryTestSupport

/// One case of a `../shared/conformance/*.json` file (format `telemetry-conformance/1`, see its README), kept as
/// `JSONValue` so member order and integer/float distinctions survive.
struct HistogramConformanceCase: Sendable, CustomTestStringConvertible {
    let id: String
    let op: String
    let optional: Bool
    let input: JSONValue
    let expected: JSONValue

    var testDescription: String { id }
}

/// Fixture helpers for the histogram, revision-cache and compaction tests.
enum HistogramFixtures {
    /// A shared JSON file parsed with the product's parser.
    static func document(_ relative: String) throws -> JSONValue {
        let text = try String(contentsOfFile: Fixtures.sharedPath(relative), encoding: .utf8)
        return try JSONValue.parse(text)
    }

    /// Every case of a conformance file.
    static func cases(_ file: String) throws -> [HistogramConformanceCase] {
        let root = try document(file)
        guard root["format"] == .string("telemetry-conformance/1"), let cases = root["cases"]?.arrayValue else {
            throw FixtureError("\(file): not a telemetry-conformance/1 file")
        }
        return try cases.map { value in
            guard let id = value["id"]?.stringValue, let op = value["op"]?.stringValue else {
                throw FixtureError("\(file): a case without id or op")
            }
            return HistogramConformanceCase(id: id, op: op, optional: value["optional"] == .bool(true),
                                            input: value["input"] ?? .object(JSONObject()),
                                            expected: value["expected"] ?? .object(JSONObject()))
        }
    }

    /// The non-optional cases of `file` whose op is in `ops` (nil: all of them).
    static func requiredCases(_ file: String, ops: Set<String>? = nil) -> [HistogramConformanceCase] {
        do {
            return try cases(file).filter { !$0.optional && (ops?.contains($0.op) ?? true) }
        } catch {
            // Surfaces as one failing argument rather than a silently empty suite.
            return [HistogramConformanceCase(id: "load-failure: \(error)", op: "<unloadable>", optional: false,
                                             input: .null, expected: .null)]
        }
    }

    /// Creates `<cache>/<repo>/<rev>/Histograms.json` for each `{repo, rev, file | inline}` entry: `file`
    /// (relative to `../shared`) copied byte for byte, `inline` serialised as minimal JSON.
    static func seedCache(_ entries: [JSONValue], in cacheDirectory: String) throws {
        for entry in entries {
            guard let repo = entry["repo"]?.stringValue, let rev = entry["rev"]?.stringValue else {
                throw FixtureError("seed entry without repo/rev")
            }
            let path = "\(cacheDirectory)/\(repo)/\(rev)/Histograms.json"
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            if let file = entry["file"]?.stringValue {
                try FileManager.default.copyItem(atPath: Fixtures.sharedPath(file), toPath: path)
            } else if let inline = entry["inline"] {
                try Data(inline.minimalJSON.utf8).write(to: URL(fileURLWithPath: path))
            } else {
                throw FixtureError("seed entry \(repo)/\(rev) has neither file nor inline")
            }
        }
    }

    /// An array of JSON integers.
    static func integers(_ value: JSONValue?) -> [Int64]? {
        guard let array = value?.arrayValue else { return nil }
        var result: [Int64] = []
        for element in array {
            guard case let .int(i) = element else { return nil }
            result.append(i)
        }
        return result
    }

    /// Equality "as JSON" (conformance README): objects as unordered maps (first occurrence of a key), arrays
    /// in order, integers exact, an integer and a float equal when they are the same number.
    static func jsonEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.int(x), .double(y)), let (.double(y), .int(x)):
            return Double(x) == y
        case let (.array(x), .array(y)):
            return x.count == y.count && zip(x, y).allSatisfy { jsonEqual($0, $1) }
        case let (.object(x), .object(y)):
            let xKeys = Set(x.keys), yKeys = Set(y.keys)
            return xKeys == yKeys && xKeys.allSatisfy { key in jsonEqual(x[key]!, y[key]!) }
        default:
            return a == b
        }
    }

    /// The vectors' category for an error of the histogram/revision API (README "Error categories", the
    /// "otherwise" column for files, the record column for rejections).
    static func vectorCategory(of error: any Error) -> String {
        switch error {
        case let error as HistogramError:
            switch error {
            case .fileNotFound: return "not_found"
            case .unreadableFile, .cacheWriteFailed: return "io_error"
            case .notJSON: return "parse_error"
            case .invalidStructure: return "schema_error"
            case .invalidDefinition: return "definition_error"
            case .unknownHistogram: return "not_found"
            case .invalidRevisionURL: return "invalid_argument"
            }
        case let rejection as PayloadRejection:
            switch rejection.category {
            case .unknownRevision: return "not_found"
            case .missingRevisionRepo, .invalidPath, .uuidOnlyPath: return "invalid_argument"
            case .badPayload: return "bad_payload"
            case .missingRevision: return "invalid_payload"
            case .corruptedData: return "corrupt_data"
            case .emptyData: return "parse_error"
            case .writeFailed: return "io_error"
            case .conversionError:
                return rejection.message.hasPrefix("Bad Histogram definition") ? "definition_error" : "invalid_payload"
            }
        default:
            return "unexpected error type \(type(of: error))"
        }
    }

    /// The message of an error, as checked by `message`, `message_prefix` and `message_contains`.
    static func message(of error: any Error) -> String {
        (error as? PayloadRejection)?.message ?? String(describing: error)
    }

    /// Checks an `expected` that names an error (`error` plus optional `message*` keys) against `error`.
    static func expectError(_ error: any Error, _ expected: JSONValue, _ id: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        let category = expected["error"]?.stringValue
        #expect(vectorCategory(of: error) == category, "\(id): \(error)", sourceLocation: sourceLocation)
        let text = message(of: error)
        if let exact = expected["message"]?.stringValue {
            #expect(text == exact, "\(id)", sourceLocation: sourceLocation)
        }
        if let prefix = expected["message_prefix"]?.stringValue {
            #expect(text.hasPrefix(prefix), "\(id): \(text)", sourceLocation: sourceLocation)
        }
        if let part = expected["message_contains"]?.stringValue {
            #expect(text.contains(part), "\(id): \(text)", sourceLocation: sourceLocation)
        }
    }

    /// Keys of `expected` this runner does not know: each must be an assertion, so an unknown one fails.
    static func unknownKeys(_ expected: JSONValue, known: Set<String>) -> [String] {
        (expected.objectValue?.keys ?? []).filter { !known.contains($0) }
    }

    /// The real ping of `raw-logs/telemetry1.log` (one v1 record: 15-byte preamble, path, gzip body;
    /// `spec/raw-log.md` §8.1), inflated with `TelemetryCompression`'s reader, so these tests do not depend on the
    /// raw-log reader. Read once per test process.
    static func telemetry1Ping() throws -> JSONValue { try telemetry1.get() }

    private static let telemetry1 = Result<JSONValue, any Error> {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedPath("datasets/real/raw-logs/telemetry1.log"))))
        guard bytes.count >= 15, bytes[0] == 0x1E else { throw FixtureError("telemetry1.log: no v1 preamble") }
        let pathLength = Int(bytes[1]) | Int(bytes[2]) << 8
        let dataLength = Int(bytes[3]) | Int(bytes[4]) << 8 | Int(bytes[5]) << 16 | Int(bytes[6]) << 24
        let start = 15 + pathLength
        guard start + dataLength <= bytes.count else { throw FixtureError("telemetry1.log: record cut short") }
        let directory = TemporaryDirectory("histogram-ping")
        let gzipPath = try directory.write("body.gz", Array(bytes[start..<(start + dataLength)]))
        let reader = try DecompressingReader(path: gzipPath)
        guard reader.format == .gzip else { throw FixtureError("telemetry1.log: body is \(reader.format), not gzip") }
        var inflated: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if count == 0 { break }
            inflated.append(contentsOf: buffer[..<count])
        }
        return try JSONValue.parse(String(decoding: inflated, as: UTF8.self))
    }

    struct FixtureError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// Checks of the helpers themselves.
struct HistogramSupportTests {
    @Test func jsonEqualityIgnoresMemberOrderAndComparesNumbersByValue() throws {
        let a = try JSONValue.parse(#"{"a":[1,2.5],"b":-1}"#)
        let b = try JSONValue.parse(#"{"b":-1.0,"a":[1.0,2.5]}"#)
        #expect(HistogramFixtures.jsonEqual(a, b))
        #expect(!HistogramFixtures.jsonEqual(a, try JSONValue.parse(#"{"a":[2.5,1],"b":-1}"#)))
        #expect(!HistogramFixtures.jsonEqual(.int(4984161763), .int(4984161764)))
    }

    @Test func extractsTheRealPingOfTelemetry1Log() throws {
        let ping = try HistogramFixtures.telemetry1Ping()
        #expect(ping["ver"] == .int(1))
        #expect(ping["info"]?["revision"] == .string("http://hg.mozilla.org/releases/mozilla-release/rev/a55c55edf302"))
        #expect(ping["histograms"]?.objectValue?.members.count == 328)
    }
}
