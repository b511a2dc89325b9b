import Foundation
import Testing
import TelemetryCompression
import TelemetryTestSupport

/// One case of `../shared/conformance/raw_records.json`, decoded only as far as the reader ops need.
struct RawRecordsVector: Sendable, Decodable, Identifiable, CustomTestStringConvertible {
    let id: String
    let op: String
    let optional: Bool?
    let input: Input
    let expected: Expected

    struct Input: Sendable, Decodable {
        let path: String?
        let paths: [String]?
        let explicit: String?
        let type: String?
        let mode: String?
    }

    struct Expected: Sendable, Decodable {
        let error: String?
        let detected: [String]?
        let explicitKept: String?
        let lines: [String]?
        let lineCount: Int?
        /// Every key the case states, so a key this runner does not evaluate fails instead of passing silently.
        var keys: Set<String> = []

        enum CodingKeys: String, CodingKey {
            case error, detected, lines
            case explicitKept = "explicit_kept"
            case lineCount = "line_count"
        }

        struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            error = try c.decodeIfPresent(String.self, forKey: .error)
            detected = try c.decodeIfPresent([String].self, forKey: .detected)
            explicitKept = try c.decodeIfPresent(String.self, forKey: .explicitKept)
            lines = try c.decodeIfPresent([String].self, forKey: .lines)
            lineCount = try c.decodeIfPresent(Int.self, forKey: .lineCount)
            keys = Set(try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue))
        }
    }

    var testDescription: String { id }
    var isOptional: Bool { optional ?? false }
}

/// The compression-reader cases of `conformance/raw_records.json` against `CompressionFormat`,
/// `DecompressingReader` and `LineReader`, plus the real LZMA-alone storage files.
///
/// Not run here, by op: `unpack`, `unpack_file` (raw-log records), `compressed_write`, `compressed_roundtrip`,
/// `compress_from`, `compression_levels` (writers): they belong to the convert issue (conformance README,
/// "Which issue runs which vectors"). Optional reader cases are left out as the README allows: `compress-bad-mode`
/// and `compress-read-from-write-only` test mode strings of the seed's file wrapper; TelemetryEngine's readers
/// and writers are separate types, so those misuses cannot be written.
struct CompressionConformanceTests {
    static let file = "conformance/raw_records.json"
    static let readerOps: Set<String> = ["compression_type", "compressed_open", "compressed_read"]
    static let laterIssueOps: Set<String> = [
        "unpack", "unpack_file", "compressed_write", "compressed_roundtrip", "compress_from", "compression_levels",
    ]

    private struct File: Decodable {
        let format: String
        let cases: [RawRecordsVector]
    }

