import Foundation
import Testing
import TelemetryCore
import TelemetryTestSupport

// Tests of the raw submission log reader and encoder (`spec/raw-log.md` §1, §5, §8).
// TelemetryCoreTests does not depend on TelemetryCompression, so the few gzip bodies the vectors look inside are
// inflated with the gzip(1) tool here; `Gzip.inflate` itself is tested (also on raw-log bodies) in GzipTests.

// MARK: - Helpers

/// Everything a tolerant pass over a file gives, in file order.
struct RawLogPass {
    var version: RawLogVersion
    var items: [RawLogItem] = []
    var counts = RawLogCounts()
    /// `junkBytesBeforeLastRecord` right after each record, keyed by the record's offset.
    var junkBefore: [Int: Int] = [:]

    var records: [RawRecord] { items.compactMap { if case let .record(r) = $0 { r } else { nil } } }
    var events: [RawLogEvent] { items.compactMap { if case let .event(e) = $0 { e } else { nil } } }
}

/// Reads `path` to the end with `RawLogReader` (tolerant) and collects every item.
func readRawLog(_ path: String, version: RawLogVersion? = nil, limits: RawLogLimits = .default) throws -> RawLogPass {
    let reader = try RawLogReader(path: path, version: version, limits: limits)
    var pass = RawLogPass(version: reader.version)
    while let item = try reader.next() {
        pass.items.append(item)
        if case let .record(record) = item { pass.junkBefore[record.offset] = reader.junkBytesBeforeLastRecord }
    }
    pass.counts = reader.counts
    #expect(try reader.next() == nil, "a finished reader stays finished")
    return pass
}

/// The strict-mode outcome of reading `path`: records read before the first error, and that error.
func readRawLogStrictly(_ path: String, version: RawLogVersion) throws -> (records: [RawRecord], error: RawLogError?) {
    let reader = try RawLogReader(path: path, version: version, mode: .strict)
    var records: [RawRecord] = []
    do {
        while let item = try reader.next() {
            guard case let .record(record) = item else {
                Issue.record("strict mode produced an event: \(item)")
                continue
            }
            records.append(record)
        }
        return (records, nil)
    } catch let error as RawLogError {
        return (records, error)
    }
}

/// Bytes from a hex string (`"1e04"` → `[0x1E, 0x04]`).
func bytes(hex: String) throws -> [UInt8] {
    let digits = Array(hex.utf8)
    try #require(digits.count % 2 == 0, "odd-length hex")
    return try stride(from: 0, to: digits.count, by: 2).map { i in
        try #require(UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16), "bad hex at \(i)")
    }
}

/// A v1 record of the C++ seed tests (`spec/raw-log.md` §5.3): path `abcd`, data `{"a":8}`, timestamp 1; 26 bytes.
let seedRecordHex = "1e0400070000000100000000000000616263647b2261223a387d"

/// Deterministic pseudo-random numbers for generated records (test inputs must not change between runs).
struct RawLogTestRNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }
    /// Junk for between records: never 0x1E.
    mutating func junk(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0x1F...0xFF, using: &self) } }
}

/// Runs a command (a `ChildProcess`: clean signal mask, output to files) in `directory`; fails the test on a
/// non-zero exit, and kills the process (SIGKILL) after `timeout`.
func runTool(_ executable: String, _ arguments: [String], in directory: String, timeout: Duration = .seconds(300)) throws {
    let stderrPath = directory + "/.tool-stderr-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: stderrPath) }
    let child = try ChildProcess(executable, arguments, currentDirectory: directory, stderr: stderrPath)
    let deadline = ContinuousClock.now + timeout
    while child.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
    if child.isRunning {
        child.send(SIGKILL)
        Issue.record("\(executable) \(arguments.joined(separator: " ")) killed after \(timeout)")
    }
    let status = child.wait()
    let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    try #require(status == 0, "\(executable) \(arguments.joined(separator: " ")) failed: \(stderr)")
}

/// Runs shared/tools/gen_pings.py with `arguments` in `directory`.
func runGenerator(_ arguments: [String], in directory: String) throws {
    try runTool("/usr/bin/env", ["python3", Fixtures.sharedPath("tools/gen_pings.py")] + arguments,
                in: directory)
}

/// Inflates gzip data with the gzip(1) tool (this test target has no zlib binding).
func gunzipWithTool(_ data: [UInt8]) throws -> [UInt8] {
    let dir = TemporaryDirectory("rawlog-gunzip")
    try dir.write("body.gz", data)
    try runTool("/bin/sh", ["-c", "gzip -dc < body.gz > body"], in: dir.path)
    return Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("body"))))
}

