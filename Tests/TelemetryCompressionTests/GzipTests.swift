import Foundation
import Testing
import TelemetryCompression
import TelemetryCore   // RawLogReader, for gzip bodies of raw logs (TelemetryCompression depends on TelemetryCore)
import TelemetryTestSupport

/// `Gzip`: in-memory gzip for raw-log bodies (`spec/raw-log.md` §3) with the per-record inflate limit
/// (`spec/payloads.md` §10.4, hazards BR-06).
struct GzipTests {
    static let mebibyte = 1_048_576

    /// Text-like and random bytes of `count` bytes, deterministic for `seed`.
    static func sample(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(state: seed)
        let words = ["{\"histograms\":", "\"values\":{", "\"0\":", "12,", "\"sum\":", "Wikip\u{E9}dia", "}", "\n"].map { Array($0.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(count + 32)
        while out.count < count {
            if rng.next() % 4 == 0 {
                out += (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                out += words[Int(rng.next() % UInt64(words.count))]
            }
        }
        return Array(out.prefix(count))
    }

    /// The error `body` throws, as a `CompressionError` (fails the test for another type or no error).
    static func inflateError(_ bytes: [UInt8], limit: Int = mebibyte, sourceLocation: SourceLocation = #_sourceLocation) -> CompressionError? {
        do {
            let out = try Gzip.inflate(bytes, limit: limit)
            Issue.record("inflate succeeded with \(out.count) bytes", sourceLocation: sourceLocation)
            return nil
        } catch let error as CompressionError {
            return error
        } catch {
            Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    @Test func recognisesTheMagicBytes() {
        #expect(!Gzip.isGzip([UInt8]()))
        #expect(!Gzip.isGzip([0x1F] as [UInt8]), "one byte is not enough (length > 1)")
        #expect(Gzip.isGzip([0x1F, 0x8B] as [UInt8]))
        #expect(!Gzip.isGzip([0x1F, 0x8C, 0x08] as [UInt8]))
        #expect(!Gzip.isGzip(Array("{\"ver\":1}".utf8)))
        let member = Gzip.compress(Array("x".utf8))
        #expect(Gzip.isGzip(member))
        #expect(Gzip.isGzip(member[0..<2]))
        member.withUnsafeBytes { #expect(Gzip.isGzip($0)) }
    }

    @Test(arguments: [-1, 0, 1, 6, 9])
    func compressThenInflateRoundTrips(_ level: Int) throws {
        let dir = TemporaryDirectory("gzip-levels")
        for (index, size) in [0, 1, 100, 65_536, 65_537, 300_000].enumerated() {
            let plain = Self.sample(size, seed: UInt64(100 * (level + 2) + index))
            let packed = Gzip.compress(plain, level: level)
            #expect(Gzip.isGzip(packed))
            #expect(try Gzip.inflate(packed, limit: size) == plain, "level \(level), \(size) bytes")
            #expect(try packed.withUnsafeBytes { try Gzip.inflate($0, limit: Self.mebibyte) } == plain)
            #expect(Gzip.compress(plain, level: level) == packed, "deterministic output")
            // The reference tool agrees.
            try write(packed, to: dir.file("x.gz"))
            try shell("gzip -dc x.gz > x", in: dir.path)
            #expect(try contents(dir.file("x")) == plain, "gzip -dc of level \(level), \(size) bytes")
        }
    }

    @Test func inflatesWhatTheGzipToolWrites() throws {
        let dir = TemporaryDirectory("gzip-tool")
        let plain = Self.sample(200_000, seed: 7)
        try write(plain, to: dir.file("plain"))
        try shell("gzip -9 -c plain > plain.gz", in: dir.path)
        #expect(try Gzip.inflate(try contents(dir.file("plain.gz")), limit: Self.mebibyte) == plain)
        // The conformance sample file too.
        let sample = try contents(Fixtures.sharedPath("conformance/data/compress/test.txt.gz"))
        #expect(String(decoding: try Gzip.inflate(sample, limit: 1_000), as: UTF8.self)
                == "line 1\nline 2\nline 3\nanother \tline\nline 5\n")
    }

    @Test func inflatesEveryMemberOfAMultiMemberStream() throws {
        let dir = TemporaryDirectory("gzip-multi")
        let parts = [Self.sample(70_000, seed: 1), [], Self.sample(10, seed: 2), Self.sample(123_456, seed: 3)]
        try write(parts[3], to: dir.file("last"))
        try shell("gzip -c last > last.gz", in: dir.path)
        let members = parts.dropLast().map { Gzip.compress($0) } + [try contents(dir.file("last.gz"))]
        let joined = parts.reduce([], +)
        #expect(try Gzip.inflate(members.reduce([], +), limit: joined.count) == joined)
        // Zero padding between and after members is skipped, as gzip(1) and Python's gzip module do.
        let padded = members[0] + [0, 0, 0] + members[1] + members[2] + members[3] + [UInt8](repeating: 0, count: 512)
        #expect(try Gzip.inflate(padded, limit: Self.mebibyte) == joined)
        // The same stream via the file reader, for comparison.
        try write(members.reduce([], +), to: dir.file("multi.gz"))
        #expect(try decompressAll(dir.file("multi.gz")) == joined)
        // The limit counts the output of all members together.
        #expect(Self.inflateError(members.reduce([], +), limit: joined.count - 1)?.exceededOutputLimit == joined.count - 1)
    }

    @Test func truncatedMemberIsAnError() throws {
        let plain = Self.sample(50_000, seed: 9)
        let member = Gzip.compress(plain)
        for cut in [1, 2, 9, 10, 11, member.count / 2, member.count - 8, member.count - 1] {
            let error = Self.inflateError(Array(member.prefix(cut)))
            guard case let .truncated(_, format, compressedOffset, uncompressedOffset)? = error else {
                Issue.record("cut at \(cut) of \(member.count): \(String(describing: error))")
                continue
            }
            #expect(format == .gzip)
            #expect(compressedOffset == cut)
            #expect(uncompressedOffset <= plain.count)
            #expect(error?.isDamage == true)
        }
        // A complete member followed by a cut one.
        let error = Self.inflateError(member + Array(member.prefix(member.count - 4)))
        if case .truncated? = error {} else { Issue.record("second member cut short: \(String(describing: error))") }
        // Empty input is cut short before the header.
        #expect(Self.inflateError([]) == .truncated(path: "gzip data", format: .gzip, compressedOffset: 0, uncompressedOffset: 0))
        // The source label names the data in the error and its description.
        do {
            _ = try Gzip.inflate(Array(member.prefix(100)), limit: 1_000_000, source: "x.log: record at byte 42")
            Issue.record("no error")
        } catch let error as CompressionError {
            #expect("\(error)".hasPrefix("x.log: record at byte 42: truncated gzip data"), "\(error)")
        }
    }

    @Test func damagedDataIsCorrupt() throws {
        let plain = Self.sample(50_000, seed: 10)
        let member = Gzip.compress(plain)
        var badHeader = member
        badHeader[2] = 0x07   // compression method must be 8 (deflate)
        var badCRC = member
        badCRC[member.count - 6] ^= 0xFF   // CRC32 of the trailer
        var badLength = member
        badLength[member.count - 2] ^= 0x01   // ISIZE of the trailer
        let trailingGarbage = member + Array("not gzip".utf8)
        for (label, bytes) in [("header", badHeader), ("crc", badCRC), ("length", badLength), ("trailing", trailingGarbage)] {
            let error = Self.inflateError(bytes)
            guard case let .corrupt(_, format, _, _, code, message)? = error else {
                Issue.record("\(label): \(String(describing: error))")
                continue
            }
            #expect(format == .gzip, "\(label)")
            #expect(code != CompressionError.outputLimitExceededCode, "\(label)")
            #expect(error?.exceededOutputLimit == nil, "\(label)")
            #expect(!message.isEmpty, "\(label)")
        }
        // Plain JSON is not gzip.
        #expect(Self.inflateError(Array("{\"ver\":1}".utf8))?.isDamage == true)
    }

    @Test func limitIsExact() throws {
        let plain = Self.sample(100_000, seed: 11)
        let member = Gzip.compress(plain)
        #expect(try Gzip.inflate(member, limit: plain.count) == plain, "exactly at the limit is fine")
        let error = Self.inflateError(member, limit: plain.count - 1)
        #expect(error?.exceededOutputLimit == plain.count - 1)
        #expect(error?.isDamage == true, "over the limit is corrupted_data")
        if case let .corrupt(_, _, compressedOffset, _, _, _)? = error {
            #expect(compressedOffset <= member.count)
            #expect(error == .tooLarge(path: "gzip data", format: .gzip, limit: plain.count - 1, compressedOffset: compressedOffset))
        }
        #expect(error.map { "\($0)" }?.contains("uncompressed size exceeds \(plain.count - 1)") == true)
        #expect(try Gzip.inflate(member, limit: .max) == plain, "Int.max: no limit")
        #expect(try Gzip.inflate(Gzip.compress([]), limit: 0) == [])
        #expect(try Gzip.inflate(Gzip.compress([]), limit: -5) == [], "a negative limit acts as 0")
        #expect(Self.inflateError(Gzip.compress([1]), limit: -5)?.exceededOutputLimit == 0)
        #expect(Self.inflateError(Gzip.compress([0]), limit: 0)?.exceededOutputLimit == 0)
    }

    /// hazards BR-06: `head -c 100000000 /dev/zero | gzip -9` (97 KB) inflated with the 1 MiB limit stops after
    /// limit + 1 bytes: a few KB of input consumed, no 100 MB buffer, well under a second.
    @Test func gzipBombStopsAtTheLimit() throws {
        let dir = TemporaryDirectory("gzip-bomb")
        try shell("head -c 100000000 /dev/zero | gzip -9 > bomb.gz", in: dir.path)
        let bomb = try contents(dir.file("bomb.gz"))
        #expect(bomb.count < 204_800, "small enough to pass the ingest body limit")
        let clock = ContinuousClock()
        let started = clock.now
        let error = Self.inflateError(bomb, limit: Self.mebibyte)
        let elapsed = clock.now - started
        #expect(error?.exceededOutputLimit == Self.mebibyte)
        guard case let .corrupt(_, _, compressedOffset, uncompressedOffset, _, _)? = error else { return }
        #expect(uncompressedOffset == Self.mebibyte + 1)
        #expect(compressedOffset < 20_000, "stopped after \(compressedOffset) of \(bomb.count) input bytes")
        #expect(elapsed < .seconds(2), "took \(elapsed)")

        // Many small members add up the same way.
        let member = Gzip.compress([UInt8](repeating: 0, count: Self.mebibyte / 4), level: 9)
        let members = (0..<400).reduce(into: [UInt8]()) { out, _ in out += member }
        #expect(Self.inflateError(members, limit: Self.mebibyte)?.exceededOutputLimit == Self.mebibyte)

        // In a raw log the bomb is an ordinary record (97 KB is under the 200 KiB data limit); only inflating it
        // fails, and the records around it are unaffected.
        let good = Array("{\"ver\":1}".utf8)
        var log: [UInt8] = []
        for (index, body) in [Gzip.compress(good), bomb, good].enumerated() {
            RawRecord(version: .v1, timestamp: UInt64(index), path: Array("id-\(index)/idle-daily/Firefox/23.0/release/1".utf8),
                      data: body).append(to: &log)
        }
        try write(log, to: dir.file("telemetry.log.v1.host.1.2"))
        let reader = try RawLogReader(path: dir.file("telemetry.log.v1.host.1.2"))
        var outcomes: [String] = []
        try reader.forEach(record: { record in
            guard Gzip.isGzip(record.data) else { outcomes.append(String(decoding: record.data, as: UTF8.self)); return }
            do {
                outcomes.append(String(decoding: try Gzip.inflate(record.data, limit: Self.mebibyte), as: UTF8.self))
            } catch let error as CompressionError {
                outcomes.append(error.exceededOutputLimit.map { "over \($0)" } ?? "\(error)")
            }
        }, event: { Issue.record("unexpected event \($0)") })
        #expect(outcomes == ["{\"ver\":1}", "over \(Self.mebibyte)", "{\"ver\":1}"])
    }

    /// The real raw logs' gzip bodies (`spec/raw-log.md` §8).
    @Test func inflatesTheRealRawLogBodies() throws {
        var records: [RawRecord] = []
        try RawLogReader(path: Fixtures.sharedPath("datasets/real/raw-logs/telemetry1.log")).forEach(record: { records.append($0) })
        let telemetry1 = try #require(records.first)
        #expect(Gzip.isGzip(telemetry1.data))
        let body = try Gzip.inflate(telemetry1.data, limit: Self.mebibyte)
        #expect(body.count == 77_740)
        #expect(String(decoding: body.prefix(9), as: UTF8.self) == "{\"ver\":1,")
        #expect(try Gzip.inflate(telemetry1.data, limit: 77_740) == body)
        #expect(Self.inflateError(telemetry1.data, limit: 77_739)?.exceededOutputLimit == 77_739)

        records = []
        try RawLogReader(path: Fixtures.sharedPath("datasets/real/raw-logs/unicode.v1.packed")).forEach(record: { records.append($0) })
        try #require(records.count == 2)
        let inflated = try Gzip.inflate(records[0].data, limit: Self.mebibyte)
        #expect(inflated.count == 5_370)
        #expect(inflated == records[1].data + [0x0A])
        #expect(!Gzip.isGzip(records[1].data))
    }

    /// A generated raw log (shared/tools/README.md "Bad records"): every `truncated_gzip` body fails to inflate,
    /// every other gzip body inflates within the 1 MiB limit.
    @Test(.timeLimit(.minutes(5))) func generatedRawLogBodies() throws {
        let dir = TemporaryDirectory("gzip-gen")
        // The Python wrapper clears the blocked-signal mask that `Process` passes on: with SIGTERM blocked, the
        // generator's multiprocessing pool never finishes terminating its workers and the run hangs at exit.
        let unblock = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); "
            + "os.execv(sys.executable, [sys.executable] + sys.argv[1:])"
        try shell("python3 -c '\(unblock)' '\(Fixtures.sharedPath("tools/gen_pings.py"))' --pings 300 --format rawlog "
                  + "--seed 3 --bad-fraction 0.1 --log-version v2 --procs 1 --out out", in: dir.path)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("out/MANIFEST.json")))) as? [String: Any])
        let rawlog = try #require((manifest["outputs"] as? [String: Any])?["rawlog"] as? [String: Any])
        let bad = try #require(rawlog["bad_records"] as? [[String: Any]])
        var kindByUUID: [String: String] = [:]
        for entry in bad { if let uuid = entry["uuid"] as? String, let kind = entry["kind"] as? String { kindByUUID[uuid] = kind } }
        let expectedTruncated = bad.filter { $0["kind"] as? String == "truncated_gzip" }.count
        try #require(expectedTruncated > 0)

        var gzipBodies = 0, failed = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.file("out/rawlog")).sorted() {
            try RawLogReader(path: dir.file("out/rawlog/\(name)")).forEach(record: { record in
                let uuid = String(record.pathString.split(separator: "/").first ?? "")
                let kind = kindByUUID[uuid]
                guard Gzip.isGzip(record.data) else {
                    #expect(kind != "truncated_gzip", "\(uuid): a truncated_gzip body must be gzip")
                    return
                }
                gzipBodies += 1
                do {
                    let body = try Gzip.inflate(record.data, limit: Self.mebibyte, source: "\(name): record at byte \(record.offset)")
                    #expect(kind != "truncated_gzip", "\(uuid): truncated gzip inflated to \(body.count) bytes")
                    #expect(body.first == UInt8(ascii: "{") || kind == "invalid_json", "\(uuid): body is a JSON object")
                } catch let error as CompressionError {
                    failed += 1
                    #expect(kind == "truncated_gzip", "\(uuid) (\(kind ?? "good")): \(error)")
                    #expect(error.isDamage && error.exceededOutputLimit == nil, "\(uuid): \(error)")
                }
            })
        }
        #expect(failed == expectedTruncated)
        #expect(gzipBodies > 50)
    }
}