    static func allVectors() throws -> [RawRecordsVector] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedPath(file)))
        return try JSONDecoder().decode(File.self, from: data).cases
    }

    /// Required cases of the reader ops, and of any op that is in neither list (which then fails in `runsCase`).
    static func readerVectors() throws -> [RawRecordsVector] {
        try allVectors().filter { !$0.isOptional && !laterIssueOps.contains($0.op) }
    }

    /// The vectors' compression names (the seed's suffixes) for `CompressionFormat`.
    static func vectorName(_ format: CompressionFormat) -> String {
        switch format {
        case .xz: "xz"
        case .lzmaAlone: "lzma"
        case .gzip: "gz"
        case .plain: "plain"
        }
    }

    /// A compression type given by name (`gz`, `xz`, `lzma`, as the seed spells them), or nil when unsupported.
    static func format(named name: String) -> CompressionFormat? {
        name == "gz" ? .gzip : CompressionFormat(rawValue: name).flatMap { $0 == .plain ? nil : $0 }
    }

    /// The last extension of a path's file name, with its dot (`.xz`), or nil without one.
    static func suffix(of path: String) -> String? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return name.lastIndex(of: ".").map { String(name[$0...]) }
    }

    @Test func everyOpIsKnown() throws {
        let vectors = try Self.allVectors()
        #expect(!vectors.isEmpty)
        for vector in vectors {
            #expect(Self.readerOps.contains(vector.op) || Self.laterIssueOps.contains(vector.op),
                    "case \(vector.id) has an op no runner knows: \(vector.op)")
        }
        #expect(try Self.readerVectors().map(\.id).sorted() == [
            "compress-decompress-gz", "compress-decompress-xz", "compress-detect-type", "compress-no-extension-auto",
            "compress-unknown-type",
        ])
    }

    @Test(arguments: try CompressionConformanceTests.readerVectors())
    func runsCase(_ vector: RawRecordsVector) throws {
        var checked: Set<String> = []
        let expected = vector.expected
        switch vector.op {
        case "compression_type":
            // TelemetryEngine detects by magic bytes and falls back to the suffix (spec/storage.md §3); with no
            // bytes to look at, the name's last extension decides.
            let paths = try #require(vector.input.paths)
            let detected = paths.map { CompressionFormat.detect(prefix: [UInt8](), suffix: Self.suffix(of: $0)) }
            if let names = expected.detected {
                #expect(detected.map(Self.vectorName) == names)
                checked.insert("detected")
            }
            if let explicit = expected.explicitKept {
                // The seed kept an explicit type name verbatim until open. TelemetryEngine has no explicit type:
                // a type name is read as a `CompressionFormat`, and an unknown one is never coerced to a known one.
                #expect(explicit == vector.input.explicit)
                #expect(Self.format(named: explicit) == nil)
                checked.insert("explicit_kept")
            }
            if let category = expected.error {
                // "Cannot be auto-detected" (invalid_argument): no compression is recognised from the name, so
                // TelemetryEngine reads the bytes as they are (`.plain`) rather than guess a codec.
                #expect(category == "invalid_argument")
                #expect(detected.allSatisfy { $0 == .plain }, "\(detected)")
                checked.insert("error")
            }

        case "compressed_open":
            let category = try #require(expected.error, "compressed_open cases here expect an error")
            #expect(category == "unsupported")
            let type = try #require(vector.input.type)
            #expect(Self.format(named: type) == nil, "'\(type)' must not name a supported compression")
            // The known names do resolve, so the check above is about the name, not the lookup.
            #expect(["gz", "xz", "lzma"].map(Self.format(named:)) == [.gzip, .xz, .lzmaAlone])
            checked.insert("error")

        case "compressed_read":
            let path = Fixtures.sharedPath(try #require(vector.input.path))
            let outcome = try readAll(path)
            #expect(outcome.error == nil, "\(String(describing: outcome.error))")
            #expect(outcome.format == CompressionFormat.detect(prefix: try contents(path)))
            #expect(outcome.format != .plain)
            if let lines = expected.lines {
                #expect(outcome.texts == lines)
                checked.insert("lines")
            }
            if let count = expected.lineCount {
                #expect(outcome.returnedCount == count)
                #expect(outcome.lines.last?.number == count)
                checked.insert("line_count")
            }

        default:
            Issue.record("case \(vector.id): op '\(vector.op)' is not mapped to the TelemetryCompression API")
            return
        }
        #expect(expected.keys.subtracting(checked).isEmpty, "\(vector.id): expected keys not evaluated: \(expected.keys.subtracting(checked).sorted())")
        #expect(!checked.isEmpty)
    }

    // MARK: the sample files by content

    static let sampleLines = ["line 1", "line 2", "line 3", "another \tline", "line 5"]

    @Test(arguments: [("test.txt.gz", CompressionFormat.gzip), ("test.txt.xz", .xz), ("test.txt.lzma", .lzmaAlone)])
    func sampleFileDecodes(_ name: String, _ format: CompressionFormat) throws {
        let path = Fixtures.sharedPath("conformance/data/compress/\(name)")
        let bytes = try contents(path)
        #expect(CompressionFormat.detect(prefix: bytes) == format)
        #expect(CompressionFormat.detect(prefix: bytes, suffix: ".gz") == format, "magic bytes win over the suffix")
        let outcome = try readAll(path)
        #expect(outcome.error == nil)
        #expect(outcome.format == format)
        #expect(outcome.texts == Self.sampleLines)
        #expect(outcome.lines.map(\.number) == [1, 2, 3, 4, 5])
        #expect(outcome.lines.map(\.offset) == [0, 7, 14, 21, 35])
        #expect(try decompressAll(path, blockBytes: 3) == Array((Self.sampleLines.joined(separator: "\n") + "\n").utf8))
        let reader = try DecompressingReader(path: path)
        #expect(reader.fileSize == bytes.count)
    }

    // MARK: real storage files

    /// The two real storage files (LZMA-alone, `datasets/real/PROVENANCE.md`): `<36-char uuid>\t{...}` lines.
    @Test(arguments: [
        ("saved_session/Firefox/nightly/22.0a1/20130226031002.20131011.v2.log.e28a4032eb744f089a1828ac7399e5d8.lzma",
         ["024b73d7-2e26-4545-8077-1cc930904eae"], 60_349),
        ("saved_session/Firefox/nightly/28.0a1/20131029030201.20131029.v2.log.0ab8723b6fb3455bb34b04d97482fda2.lzma",
         ["41550578-ba6c-4228-8fe8-eb4ba6fb2fe1", "7dbe9640-0a27-4c89-b937-abc19ecc2328",
          "fa35a0ff-3a75-4df7-89a3-cbca786c9727", "47656810-b826-49d8-bdae-8d9e8e656fae"], 212_679),
    ])
    func realStorageFileDecodes(_ relative: String, _ ids: [String], _ uncompressedBytes: Int) throws {
        let path = Fixtures.sharedPath("datasets/real/storage/\(relative)")
        #expect(Array(try contents(path).prefix(6)) == [0x5D, 0x00, 0x00, 0x80, 0x00, 0xFF])
        let outcome = try readAll(path)
        #expect(outcome.error == nil)
        #expect(outcome.format == .lzmaAlone)
        #expect(outcome.lines.count == ids.count)
        #expect(outcome.returnedCount == ids.count)
        var expectedOffset = 0
        for (index, line) in outcome.lines.enumerated() {
            #expect(line.number == index + 1)
            #expect(line.offset == expectedOffset)
            expectedOffset += line.length + 1
            #expect(!line.isTooLong)
            #expect(line.length == line.bytes.count)
            let tab = try #require(line.bytes.firstIndex(of: 0x09))
            #expect(tab == 36)
            #expect(String(decoding: line.bytes[..<tab], as: UTF8.self) == ids[index])
            let json = try JSONSerialization.jsonObject(with: Data(line.bytes[(tab + 1)...]))
            let object = try #require(json as? [String: Any])
            #expect(object["ver"] as? Int == 2)
            #expect((object["info"] as? [String: Any])?["appUpdateChannel"] as? String == "nightly")
        }
        #expect(expectedOffset == uncompressedBytes)
        let all = try decompressAll(path)
        #expect(all.count == uncompressedBytes)
        #expect(all.last == 0x0A)
    }

    /// The reader's output equals the `xz` CLI's for the real files (byte for byte).
    @Test func realStorageFilesMatchTheXZTool() throws {
        let base = Fixtures.sharedPath("datasets/real/storage")
        let files = try FileManager.default.subpathsOfDirectory(atPath: base).filter { $0.hasSuffix(".lzma") }
        #expect(files.count == 2)
        let scratch = TemporaryDirectory("compression-real")
        for (index, file) in files.enumerated() {
            let out = scratch.file("\(index).txt")
            try shell("xz -dc --format=lzma '\(base)/\(file)' > '\(out)'", in: scratch.path)
            #expect(try decompressAll(base + "/" + file) == (try contents(out)), "\(file)")
        }
    }
}