/// Lower-case hex MD5 of `message` (RFC 1321), for the vectors' `data_md5`; Foundation on Linux has no digest API.
func md5Hex(_ message: [UInt8]) -> String {
    let shifts: [UInt32] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]
    let table: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64((abs(sin(Double($0 + 1))) * 4_294_967_296).rounded(.down))) }
    var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476)
    var padded = message
    padded.append(0x80)
    while padded.count % 64 != 56 { padded.append(0) }
    let bitLength = UInt64(message.count) &* 8
    for i in 0..<8 { padded.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
    for chunk in stride(from: 0, to: padded.count, by: 64) {
        let words: [UInt32] = (0..<16).map { i in
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(padded[chunk + 4 * i + $1]) << (8 * UInt32($1)) }
        }
        var (a, b, c, d) = state
        for i in 0..<64 {
            var f: UInt32
            let g: Int
            switch i {
            case 0..<16: f = (b & c) | (~b & d); g = i
            case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
            case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * i) % 16
            }
            f = f &+ a &+ table[i] &+ words[g]
            a = d; d = c; c = b
            let s = shifts[(i / 16) * 4 + i % 4]
            b = b &+ ((f << s) | (f >> (32 - s)))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
    return [state.0, state.1, state.2, state.3]
        .flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * UInt32($0))) } }
        .map { String(format: "%02x", $0) }.joined()
}

// MARK: - Conformance vectors

/// One case of `../shared/conformance/raw_records.json` (format `telemetry-conformance/1`, see its README).
struct RawLogVector: Sendable, Decodable, CustomTestStringConvertible {
    let id: String
    let op: String
    let optional: Bool?
    let input: JSONValue
    let expected: JSONValue

    var testDescription: String { id }
    var isOptional: Bool { optional ?? false }
}

/// The raw-log cases (`unpack`, `unpack_file`) of `conformance/raw_records.json` against `RawLogReader`.
///
/// Other ops of the file, skipped here by name: `compression_type`, `compressed_open`, `compressed_read` (the
/// compression readers, `CompressionConformanceTests`); `compressed_write`, `compressed_roundtrip`,
/// `compress_from`, `compression_levels` (the compression writers, `GzipTests`). An op in none of these lists
/// fails `everyOpIsKnown` and `runsCase`. There are no optional `unpack`/`unpack_file` cases to leave out.
struct RawLogConformanceTests {
    static let file = "conformance/raw_records.json"
    static let ops: Set<String> = ["unpack", "unpack_file"]
    static let opsRunElsewhere: Set<String> = [
        "compression_type", "compressed_open", "compressed_read",
        "compressed_write", "compressed_roundtrip", "compress_from", "compression_levels",
    ]

    private struct File: Decodable {
        let format: String
        let cases: [RawLogVector]
    }

