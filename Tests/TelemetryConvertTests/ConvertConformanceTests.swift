import Foundation
import Testing
import TelemetryCompression
import TelemetryConvert
import TelemetryCore
import TelemetryTestSupport

/// `../shared/conformance/convert.json` (payload ops) and `persist.json`.
/// Left out: `geo_country` (optional: TelemetryEngine has no GeoIP database; the "??" marker is checked by the
/// required `convert_payload_multi` cases), `rotate_sequence` and `record_writer` (optional seed-API details; the
/// product behaviour is checked by `StorageWriterTests`). `rewrite_histograms` and `convert_histograms_only` are
/// run by the histogram tests.
struct ConvertConformanceTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let id: String
        let op: String
        let json: String   // the whole case, re-parsed per test
        var testDescription: String { id }
    }

    static var convertFile: [String: Any]? { try? Fixtures.sharedJSON("conformance/convert.json") as? [String: Any] }
    static let convertCases: [Case] = cases(convertFile, ops: ["convert_payload", "convert_payload_multi", "convert_record_file"],
                                            known: ["geo_country", "rewrite_histograms", "convert_histograms_only"])
    static var persistFile: [String: Any]? { try? Fixtures.sharedJSON("conformance/persist.json") as? [String: Any] }
    static let persistCases: [Case] = cases(persistFile, ops: ["write_record", "write_by_dimensions", "clean_newlines"],
                                            known: ["rotate_sequence", "record_writer"])

    static func cases(_ file: [String: Any]?, ops: Set<String>, known: Set<String>) -> [Case] {
        ((file?["cases"] as? [[String: Any]]) ?? []).compactMap { c in
            guard let id = c["id"] as? String, let op = c["op"] as? String else { return nil }
            if c["optional"] as? Bool == true { return nil }
            guard ops.contains(op) || !known.contains(op) else { return nil }   // unknown ops stay, and fail
            let data = (try? JSONSerialization.data(withJSONObject: c)) ?? Data()
            return Case(id: id, op: op, json: String(decoding: data, as: UTF8.self))
        }
    }

    @Test func vectorsAreThere() {
        #expect(Self.convertCases.count == 15)   // 16 cases, geo_country optional
        #expect(Self.persistCases.count == 4)
    }

    private static let categoryNames: [RecordCategory: Set<String>] = [
        .conversionError: ["parse_error", "invalid_payload", "unsupported_version", "definition_error"],
        .missingRevision: ["invalid_payload"], .badPayload: ["bad_payload"], .unknownRevision: ["not_found"],
        .missingRevisionRepo: ["invalid_argument"], .invalidPath: ["invalid_argument"], .uuidOnlyPath: ["invalid_argument"],
        .corruptedData: ["corrupt_data", "decompression_error"], .emptyData: ["parse_error"], .writeFailed: ["io_error"],
    ]

    @Test(arguments: convertCases)
    func convert(_ vector: Case) throws {
        let c = try #require(try JSONSerialization.jsonObject(with: Data(vector.json.utf8)) as? [String: Any])
        let input = try #require(c["input"] as? [String: Any])
        let expected = try #require(c["expected"] as? [String: Any])
        let directory = TemporaryDirectory("convert-vector")
        let cache = try makeHistogramCache((Self.convertFile?["fixtures"] as? [String: Any])?["revisions"] as? [[String: Any]] ?? [], in: directory)
        let schemaFile = ((Self.convertFile?["fixtures"] as? [String: Any])?["schema_file"] as? String) ?? "datasets/real/schemas/telemetry_schema.json"
        let schema = try DimensionSchema(contentsOf: Fixtures.sharedPath(schemaFile))
        let recordConverter = RecordConverter(schema: schema, payloadConverter: payloadConverter(cache: cache))
        let date = input["submission_date"] as? String ?? "20131114"

        func outcome(ip: String?) throws -> RecordOutcome {
            if vector.op == "convert_record_file" {
                let reader = try RawLogReader(path: Fixtures.sharedPath(try #require(input["file"] as? String)),
                                              version: RawLogVersion(rawValue: input["file_version"] as? String ?? "v1"))
                var records: [RawRecord] = []
                try reader.forEach(record: { records.append($0) })
                let record = records[input["record_index"] as? Int ?? 0]
                guard case let .converted(converted) = recordConverter.convert(record, source: "test") else {
                    return recordConverter.convert(record, source: "test")
                }
                // The vector fixes the submission date; the record's own timestamp would give 20150311.
                var fixed = converted
                fixed.dimensions[fixed.dimensions.count - 1] = date
                return .converted(fixed)
            }
            let payload = try JSONSerialization.data(withJSONObject: try #require(input["payload"]))
            return recordConverter.convert(documentID: "doc", json: Array(payload), submissionDate: date, ip: ip)
        }

        func check(_ result: RecordOutcome, _ expected: [String: Any]) throws {
            if let category = expected["error"] as? String {
                guard case let .rejected(rejection) = result else { Issue.record("\(vector.id): expected \(category), converted"); return }
                #expect(Self.categoryNames[rejection.category]?.contains(category) == true, "\(rejection)")
                if let message = expected["message"] as? String { #expect(rejection.message == message) }
                if let prefix = expected["message_prefix"] as? String { #expect(rejection.message.hasPrefix(prefix), "\(rejection.message)") }
                return
            }
            guard case let .converted(converted) = result else { Issue.record("\(vector.id): rejected: \(result)"); return }
            let document = try JSONValue.parse(converted.json)
            for (key, value) in expected {
                switch key {
                case "payload":
                    #expect(sameJSON(document, jsonValue(fromFoundation: value)), "\(vector.id): payload differs:\n\(converted.json)")
                case "dimensions":
                    #expect(converted.dimensions == (value as? [String]))
                case "paths":
                    for (path, wanted) in (value as? [String: Any]) ?? [:] {
                        let found = TelemetryConvertTests.value(at: path, in: document)
                        #expect(found.map { sameJSON($0, jsonValue(fromFoundation: wanted)) } == true, "\(vector.id): \(path) = \(String(describing: found))")
                    }
                case "absent_paths":
                    for path in (value as? [String]) ?? [] { #expect(TelemetryConvertTests.value(at: path, in: document) == nil, "\(vector.id): \(path) present") }
                case "absent_keys":
                    for k in (value as? [String]) ?? [] { #expect(document[k] == nil) }
                case "ver":
                    #expect(document["ver"].map { sameJSON($0, jsonValue(fromFoundation: value)) } == true)
                case "serialized_ascii_contains":
                    #expect(converted.json.contains(value as? String ?? "\u{0}"))
                    #expect(converted.json.utf8.allSatisfy { $0 < 0x80 })
                case "input_unchanged", "each", "without_geoip_db", "with_geoip_db":
                    break   // value types cannot be changed by the converter; `each` is handled by the caller
                default:
                    Issue.record("\(vector.id): unchecked expectation '\(key)'")
                }
            }
        }

        switch vector.op {
        case "convert_payload", "convert_record_file":
            try check(try outcome(ip: input["ip"] as? String), expected)
        case "convert_payload_multi":
            let each = try #require(expected["each"] as? [String: Any])
            var paths: [String: Any] = [:]
            var rest: [String: Any] = [:]
            for (k, v) in each { if ["ver", "absent_paths"].contains(k) { rest[k] = v } else { paths[k] = v } }
            if !paths.isEmpty { rest["paths"] = paths }
            for ip in (input["ips"] as? [Any]) ?? [] {
                try check(try outcome(ip: "\(ip)"), rest)
            }
        default:
            Issue.record("unknown op \(vector.op) in \(vector.id)")
        }
    }

    @Test(arguments: persistCases)
    func persist(_ vector: Case) throws {
        let c = try #require(try JSONSerialization.jsonObject(with: Data(vector.json.utf8)) as? [String: Any])
        let input = try #require(c["input"] as? [String: Any])
        let expected = try #require(c["expected"] as? [String: Any])
        let schemas = (Self.persistFile?["fixtures"] as? [String: Any])?["schemas"] as? [String: Any] ?? [:]
        let schemaJSON = try JSONSerialization.data(withJSONObject: schemas["r_a_c"] ?? [:])
        let schema = try DimensionSchema(json: schemaJSON, source: "r_a_c")
        let directory = TemporaryDirectory("persist-vector")
        switch vector.op {
        case "clean_newlines":
            #expect(StorageWriter.cleanNewlines(input["value"] as? String ?? "") == expected["result"] as? String)
        case "write_record":
            let line = StorageWriter.line(documentID: input["id"] as? String ?? "", json: input["payload_text"] as? String ?? "")
            let path = directory.path + "/" + (input["file"] as? String ?? "test.log")
            try Data(line.utf8).write(to: URL(fileURLWithPath: path))
            #expect(line == expected["file_content"] as? String)
            if let md5 = expected["file_md5"] as? String { #expect(try md5sum(path) == md5) }
        case "write_by_dimensions":
            let dims = input["dimensions"] as? [String] ?? []
            let writer = try StorageWriter(outputDirectory: directory.path, schema: schema, writerID: "t", formatVersion: 1)
            #expect(writer.relativeBase(for: dims) == expected["relative_path"] as? String)
            try writer.append(documentID: input["id"] as? String ?? "", json: input["payload_text"] as? String ?? "", dimensions: dims)
            try writer.finish()
            let published = try #require(writer.publishedFiles.first)
            #expect(published.hasPrefix(directory.path + "/" + (expected["relative_path"] as? String ?? "") + "."))
            #expect(published.hasSuffix(".xz"))
            let plain = directory.path + "/plain"
            var bytes: [UInt8] = []
            try LineReader(source: try DecompressingReader(path: published)).forEachLine { bytes += Array($0.bytes) + [0x0A] }
            try Data(bytes).write(to: URL(fileURLWithPath: plain))
            if let content = expected["file_content"] as? String { #expect(String(decoding: bytes, as: UTF8.self) == content) }
            if let md5 = expected["file_md5"] as? String { #expect(try md5sum(plain) == md5) }
        default:
            Issue.record("unknown op \(vector.op) in \(vector.id)")
        }
    }

    private func md5sum(_ path: String) throws -> String {
        let result = try runProcess("/usr/bin/md5sum", [path])
        return String(result.stdout.prefix(32))
    }
}