// MARK: - Conformance: compression writers

/// One case of `../shared/conformance/raw_records.json`, as the writer ops use it.
struct WriterVector: Sendable, CustomTestStringConvertible {
    let id: String
    let op: String
    let optional: Bool
    /// The case's `input` and `expected` objects, re-serialised (JSON values are not `Sendable`).
    let inputJSON: Data
    let expectedJSON: Data

    var testDescription: String { id }
    var input: [String: Any] { ((try? JSONSerialization.jsonObject(with: inputJSON)) as? [String: Any]) ?? [:] }
    var expected: [String: Any] { ((try? JSONSerialization.jsonObject(with: expectedJSON)) as? [String: Any]) ?? [:] }
}

/// The compression-writer cases of `conformance/raw_records.json` (`compressed_write`, `compressed_roundtrip`,
/// `compress_from`, `compression_levels`), mapped onto TelemetryEngine's writers: `xz` → `XZWriter`; `lzma` →
/// `XZWriter` too, since TelemetryEngine writes `.xz` and reads all three formats by their magic bytes
/// (`spec/storage.md` §3), so a `.lzma`-named file holds xz and reads back the same; `gz` → `Gzip.compress`. Files
/// are read back with `DecompressingReader` + `LineReader`.
///
/// Skipped here by op: `compression_type`, `compressed_open`, `compressed_read` (`CompressionConformanceTests`);
/// `unpack`, `unpack_file` (`RawLogConformanceTests` in TelemetryCoreTests). An op in none of these lists fails.
/// Left out, optional: `compress-write-to-read-only` (`compressed_write` on a handle opened with mode `r`): it tests
/// the mode strings of the seed's file wrapper; TelemetryEngine's readers and writers are separate types, so writing
/// to a reader cannot be written (conformance README, "Optional ops and cases").
/// The file has no `compression_levels` case; its mapping below (each level written and read back) waits for one.
struct CompressionWriterConformanceTests {
    static let file = "conformance/raw_records.json"
    static let ops: Set<String> = ["compressed_write", "compressed_roundtrip", "compress_from", "compression_levels"]
    static let opsRunElsewhere: Set<String> = ["compression_type", "compressed_open", "compressed_read", "unpack", "unpack_file"]