    static func allVectors() throws -> [RawLogVector] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedPath(file)))
        return try JSONDecoder().decode(File.self, from: data).cases
    }

    /// Required cases of this runner's ops and of any op no runner knows (which then fails in `runsCase`).
    static func requiredVectors() throws -> [RawLogVector] {
        try allVectors().filter { !$0.isOptional && !opsRunElsewhere.contains($0.op) }
    }

    @Test func everyOpIsKnown() throws {
        let vectors = try Self.allVectors()
        for vector in vectors {
            #expect(Self.ops.contains(vector.op) || Self.opsRunElsewhere.contains(vector.op),
                    "case \(vector.id) has an op no runner knows: \(vector.op)")
        }
        #expect(try Self.requiredVectors().map(\.id).sorted() == [
            "raw-detect-version-unicode", "raw-leading-garbage", "raw-path-length-over-limit", "raw-telemetry1-log",
            "raw-two-v1-records", "raw-unicode-packed-utf8",
        ])
        #expect(md5Hex([]) == "d41d8cd98f00b204e9800998ecf8427e", "the test's own MD5")
        #expect(md5Hex(Array("The quick brown fox jumps over the lazy dog".utf8)) == "9e107d9d372bb6826bd81d3542a419d6")
    }

    @Test(arguments: try RawLogConformanceTests.requiredVectors())
    func runsCase(_ vector: RawLogVector) throws {
        guard Self.ops.contains(vector.op) else {
            Issue.record("case \(vector.id): op '\(vector.op)' is not mapped to the raw-log API")
            return
        }
        let dir = TemporaryDirectory("rawlog-vector")
        var checked: Set<String> = []
        let expected = vector.expected

        // Input: hex bytes written to a scratch file, or a file under ../shared.
        let knownInputs: Set<String> = ["hex", "file", "file_version", "validate_json", "max_path_length",
                                        "max_data_length", "max_ip_length"]
        #expect(Set(vector.input.keys).subtracting(knownInputs).isEmpty, "\(vector.id): unknown input keys")
        let path: String
        if let hex = vector.input["hex"]?.string {
            path = try dir.write("test.log", try bytes(hex: hex))
        } else {
            path = Fixtures.sharedPath(try #require(vector.input["file"]?.string, "\(vector.id): no hex or file"))
        }
        var limits = RawLogLimits.default
        if let n = vector.input["max_path_length"]?.int { limits.maxPathBytes = n }
        if let n = vector.input["max_data_length"]?.int { limits.maxDataBytes = n }
        if let n = vector.input["max_ip_length"]?.int { limits.maxIPBytes = n }
        let versionName = vector.input["file_version"]?.string ?? "auto"
        let explicitVersion = RawLogVersion(rawValue: versionName)
        #expect(explicitVersion != nil || versionName == "auto", "\(vector.id): file_version \(versionName)")
        let version: RawLogVersion? = versionName == "auto" ? nil : explicitVersion

        if let detected = expected["detected_version"]?.string {
            checked.insert("detected_version")
            #expect(version == nil, "\(vector.id): detected_version asked with an explicit version")
            #expect(try RawLogReader.detectVersion(path: path, limits: limits).rawValue == detected)
        }
        let pass = try readRawLog(path, version: version, limits: limits)
        #expect(pass.counts.truncatedRecords == 0)

        // C++ semantics (`validate_json`): a record whose body is not JSON is skipped by the reader's caller.
        var records: [(record: RawRecord, body: [UInt8])] = try pass.records.map { ($0, $0.dataLooksGzipped ? try gunzipWithTool($0.data) : $0.data) }
        if vector.input["validate_json"]?.bool == true {
            records = records.filter { (try? JSONDecoder().decode(JSONValue.self, from: Data($0.body))) != nil }
        }

        if let count = expected["record_count"]?.int {
            checked.insert("record_count")
            #expect(records.count == count, "\(vector.id): record_count")
        }
        if let skipped = expected["bytes_skipped"]?.int {
            checked.insert("bytes_skipped")
            #expect(pass.counts.skippedBytes == skipped, "\(vector.id): bytes_skipped")
        }
        if let atLeast = expected["corrupt_headers_at_least"]?.int {
            checked.insert("corrupt_headers_at_least")
            #expect(pass.counts.rejectedPreambles >= atLeast, "\(vector.id): corrupt_headers_at_least")
        }
        if let strict = expected["strict_v1"] {
            checked.insert("strict_v1")
            #expect(strict.keys == ["error"], "\(vector.id): strict_v1 keys")
            // corrupt_data ↔ a framing error (conformance README's table): anything but an I/O error.
            #expect(strict["error"]?.string == "corrupt_data")
            let outcome = try readRawLogStrictly(path, version: .v1)
            let error = try #require(outcome.error, "\(vector.id): strict v1 read must fail")
            if case .io = error { Issue.record("\(vector.id): strict v1 failed with an I/O error: \(error)") }
        }
        if let expectedRecords = expected["records"]?.array {
            checked.insert("records")
            #expect(records.count == expectedRecords.count, "\(vector.id): number of records")
            for (index, (want, got)) in zip(expectedRecords, records).enumerated() {
                checkRecord(want, got.record, body: got.body, label: "\(vector.id) record \(index)")
            }
        }
        #expect(Set(expected.keys).subtracting(checked).isEmpty,
                "\(vector.id): expected keys not evaluated: \(Set(expected.keys).subtracting(checked).sorted())")
        #expect(!checked.isEmpty)
    }

    /// One expected record: every key is its own assertion; an unknown key fails.
    func checkRecord(_ want: JSONValue, _ record: RawRecord, body: [UInt8], label: String) {
        for key in want.keys {
            guard let value = want[key] else { continue }
            switch key {
            case "timestamp": #expect(value.int.map(UInt64.init) == record.timestamp, "\(label): timestamp")
            case "path": #expect(value.string == record.pathString, "\(label): path")
            case "ip": #expect(value.string == record.ipString, "\(label): ip")
            case "len_path": #expect(value.int == record.path.count, "\(label): len_path")
            case "len_data": #expect(value.int == record.data.count, "\(label): len_data")
            case "data_gzipped": #expect(value.bool == record.dataLooksGzipped, "\(label): data_gzipped")
            case "data_length": #expect(value.int == body.count, "\(label): data_length")
            case "data_md5": #expect(value.string == md5Hex(body), "\(label): data_md5")
            case "data_text": #expect(value.string == String(decoding: body, as: UTF8.self), "\(label): data_text")
            case "data_json":
                let parsed = try? JSONDecoder().decode(JSONValue.self, from: Data(body))
                #expect(parsed == value, "\(label): data_json")
            case "data_json_paths":
                let parsed = try? JSONDecoder().decode(JSONValue.self, from: Data(body))
                #expect(parsed != nil, "\(label): body is not JSON")
                for dotted in value.keys {
                    let found = dotted.split(separator: ".").reduce(parsed) { $0?[String($1)] }
                    #expect(found == value[dotted], "\(label): data_json_paths \(dotted)")
                }
            case "data_bytes_at":
                for position in value.keys {
                    guard let index = Int(position), let hex = value[position]?.string else {
                        Issue.record("\(label): data_bytes_at \(position)"); continue
                    }
                    #expect(body.indices.contains(index) && String(format: "%02x", body[index]) == hex,
                            "\(label): data_bytes_at \(position)")
                }
            case "decoded_utf8_char_at":
                let scalars = Array(String(decoding: body, as: UTF8.self).unicodeScalars)
                #expect(String(decoding: body, as: UTF8.self).utf8.elementsEqual(body), "\(label): body is valid UTF-8")
                for position in value.keys {
                    guard let index = Int(position), let char = value[position]?.string else {
                        Issue.record("\(label): decoded_utf8_char_at \(position)"); continue
                    }
                    #expect(scalars.indices.contains(index) && String(scalars[index]) == char,
                            "\(label): decoded_utf8_char_at \(position)")
                }
            default:
                Issue.record("\(label): record key '\(key)' is not evaluated by this runner")
            }
        }
    }
}

