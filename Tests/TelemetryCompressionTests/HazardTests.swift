import Foundation
import Testing
import TelemetryCompression
import TelemetryTestSupport

/// Reader-layer hazards of `../shared/hazards.md`: BR-07 (concatenated streams) and the line-framing part of
/// BR-09 (what `LineReader` hands on; splitting at the first tab is the importer's job).
struct HazardTests {
    /// A fixture built by a shell pipeline with the `xz` / `gzip` CLIs, and what reading it must give.
    struct ConcatenationVector: Sendable, CustomTestStringConvertible {
        let name: String
        let script: String
        let lines: [String]
        /// nil: a clean end; otherwise the damage must be `.corrupt` after `lines`.
        let corruptAfterLines: Bool
        let format: CompressionFormat
        var testDescription: String { name }
    }

    static let a = #"printf 'id-a\t{"ver":2}\n'"#
    static let b = #"printf 'id-b\t{"ver":2}\n'"#
    static let twoLines = ["id-a\t{\"ver\":2}", "id-b\t{\"ver\":2}"]

    static let concatenations: [ConcatenationVector] = [
        // The three inputs of BR-07, verbatim.
        .init(name: "multi.xz", script: "(\(a) | xz; \(b) | xz) > multi.xz", lines: twoLines, corruptAfterLines: false, format: .xz),
        .init(name: "padded.xz", script: "(\(a) | xz; head -c 4 /dev/zero; \(b) | xz) > padded.xz",
              lines: twoLines, corruptAfterLines: false, format: .xz),
        .init(name: "multi.gz", script: "(\(a) | gzip; \(b) | gzip) > multi.gz", lines: twoLines, corruptAfterLines: false, format: .gzip),
        // The same kind of fault, other shapes.
        .init(name: "padded-8-and-trailing-4.xz", script: "(\(a) | xz; head -c 8 /dev/zero; \(b) | xz; head -c 4 /dev/zero) > p.xz",
              lines: twoLines, corruptAfterLines: false, format: .xz),
        .init(name: "mixed-checks-and-presets.xz",
              script: "(\(a) | xz -9 --check=crc32; \(b) | xz -1 --check=sha256; printf '' | xz --check=none) > m.xz",
              lines: twoLines, corruptAfterLines: false, format: .xz),
        .init(name: "five-streams.xz", script: "for i in 1 2 3 4 5; do printf 'id-%s\\t{}\\n' $i | xz; done > five.xz",
              lines: (1...5).map { "id-\($0)\t{}" }, corruptAfterLines: false, format: .xz),
        .init(name: "empty-member-between.gz", script: "(\(a) | gzip; printf '' | gzip; \(b) | gzip -9) > e.gz",
              lines: twoLines, corruptAfterLines: false, format: .gzip),
        .init(name: "five-members.gz", script: "for i in 1 2 3 4 5; do printf 'id-%s\\t{}\\n' $i | gzip; done > five.gz",
              lines: (1...5).map { "id-\($0)\t{}" }, corruptAfterLines: false, format: .gzip),
        .init(name: "line-split-across-members.gz", script: "(printf 'id-a\\t{\"ve' | gzip; printf 'r\":2}\\nid-b\\t{\"ver\":2}\\n' | gzip) > s.gz",
              lines: twoLines, corruptAfterLines: false, format: .gzip),
        .init(name: "line-split-across-streams.xz", script: "(printf 'id-a\\t{\"ve' | xz; printf 'r\":2}\\nid-b\\t{\"ver\":2}\\n' | xz) > s.xz",
              lines: twoLines, corruptAfterLines: false, format: .xz),
        // Stream padding must be a multiple of 4 bytes (xz file format §2.2): 3 bytes is damage after id-a.
        .init(name: "padded-3.xz", script: "(\(a) | xz; head -c 3 /dev/zero; \(b) | xz) > bad.xz",
              lines: ["id-a\t{\"ver\":2}"], corruptAfterLines: true, format: .xz),
        .init(name: "trailing-padding-3.xz", script: "(\(a) | xz; \(b) | xz; head -c 3 /dev/zero) > bad.xz",
              lines: twoLines, corruptAfterLines: true, format: .xz),
    ]