    static func allVectors() throws -> [WriterVector] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedPath(file)))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try #require(root["cases"] as? [[String: Any]])
        return try cases.map { c in
            WriterVector(id: c["id"] as? String ?? "?", op: c["op"] as? String ?? "?", optional: c["optional"] as? Bool ?? false,
                         inputJSON: try JSONSerialization.data(withJSONObject: c["input"] ?? [:]),
                         expectedJSON: try JSONSerialization.data(withJSONObject: c["expected"] ?? [:]))
        }
    }

    static func requiredVectors() throws -> [WriterVector] {
        try allVectors().filter { !$0.optional && !opsRunElsewhere.contains($0.op) }
    }

    @Test func everyOpIsKnown() throws {
        for vector in try Self.allVectors() {
            #expect(Self.ops.contains(vector.op) || Self.opsRunElsewhere.contains(vector.op),
                    "case \(vector.id) has an op no runner knows: \(vector.op)")
        }
        #expect(try Self.requiredVectors().map(\.id).sorted() == ["compress-from-file", "compress-roundtrip-lzma", "compress-roundtrip-xz"])
        #expect(try Self.allVectors().filter { $0.optional && Self.ops.contains($0.op) }.map(\.id) == ["compress-write-to-read-only"])
    }

    /// Writes `text` to `path` compressed as the vectors' `type` says (`level`: xz preset or gzip level).
    static func writeCompressed(_ text: [UInt8], type: String, to path: String, level: Int? = nil) throws {
        switch type {
        case "xz", "lzma":
            let writer = try XZWriter(path: path, preset: UInt32(level ?? 0))
            try text.withUnsafeBytes { try writer.write($0) }
            try writer.finish()
        case "gz":
            try write(Gzip.compress(text, level: level ?? 6), to: path)
        default:
            Issue.record("compression type '\(type)' has no writer")
        }
    }

    static func linesText(_ lines: [String]) -> [UInt8] { Array(lines.map { $0 + "\n" }.joined().utf8) }

    @Test(arguments: try CompressionWriterConformanceTests.requiredVectors())
    func runsCase(_ vector: WriterVector) throws {
        let dir = TemporaryDirectory("writer-vector")
        let input = vector.input, expected = vector.expected
        var checked: Set<String> = []
        let expectedLines = expected["lines"] as? [String]

        func readBack(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
            let outcome = try readAll(path)
            #expect(outcome.error == nil, "\(vector.id): \(String(describing: outcome.error))", sourceLocation: sourceLocation)
            #expect(outcome.format != .plain, "\(vector.id): \(path) is compressed", sourceLocation: sourceLocation)
            return outcome.texts
        }

        switch vector.op {
        case "compressed_roundtrip":
            let type = try #require(input["type"] as? String)
            let lines = try #require(input["lines"] as? [String])
            let path = dir.file("write_test.\(type)")
            try Self.writeCompressed(Self.linesText(lines), type: type, to: path)
            let read = try readBack(path)
            if let expectedLines { checked.insert("lines"); #expect(read == expectedLines, "\(vector.id)") }

        case "compress_from":
            let types = try #require(input["types"] as? [String])
            let plainLines = try #require(input["plain_lines"] as? [String])
            let removals = try #require(input["remove_original"] as? [Bool])
            let existsAfter = expected["original_exists_after"] as? [String: Bool]
            for type in types {
                for remove in removals {
                    let plain = dir.file("\(type)-\(remove)/test.txt")
                    try write(Self.linesText(plainLines), to: plain)
                    // compress_from: the plain file's bytes, compressed beside it; the original removed on request.
                    try Self.writeCompressed(try contents(plain), type: type, to: plain + ".\(type)")
                    if remove { try FileManager.default.removeItem(atPath: plain) }
                    let read = try readBack(plain + ".\(type)")
                    if let expectedLines { checked.insert("lines"); #expect(read == expectedLines, "\(vector.id) \(type) remove=\(remove)") }
                    if let want = existsAfter?[String(remove)] {
                        checked.insert("original_exists_after")
                        #expect(FileManager.default.fileExists(atPath: plain) == want, "\(vector.id) \(type) remove=\(remove)")
                    }
                }
            }

        case "compressed_write":
            // Only a write to a handle opened for writing maps onto the product (see the type's comment).
            let path = dir.file(try #require(input["path"] as? String))
            #expect(input["mode"] as? String == "w", "\(vector.id): mode \(String(describing: input["mode"]))")
            let content = try #require(input["content"] as? String)
            let name = path.split(separator: "/").last.map(String.init) ?? path
            let type = name.split(separator: ".").count > 1 ? String(name.split(separator: ".").last ?? "xz") : "xz"
            try Self.writeCompressed(Array(content.utf8), type: type, to: path)
            let read = try readBack(path)
            if let expectedLines { checked.insert("lines"); #expect(read == expectedLines, "\(vector.id)") }

        case "compression_levels":
            let type = try #require(input["type"] as? String)
            let levels = try #require(input["levels"] as? [Int])
            let lines = try #require(input["lines"] as? [String])
            for level in levels {
                let path = dir.file("levels_\(level).\(type)")
                try Self.writeCompressed(Self.linesText(lines), type: type, to: path, level: level)
                let read = try readBack(path)
                if let expectedLines { checked.insert("lines"); #expect(read == expectedLines, "\(vector.id) level \(level)") }
            }

        default:
            Issue.record("case \(vector.id): op '\(vector.op)' is not mapped to the compression writers")
            return
        }
        let unchecked = Set(expected.keys).subtracting(checked)
        #expect(unchecked.isEmpty, "\(vector.id): expected keys not evaluated: \(unchecked.sorted())")
        #expect(!checked.isEmpty)
    }

    /// No vector covers levels yet: every gzip level and a few xz presets write what the readers read back.
    @Test func everyLevelReadsBack() throws {
        let dir = TemporaryDirectory("writer-levels")
        let text = Self.linesText(sampleLines(count: 2_000, seed: 77))
        var sizes: [Int: Int] = [:]
        for level in 0...9 {
            let path = dir.file("l\(level).gz")
            try Self.writeCompressed(text, type: "gz", to: path, level: level)
            #expect(try decompressAll(path) == text, "gzip level \(level)")
            sizes[level] = try contents(path).count
        }
        #expect(sizes[0, default: 0] > text.count, "level 0 stores")
        #expect(sizes[9, default: .max] < sizes[1, default: 0], "level 9 compresses better than level 1")
        for preset in [0, 1, 6, 9] {
            let path = dir.file("p\(preset).xz")
            try Self.writeCompressed(text, type: "xz", to: path, level: preset)
            #expect(try decompressAll(path) == text, "xz preset \(preset)")
        }
    }
}