// MARK: - Real files (spec/raw-log.md §8)

struct RawLogRealFileTests {
    static let telemetry1 = Fixtures.sharedPath("datasets/real/raw-logs/telemetry1.log")
    static let unicode = Fixtures.sharedPath("datasets/real/raw-logs/unicode.v1.packed")

    @Test func telemetry1LogHasOneRecordAndOneStrayByte() throws {
        #expect(try RawLogReader.detectVersion(path: Self.telemetry1) == .v1)
        let pass = try readRawLog(Self.telemetry1)
        #expect(pass.version == .v1)
        #expect(pass.records.count == 1)
        #expect(pass.events == [.skippedBytes(offset: 18_355, count: 1)], "the trailing newline")
        #expect(pass.counts == {
            var c = RawLogCounts(); c.records = 1; c.skippedBytes = 1; return c
        }())
        let record = try #require(pass.records.first)
        #expect(record.version == .v1)
        #expect(record.offset == 0)
        #expect(record.timestamp == 1_378_822_911_255)
        #expect(record.pathString == "17caa68c-25f5-450a-9cce-7d31318846d8/idle-daily/Firefox/23.0.1/release/20130814063812")
        #expect(record.path.count == 85)
        #expect(record.ip == nil)
        #expect(record.data.count == 18_255)
        #expect(record.encodedByteCount == 18_355)
        #expect(record.dataLooksGzipped)
        #expect(pass.junkBefore[0] == 0)

        let body = try gunzipWithTool(record.data)
        #expect(body.count == 77_740)
        let json = try JSONDecoder().decode(JSONValue.self, from: Data(body))
        #expect(json["ver"] == .number(1))
        #expect(json["info"]?["reason"] == .string("idle-daily"))

        // The record re-encodes to the file's first 18355 bytes exactly.
        let file = Array(try Data(contentsOf: URL(fileURLWithPath: Self.telemetry1)))
        #expect(file.count == 18_356)
        #expect(record.encoded() == Array(file[0..<18_355]))

        // Strict mode reads the record, then stops at the newline.
        let strict = try readRawLogStrictly(Self.telemetry1, version: .v1)
        #expect(strict.records == pass.records)
        #expect(strict.error == .unexpectedByte(path: Self.telemetry1, offset: 18_355))
    }

    @Test func unicodePackedHasTwoRecordsWithUTF8Bodies() throws {
        #expect(try RawLogReader.detectVersion(path: Self.unicode) == .v1)
        let pass = try readRawLog(Self.unicode)
        #expect(pass.events.isEmpty)
        #expect(pass.counts.records == 2)
        #expect(pass.counts.skippedBytes == 0)
        try #require(pass.records.count == 2)
        let (first, second) = (pass.records[0], pass.records[1])
        let path = "e7916aaf-ab3e-924c-a0bf-47d54359f721/reason/appName/appVersion/appUpdateChannel/appBuildID"
        #expect(first.timestamp == 1_426_078_139_554)
        #expect(second.timestamp == 1_426_078_151_424)
        #expect(first.pathString == path && second.pathString == path)
        #expect(first.path.count == 90 && second.path.count == 90)
        #expect(first.offset == 0)
        #expect(second.offset == 15 + 90 + 2_488)
        #expect(first.data.count == 2_488 && first.dataLooksGzipped)
        #expect(second.data.count == 5_369 && !second.dataLooksGzipped)
        #expect(second.offset + second.encodedByteCount == 8_067, "the file ends with the second record")

        let inflated = try gunzipWithTool(first.data)
        #expect(inflated.count == 5_370)
        #expect(Array(inflated.dropLast()) == second.data, "same submission; the gzipped copy ends with a newline")
        for body in [inflated, second.data] {
            #expect(body.first == UInt8(ascii: "{"))
            #expect(Array(body[0xD16...0xD19]) == [0x70, 0xC3, 0xA9, 0x64], "p é d in UTF-8")
            #expect(String(decoding: body, as: UTF8.self).contains("Wikip\u{E9}dia"))
        }
    }
}

// MARK: - Framing, resynchronisation, limits

struct RawLogFramingTests {
    /// Writes `bytes` to a fresh file named `name` and reads it.
    func read(_ bytes: [UInt8], version: RawLogVersion? = .v1, limits: RawLogLimits = .default,
              name: String = "test.log") throws -> RawLogPass {
        let dir = TemporaryDirectory("rawlog")
        return try readRawLog(try dir.write(name, bytes), version: version, limits: limits)
    }