    @Test(arguments: concatenations)
    func readsEveryConcatenatedStream(_ vector: ConcatenationVector) throws {
        let dir = TemporaryDirectory("br07")
        try shell(vector.script, in: dir.path)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        let path = dir.path + "/" + (try #require(files.first))
        let outcome = try readAll(path)
        #expect(outcome.format == vector.format)
        #expect(outcome.texts == vector.lines)
        #expect(outcome.lines.map(\.number) == Array(1...vector.lines.count))
        if vector.corruptAfterLines {
            let error = try #require(outcome.compressionError, "expected damage, got \(String(describing: outcome.error))")
            #expect(error.isCorrupt, "\(error)")
            #expect(error.isDamage)
            #expect(error.path == path)
            #expect(error.uncompressedOffset == vector.lines.reduce(0) { $0 + $1.utf8.count + 1 })
        } else {
            #expect(outcome.error == nil, "\(String(describing: outcome.error))")
            #expect(outcome.returnedCount == vector.lines.count)
        }
    }

    /// Streams larger than the reader's 256 KiB input block, so a stream boundary and the padding fall inside a
    /// block rather than at its start.
    @Test(arguments: [0, 4, 12])
    func readsLargeConcatenatedStreams(_ padding: Int) throws {
        let dir = TemporaryDirectory("br07-large")
        let first = sampleLines(count: 6_000, seed: 11, maxPad: 240)
        let second = sampleLines(count: 4_000, seed: 12, maxPad: 240)
        let a = try writeXZ(first, to: dir.file("a.xz"))
        let b = try writeXZ(second, to: dir.file("b.xz"))
        let aBytes = try contents(a)
        #expect(aBytes.count > 256 * 1024, "the first stream must span more than one input block")
        let joined = dir.file("joined.xz")
        try write(aBytes + [UInt8](repeating: 0, count: padding) + (try contents(b)), to: joined)
        let outcome = try readAll(joined)
        #expect(outcome.error == nil, "\(String(describing: outcome.error))")
        #expect(outcome.lines.count == first.count + second.count)
        expectSameLines(outcome.texts, first + second)
    }

    // MARK: BR-09 line framing

    static let br09Bytes: [UInt8] = Array((
        "0fdac909-d2ec-454c-b625-261a3e5d5c9b\t{\"ver\":2,\"n\":1}\n"
            + "abc\t{\"ver\":2,\"n\":2}\n"
            + "6fd3eb50-8bec-4b9c-8778-59406171312a\t{\"ver\":2,\"n\":3}\r\n"
            + "no-tab-here {\"ver\":2,\"n\":4}\n"
    ).utf8)

    /// Writes `bytes` as a plain file, or through the `xz` / `gzip` CLI, and returns the path.
    static func fixture(_ bytes: [UInt8], compressor: String, in dir: TemporaryDirectory) throws -> String {
        let plain = dir.file("data.txt")
        try write(bytes, to: plain)
        switch compressor {
        case "plain": return plain
        case "xz": try shell("xz -c data.txt > data.txt.xz", in: dir.path); return plain + ".xz"
        case "gzip": try shell("gzip -c data.txt > data.txt.gz", in: dir.path); return plain + ".gz"
        case "lzma": try shell("xz -c --format=lzma data.txt > data.txt.lzma", in: dir.path); return plain + ".lzma"
        default: preconditionFailure("unknown compressor \(compressor)")
        }
    }

    static let compressors = ["plain", "xz", "gzip", "lzma"]

    @Test(arguments: compressors)
    func br09LinesSplitOnLFWithCRStripped(_ compressor: String) throws {
        let dir = TemporaryDirectory("br09")
        let outcome = try readAll(try Self.fixture(Self.br09Bytes, compressor: compressor, in: dir))
        #expect(outcome.error == nil)
        #expect(outcome.texts == [
            "0fdac909-d2ec-454c-b625-261a3e5d5c9b\t{\"ver\":2,\"n\":1}",
            "abc\t{\"ver\":2,\"n\":2}",
            "6fd3eb50-8bec-4b9c-8778-59406171312a\t{\"ver\":2,\"n\":3}",     // the \r is gone
            "no-tab-here {\"ver\":2,\"n\":4}",                              // delivered; the importer counts "no tab"
        ])
        #expect(outcome.lines.map(\.number) == [1, 2, 3, 4])
        #expect(outcome.lines.map(\.offset) == [0, 53, 73, 127])
        #expect(outcome.lines.map(\.length) == [52, 19, 52, 27])
        #expect(outcome.returnedCount == 4)
    }

    struct FramingVector: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        /// (number, offset, text) of each delivered line.
        let lines: [Expected]
        struct Expected: Sendable, Equatable {
            let number: Int
            let offset: Int
            let text: String
        }
        var testDescription: String { name }
    }

    static let framings: [FramingVector] = [
        .init(name: "NUL ends a record", bytes: Array("id-1\t{}\u{0}id-2\t{}\n".utf8),
              lines: [.init(number: 1, offset: 0, text: "id-1\t{}"), .init(number: 2, offset: 8, text: "id-2\t{}")]),
        .init(name: "NUL then LF", bytes: Array("id-1\t{}\u{0}\nid-2\t{}\u{0}".utf8),
              lines: [.init(number: 1, offset: 0, text: "id-1\t{}"), .init(number: 3, offset: 9, text: "id-2\t{}")]),
        .init(name: "runs of NUL", bytes: Array("\u{0}\u{0}a\u{0}\u{0}\u{0}b".utf8),
              lines: [.init(number: 3, offset: 2, text: "a"), .init(number: 6, offset: 6, text: "b")]),
        .init(name: "empty lines skipped, numbers kept",
              bytes: Array("\n\nid-1\t{}\n\n\r\n\nid-2\t{}\n\n".utf8),
              lines: [.init(number: 3, offset: 2, text: "id-1\t{}"), .init(number: 7, offset: 14, text: "id-2\t{}")]),
        .init(name: "only one trailing CR stripped; inner CR kept", bytes: Array("a\rb\r\nx\r\r\n".utf8),
              lines: [.init(number: 1, offset: 0, text: "a\rb"), .init(number: 2, offset: 5, text: "x\r")]),
        .init(name: "CR-only line is empty", bytes: Array("\r\na\n\r".utf8), lines: [.init(number: 2, offset: 2, text: "a")]),
        .init(name: "last line without LF", bytes: Array("a\nlast".utf8),
              lines: [.init(number: 1, offset: 0, text: "a"), .init(number: 2, offset: 2, text: "last")]),
        .init(name: "last line without LF but with CR", bytes: Array("a\nlast\r".utf8),
              lines: [.init(number: 1, offset: 0, text: "a"), .init(number: 2, offset: 2, text: "last")]),
        .init(name: "bare CR is not a terminator", bytes: Array("a\rb\rc".utf8), lines: [.init(number: 1, offset: 0, text: "a\rb\rc")]),
        .init(name: "only terminators", bytes: Array("\n\r\n\u{0}\n".utf8), lines: []),
        .init(name: "UTF-8 and invalid bytes pass through", bytes: Array("Wikip\u{E9}dia\n".utf8) + [0xFF, 0xFE, 0x0A],
              lines: [.init(number: 1, offset: 0, text: "Wikip\u{E9}dia"), .init(number: 2, offset: 11, text: "\u{FFFD}\u{FFFD}")]),
    ]

    @Test(arguments: framings, compressors)
    func lineFraming(_ vector: FramingVector, _ compressor: String) throws {
        let dir = TemporaryDirectory("framing")
        let outcome = try readAll(try Self.fixture(vector.bytes, compressor: compressor, in: dir))
        #expect(outcome.error == nil, "\(String(describing: outcome.error))")
        #expect(outcome.lines.map { FramingVector.Expected(number: $0.number, offset: $0.offset, text: $0.text) } == vector.lines)
        #expect(outcome.returnedCount == vector.lines.count)
        #expect(outcome.lines.allSatisfy { $0.length == $0.bytes.count && !$0.isTooLong })
    }

    @Test func invalidUTF8BytesAreDeliveredUnchanged() throws {
        let dir = TemporaryDirectory("framing-bytes")
        let line: [UInt8] = Array("id-2\t{\"adapterDescription\":\"GeForce ".utf8) + [0xFF, 0xFE] + Array("\"}".utf8)
        let path = try Self.fixture(line + [0x0A], compressor: "xz", in: dir)
        let outcome = try readAll(path)
        #expect(outcome.lines.map(\.bytes) == [line])
    }
}