    static func seedRecord(offset: Int) -> RawRecord {
        RawRecord(version: .v1, timestamp: 1, path: Array("abcd".utf8), data: Array(#"{"a":8}"#.utf8), offset: offset)
    }

    @Test func seedRecordDecodesAndEncodes() throws {
        let bytes = try bytes(hex: seedRecordHex)
        #expect(bytes.count == 26)
        let pass = try read(bytes)
        #expect(pass.items == [.record(Self.seedRecord(offset: 0))])
        #expect(Self.seedRecord(offset: 0).encoded() == bytes)
    }

    /// C++ `test_read`: two copies back to back.
    @Test func twoRecordsBackToBack() throws {
        let pass = try read(try bytes(hex: seedRecordHex + seedRecordHex))
        #expect(pass.items == [.record(Self.seedRecord(offset: 0)), .record(Self.seedRecord(offset: 26))])
        #expect(pass.counts.skippedBytes == 0)
    }

    /// C++ `test_exceed_pathlength`: a bare preamble with `path_len` 0xFFFF between two records is rejected; scanning
    /// resumes one byte after its separator and finds the second record.
    @Test func bogusPreambleBetweenRecordsIsRejected() throws {
        let preamble = "1e" + "ffff" + "07000000" + "0100000000000000"   // 15 bytes: path_len 65535
        let pass = try read(try bytes(hex: seedRecordHex + preamble + seedRecordHex))
        #expect(pass.items == [
            .record(Self.seedRecord(offset: 0)),
            .event(.rejectedPreamble(offset: 26, reason: .pathTooLong(bytes: 0xFFFF, limit: 10_240))),
            .event(.skippedBytes(offset: 27, count: 14)),
            .record(Self.seedRecord(offset: 41)),
        ])
        #expect(pass.counts.rejectedPreambles == 1)
        #expect(pass.counts.skippedBytes == 14)
        #expect(pass.counts.skippedBytesInRejectedRecords == 14)
        #expect(pass.junkBefore[41] == 0, "bytes of a rejected record are not junk before the next one")

        // With limits that allow the length, the bogus preamble swallows the rest: the file ends inside it.
        let lax = try read(try bytes(hex: seedRecordHex + preamble + seedRecordHex),
                           limits: RawLogLimits(maxPathBytes: 65_535))
        #expect(lax.items == [.record(Self.seedRecord(offset: 0)), .event(.truncatedRecord(offset: 26))])
    }

    /// C++ mis-framed record: `path_len` says 2 while 4 path bytes follow. The framing reads path `ab` and 7 data
    /// bytes `cd{"a":` (not JSON: the C++ worker's parse failure is the converter's `conversion_error`), skips the
    /// two bytes `8}` and finds the good record.
    @Test func misFramedRecordThenGoodRecord() throws {
        let misFramed = "1e0200070000000100000000000000616263647b2261223a387d"
        let pass = try read(try bytes(hex: misFramed + seedRecordHex))
        #expect(pass.items == [
            .record(RawRecord(version: .v1, timestamp: 1, path: Array("ab".utf8), data: Array(#"cd{"a":"#.utf8), offset: 0)),
            .event(.skippedBytes(offset: 24, count: 2)),
            .record(Self.seedRecord(offset: 26)),
        ])
        #expect((try? JSONSerialization.jsonObject(with: Data(pass.records[0].data))) == nil)
        #expect(pass.junkBefore[26] == 2)
    }

    /// `spec/raw-log.md` §8.3.
    @Test func v2ExampleRecord() throws {
        let hex = "1e07030002000000" + "0100000000000000" + "312e322e332e34" + "616263" + "7b7d"
        let bytes = try bytes(hex: hex)
        #expect(bytes.count == 28)
        let record = RawRecord(version: .v2, timestamp: 1, path: Array("abc".utf8), ip: Array("1.2.3.4".utf8),
                               data: Array("{}".utf8))
        #expect(record.encoded() == bytes)
        #expect(record.encodedByteCount == 28)
        let dir = TemporaryDirectory("rawlog-v2")
        let path = try dir.write("example.log", bytes)
        #expect(try RawLogReader.detectVersion(path: path) == .v2)
        let pass = try readRawLog(path)
        #expect(pass.items == [.record(record)])
        #expect(pass.records.first?.ipString == "1.2.3.4")
        #expect(pass.records.first?.pathString == "abc")
    }

    @Test(arguments: [RawLogVersion.v1, .v2])
    func randomRecordsRoundTrip(_ version: RawLogVersion) throws {
        var rng = RawLogTestRNG(state: version == .v1 ? 11 : 22)
        var records: [RawRecord] = []
        var file: [UInt8] = []
        for index in 0..<300 {
            let pathBytes = index == 0 ? 0 : index == 1 ? 10_240 : Int.random(in: 0...300, using: &rng)
            let dataBytes = index == 2 ? 204_800 : index == 3 ? 0 : Int.random(in: 0...20_000, using: &rng)
            var ip: [UInt8]?
            if version == .v2 {
                let ipBytes = index == 4 ? 100 : index == 5 ? 0 : Int.random(in: 7...45, using: &rng)
                ip = rng.bytes(ipBytes)
            }
            let record = RawRecord(version: version, timestamp: rng.next(), path: rng.bytes(pathBytes), ip: ip,
                                   data: rng.bytes(dataBytes), offset: file.count)
            record.append(to: &file)
            records.append(record)
        }
        #expect(file.count > 1_000_000, "records straddle many 256 KiB blocks")
        let dir = TemporaryDirectory("rawlog-roundtrip")
        let path = try dir.write("random.\(version).log", file)
        let pass = try readRawLog(path, version: version)
        #expect(pass.events == [])
        #expect(pass.records.count == records.count)
        for (got, want) in zip(pass.records, records) where got != want {
            Issue.record("record at \(want.offset) differs (\(got.path.count)/\(got.data.count) vs \(want.path.count)/\(want.data.count))")
            break
        }
        #expect(try RawLogReader.detectVersion(path: path) == version)
        // Each record alone re-encodes to its own bytes.
        for record in records.prefix(20) {
            #expect(record.encoded() == Array(file[record.offset..<record.offset + record.encodedByteCount]))
        }
    }

    /// Records larger than the 256 KiB block are read when the limits allow them (the buffer grows).
    @Test func recordsLargerThanOneBlock() throws {
        var rng = RawLogTestRNG(state: 5)
        let big = RawRecord(version: .v2, timestamp: 7, path: rng.bytes(60_000), ip: Array("::1".utf8),
                            data: rng.bytes(3_000_000))
        var second = RawRecord(version: .v2, timestamp: 8, path: Array("p".utf8), ip: [], data: rng.bytes(10))
        second.offset = big.encodedByteCount
        var file = big.encoded()
        second.append(to: &file)
        let pass = try read(file, version: .v2, limits: RawLogLimits(maxPathBytes: 65_535, maxDataBytes: 4_000_000))
        #expect(pass.items == [.record(big), .record(second)])
        // With the default limits both lengths are implausible.
        let strict = try read(file, version: .v2)
        #expect(strict.events.first == .rejectedPreamble(offset: 0, reason: .pathTooLong(bytes: 60_000, limit: 10_240)))
    }

    @Test func junkBetweenRecordsIsCountedExactly() throws {
        var rng = RawLogTestRNG(state: 99)
        var file: [UInt8] = []
        var expectedItems: [RawLogItem] = []
        var expectedJunk: [Int: Int] = [:]
        var totalJunk = 0
        for index in 0..<200 {
            let junkCount = index % 3 == 0 ? 0 : Int.random(in: 1...600_000 / 200, using: &rng)
            if junkCount > 0 {
                expectedItems.append(.event(.skippedBytes(offset: file.count, count: junkCount)))
                file += rng.junk(junkCount)
                totalJunk += junkCount
            }
            let record = RawRecord(version: .v1, timestamp: UInt64(index), path: Array("doc-\(index)/main".utf8),
                                   data: rng.bytes(Int.random(in: 0...5_000, using: &rng)), offset: file.count)
            expectedJunk[record.offset] = junkCount
            record.append(to: &file)
            expectedItems.append(.record(record))
        }
        let tail = rng.junk(1_234)
        expectedItems.append(.event(.skippedBytes(offset: file.count, count: tail.count)))
        file += tail
        totalJunk += tail.count

        let pass = try read(file)
        #expect(pass.items == expectedItems)
        #expect(pass.counts.skippedBytes == totalJunk)
        #expect(pass.counts.skippedBytesInRejectedRecords == 0)
        #expect(pass.counts.records == 200)
        #expect(pass.junkBefore == expectedJunk)
    }

    /// The generator's `oversized_field` accounting (shared/tools/README.md "Bad records"): a record whose `data_len`
    /// is over the limit is rejected; the rest of it (record length − 1 bytes, the separator not counted) is skipped
    /// and belongs to the rejected record; junk after it is junk before the next record.
    @Test func oversizedRecordIsSkippedAsOneRejectedRecord() throws {
        var rng = RawLogTestRNG(state: 3)
        let before = RawRecord(version: .v2, timestamp: 1, path: Array("a".utf8), ip: Array("1.2.3.4".utf8), data: rng.junk(100))
        let oversized = RawRecord(version: .v2, timestamp: 2, path: Array("b".utf8), ip: Array("10.0.0.1".utf8),
                                  data: rng.junk(250_000))
        var after = RawRecord(version: .v2, timestamp: 3, path: Array("c".utf8), ip: [], data: rng.junk(50))
        var file = before.encoded()
        let oversizedOffset = file.count
        oversized.append(to: &file)
        let junk = rng.junk(17)
        file += junk
        after.offset = file.count
        after.append(to: &file)

        let pass = try read(file, version: nil, name: "telemetry.log.v2.host.1.2.finished")
        #expect(pass.version == .v2)
        #expect(pass.items == [
            .record(before),
            .event(.rejectedPreamble(offset: oversizedOffset, reason: .dataTooLong(bytes: 250_000, limit: 204_800))),
            .event(.skippedBytes(offset: oversizedOffset + 1, count: oversized.encodedByteCount - 1)),
            .event(.skippedBytes(offset: oversizedOffset + oversized.encodedByteCount, count: 17)),
            .record(after),
        ])
        #expect(pass.counts.skippedBytes == oversized.encodedByteCount - 1 + 17)
        #expect(pass.counts.skippedBytesInRejectedRecords == oversized.encodedByteCount - 1)
        #expect(pass.junkBefore[after.offset] == 17)
    }

    @Test func overLongIPIsRejected() throws {
        let record = RawRecord(version: .v2, timestamp: 1, path: Array("p".utf8), ip: Array(repeating: 0x41, count: 101), data: [])
        let pass = try read(record.encoded(), version: .v2)
        #expect(pass.events.first == .rejectedPreamble(offset: 0, reason: .ipTooLong(bytes: 101, limit: 100)))
        #expect(pass.records.isEmpty)
        #expect(pass.counts.skippedBytes == record.encodedByteCount - 1)
    }

    @Test(arguments: [1, 7, 14, 15, 18, 19, 25])
    func recordCutShortAtEndOfFile(_ keptBytes: Int) throws {
        let good = try bytes(hex: seedRecordHex)
        let file = good + Array(good.prefix(keptBytes))
        let pass = try read(file)
        #expect(pass.items == [.record(Self.seedRecord(offset: 0)), .event(.truncatedRecord(offset: 26))])
        #expect(pass.counts.truncatedRecords == 1)
        #expect(pass.counts.skippedBytes == 0, "the bytes of a truncated record are not skipped bytes")

        let dir = TemporaryDirectory("rawlog-cut")
        let path = try dir.write("cut.log", file)
        let strict = try readRawLogStrictly(path, version: .v1)
        #expect(strict.records == [Self.seedRecord(offset: 0)])
        #expect(strict.error == .truncatedRecord(path: path, offset: 26, expectedBytes: keptBytes < 15 ? 15 : 26,
                                                 availableBytes: keptBytes))
    }

    @Test func emptyFile() throws {
        let dir = TemporaryDirectory("rawlog-empty")
        for version in RawLogVersion.allCases {
            let pass = try readRawLog(try dir.write("empty.log", []), version: version)
            #expect(pass.items.isEmpty)
            #expect(pass.counts == RawLogCounts())
        }
        let untagged = try dir.write("empty.log", [])
        #expect(throws: RawLogError.undetectableVersion(path: untagged)) { try RawLogReader.detectVersion(path: untagged) }
        #expect(throws: RawLogError.undetectableVersion(path: untagged)) { try RawLogReader(path: untagged) }
        #expect("\(RawLogError.undetectableVersion(path: untagged))" == "Could not detect file version in: '\(untagged)'")
        let tagged = try dir.write("telemetry.log.v2.host.1.1378822911255.finished", [])
        #expect(try RawLogReader.detectVersion(path: tagged) == .v2, "the name tag breaks the 0–0 tie")
        #expect(try RawLogReader(path: tagged).next() == nil)
    }

    @Test func missingFileIsAnIOError() throws {
        let dir = TemporaryDirectory("rawlog-missing")
        let path = dir.file("nope.v1.log")
        let error = #expect(throws: RawLogError.self) { try RawLogReader(path: path, version: .v1) }
        guard case let .io(errorPath, operation, code, _)? = error else {
            Issue.record("expected an I/O error, got \(String(describing: error))")
            return
        }
        #expect(errorPath == path && operation == "open" && code == ENOENT)
        #expect(throws: RawLogError.self) { try RawLogReader.detectVersion(path: path) }
    }

    /// Content decides, the name is only a hint (`spec/raw-log.md` §5.1).
    @Test func contentBeatsTheNameTag() throws {
        let dir = TemporaryDirectory("rawlog-detect")
        var v2File: [UInt8] = []
        for i in 0..<3 {
            RawRecord(version: .v2, timestamp: UInt64(i), path: Array("x/y".utf8), ip: Array("127.0.0.1".utf8),
                      data: Array("{}".utf8)).append(to: &v2File)
        }
        let misnamed = try dir.write("telemetry.log.v1.host.1.2.finished", v2File)
        #expect(try RawLogReader.detectVersion(path: misnamed) == .v2)
        #expect(try RawLogReader(path: misnamed).version == .v2)
        #expect(try readRawLog(misnamed).records.count == 3)

        // Only junk: no version reads a record; the tag decides, and without one detection fails.
        let junk = Array(repeating: UInt8(ascii: "x"), count: 100)
        #expect(try RawLogReader.detectVersion(path: try dir.write("junk.v1.log", junk)) == .v1)
        let untagged = try dir.write("junk.log", junk)
        #expect(throws: RawLogError.undetectableVersion(path: untagged)) { try RawLogReader.detectVersion(path: untagged) }
        #expect(RawLogVersion.nameHint(forPath: "/data.v2.dir/telemetry.log") == nil, "only the file name counts")
        #expect(RawLogVersion.nameHint(forPath: "a.v1.b.v2.c") == nil, "both tags: no hint")
        #expect(RawLogVersion.nameHint(forPath: "/x/unicode.v1.packed") == .v1)
    }

    @Test func forEachDeliversRecordsAndEventsInOrder() throws {
        let dir = TemporaryDirectory("rawlog-foreach")
        let path = try dir.write("t.log", try bytes(hex: "78797a0a" + seedRecordHex + "00"))
        let reader = try RawLogReader(path: path, version: .v1)
        var log: [String] = []
        try reader.forEach(record: { log.append("record@\($0.offset)") },
                           event: { log.append("\($0)") })
        #expect(log == ["skippedBytes(offset: 0, count: 4)", "record@4", "skippedBytes(offset: 30, count: 1)"])
        #expect(reader.counts.records == 1 && reader.counts.skippedBytes == 5)
    }
}

// MARK: - Generated raw logs (shared/tools/gen_pings.py)

struct RawLogGeneratedTests {
    /// Reads every raw log the generator wrote, with version detection, and checks the totals and per-record
    /// expectations of its MANIFEST.json (shared/tools/README.md "Bad records").
    @Test(.timeLimit(.minutes(5)), arguments: ["v1", "v2"])
    func readsGeneratedLogsAsTheManifestSays(_ logVersion: String) throws {
        let dir = TemporaryDirectory("rawlog-gen")
        try runGenerator([
            "--pings", "300", "--format", "rawlog", "--seed", "3", "--bad-fraction", "0.1", "--log-version", logVersion,
            "--procs", "1", "--out", dir.path,
        ], in: dir.path)
        let manifest = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: dir.file("MANIFEST.json"))))
        let rawlog = try #require(manifest["outputs"]?["rawlog"])
        let badRecords = try #require(rawlog["bad_records"]?.array)
        let oversized = badRecords.filter { $0["kind"]?.string == "oversized_field" }
        let separators = badRecords.filter { $0["kind"]?.string == "corrupt_separator" }
        try #require(!oversized.isEmpty && !separators.isEmpty, "the seed gives both kinds of framing damage")

        let files = try FileManager.default.contentsOfDirectory(atPath: dir.file("rawlog")).filter { $0.hasSuffix(".finished") }.sorted()
        #expect(files.count == rawlog["files"]?.int)
        var records = 0, rejected = 0, skipped = 0, truncated = 0, recordsAfterJunk = 0
        var rejectedAt: Set<String> = [], skippedAt: [String: Int] = [:], junkBefore: [String: Int] = [:]
        for name in files {
            let path = dir.file("rawlog/\(name)")
            let pass = try readRawLog(path)
            #expect(pass.version.rawValue == logVersion, "\(name): detected \(pass.version)")
            records += pass.counts.records
            rejected += pass.counts.rejectedPreambles
            skipped += pass.counts.skippedBytes
            truncated += pass.counts.truncatedRecords
            #expect(pass.records.allSatisfy { ($0.ip != nil) == (logVersion == "v2") })
            for event in pass.events {
                switch event {
                case let .rejectedPreamble(offset, reason):
                    rejectedAt.insert("\(name)@\(offset)")
                    guard case .dataTooLong = reason else { Issue.record("\(name)@\(offset): \(reason)"); continue }
                case let .skippedBytes(offset, count): skippedAt["\(name)@\(offset)", default: 0] += count
                case .truncatedRecord: break
                }
            }
            for (offset, junk) in pass.junkBefore where junk > 0 {
                junkBefore["\(name)@\(offset)"] = junk
                recordsAfterJunk += 1
            }
        }
        #expect(records + rejected == rawlog["records"]?.int, "every record written is read or rejected")
        #expect(rejected == oversized.count, "one corrupted_data per oversized_field record")
        #expect(rejected == rawlog["bad_counts"]?["oversized_field"]?.int)
        #expect(skipped == rawlog["expected_skipped_bytes"]?.int)
        #expect(truncated == 0)
        #expect(recordsAfterJunk == rawlog["expected_warning_counts"]?["skipped_bytes"]?.int)
        for bad in oversized {
            let file = bad["file"]?.string ?? "?", offset = bad["offset"]?.int ?? -1
            #expect(rejectedAt.contains("\(file)@\(offset)"), "oversized record \(file)@\(offset) rejected")
            #expect(skippedAt["\(file)@\(offset + 1)"] == bad["skipped_bytes"]?.int, "rest of \(file)@\(offset) skipped")
        }
        for bad in separators {
            let file = bad["file"]?.string ?? "?", offset = bad["offset"]?.int ?? -1, count = bad["skipped_bytes"]?.int ?? -1
            #expect(skippedAt["\(file)@\(offset)"] == count, "junk at \(file)@\(offset)")
            #expect(junkBefore["\(file)@\(offset + count)"] == count, "record after the junk at \(file)@\(offset)")
        }
    }
}
