import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TelemetryCompression
import TelemetryTestSupport

/// Damaged, empty, unterminated and oversized inputs: every complete line before the damage is delivered, then a
/// `CompressionError` naming the file (`CompressionError.isDamage` for truncated or corrupt data).
struct DamageTests {
    static let lines = sampleLines(count: 3_000, seed: 5, maxPad: 200)
    static let text = lines.map { $0 + "\n" }.joined()

    /// Suffix and CLI command of each compressed format.
    static let formats: [(suffix: String, command: String, format: CompressionFormat)] = [
        (".xz", "xz -c", .xz), (".lzma", "xz -c --format=lzma", .lzmaAlone), (".gz", "gzip -c", .gzip),
    ]

    /// Compresses `Self.text` with the format's CLI and returns the compressed bytes.
    static func compressed(_ suffix: String, in dir: TemporaryDirectory) throws -> [UInt8] {
        let command = try #require(formats.first { $0.suffix == suffix }).command
        try write(Array(text.utf8), to: dir.file("all.txt"))
        try shell("\(command) all.txt > all.txt\(suffix)", in: dir.path)
        return try contents(dir.file("all.txt\(suffix)"))
    }

    /// How many of `lines` end (LF included) within the first `bytes` decompressed bytes.
    static func completeLines(within bytes: Int) -> Int {
        var end = 0
        for (index, line) in lines.enumerated() {
            end += line.utf8.count + 1
            if end > bytes { return index }
        }
        return lines.count
    }

    enum Cut: Sendable, CustomTestStringConvertible {
        case keep(Int)
        case fraction(Double)
        case dropLast(Int)

        func length(of size: Int) -> Int {
            switch self {
            case let .keep(n): n
            case let .fraction(f): Int(Double(size) * f)
            case let .dropLast(n): size - n
            }
        }
        var testDescription: String {
            switch self {
            case let .keep(n): "first \(n) bytes"
            case let .fraction(f): "\(Int(f * 100))%"
            case let .dropLast(n): "all but the last \(n) bytes"
            }
        }
    }

    @Test(arguments: [".xz", ".lzma", ".gz"], [Cut.keep(1), .keep(20), .fraction(0.25), .fraction(0.5), .fraction(0.9), .dropLast(1)])
    func truncatedFileDeliversCompleteLinesThenDamage(_ suffix: String, _ cut: Cut) throws {
        let dir = TemporaryDirectory("truncated")
        let whole = try Self.compressed(suffix, in: dir)
        let path = dir.file("cut\(suffix)")
        try write(Array(whole.prefix(cut.length(of: whole.count))), to: path)

        let outcome = try readAll(path)
        let error = try #require(outcome.compressionError, "a cut file must end in an error, got \(String(describing: outcome.error))")
        #expect(error.isDamage, "\(error)")
        #expect(error.isTruncated || error.isCorrupt)
        #expect(error.path == path)
        #expect("\(error)".hasPrefix(path + ": "))
        // Exactly the complete lines decoded before the damage, unchanged; never a cut-off fragment.
        let decoded = try #require(error.uncompressedOffset)
        let complete = Self.completeLines(within: decoded)
        expectSameLines(outcome.texts, Array(Self.lines.prefix(complete)))
        #expect(outcome.lines.count < Self.lines.count || cut.length(of: whole.count) == whole.count - 1)
        if case .fraction(let f) = cut, f >= 0.5 { #expect(outcome.lines.count > 0, "half a file holds complete lines") }
    }

    /// The seed's compressors end streams cleanly; a file cut anywhere else is reported as truncated, not as
    /// corrupt data (so an operator knows to look for an interrupted copy).
    @Test(arguments: [".xz", ".lzma", ".gz"])
    func cutInTheMiddleIsTruncated(_ suffix: String) throws {
        let dir = TemporaryDirectory("truncated-kind")
        let whole = try Self.compressed(suffix, in: dir)
        let path = dir.file("half\(suffix)")
        try write(Array(whole.prefix(whole.count / 2)), to: path)
        let outcome = try readAll(path)
        let error = try #require(outcome.compressionError)
        guard case let .truncated(errorPath, format, compressedOffset, uncompressedOffset) = error else {
            Issue.record("expected .truncated, got \(error)")
            return
        }
        #expect(errorPath == path)
        #expect(format == (Self.formats.first { $0.suffix == suffix }?.format))
        #expect(compressedOffset == whole.count / 2)
        #expect(uncompressedOffset > 0)
        #expect(uncompressedOffset < Self.text.utf8.count)
    }

    /// Garbage written over the middle of a file: the lines before it are delivered, then `.corrupt`.
    @Test(arguments: [".xz", ".gz"])
    func garbageInTheMiddleIsCorrupt(_ suffix: String) throws {
        let dir = TemporaryDirectory("garbage")
        var bytes = try Self.compressed(suffix, in: dir)
        let middle = bytes.count / 2
        for index in middle..<(middle + 64) { bytes[index] = UInt8(truncatingIfNeeded: index &* 131 &+ 7) ^ 0x5A }
        let path = dir.file("garbage\(suffix)")
        try write(bytes, to: path)

        let outcome = try readAll(path)
        let error = try #require(outcome.compressionError, "damaged data must end in an error, got \(String(describing: outcome.error))")
        #expect(error.isCorrupt, "\(error)")
        #expect(error.isDamage)
        #expect(error.path == path)
        // The lines in front of the damage come through unchanged. (What the decoder made of the garbage before it
        // noticed may follow: the check is only known at the end of the block.)
        let intact = zip(outcome.texts, Self.lines).prefix { $0 == $1 }.count
        #expect(intact > 0)
        #expect(intact < Self.lines.count)
    }

    /// LZMA-alone holds one stream: bytes after its end marker are damage, reported after the stream's lines.
    @Test func trailingBytesAfterAnLZMAStreamAreCorrupt() throws {
        let dir = TemporaryDirectory("lzma-trailing")
        let bytes = try Self.compressed(".lzma", in: dir) + Array("garbage".utf8)
        let path = dir.file("trailing.lzma")
        try write(bytes, to: path)
        let outcome = try readAll(path)
        expectSameLines(outcome.texts, Self.lines)
        let error = try #require(outcome.compressionError)
        #expect(error.isCorrupt, "\(error)")
        #expect(error.path == path)
        #expect(error.uncompressedOffset == Self.text.utf8.count)
    }

    // MARK: empty and unterminated

    /// A 0-byte file with a compressed suffix holds no stream at all: reported as truncated (as `xz -t` and
    /// `gzip -t` fail on it; `XZWriter` leaves such a file when it dies before its first block), 0 lines.
    @Test(arguments: [(".xz", CompressionFormat.xz), (".lzma", .lzmaAlone), (".gz", .gzip)])
    func emptyCompressedFileIsTruncated(_ suffix: String, _ format: CompressionFormat) throws {
        let dir = TemporaryDirectory("empty")
        let path = try dir.write("empty.v2.log\(suffix)", [])
        let outcome = try readAll(path)
        #expect(outcome.format == format)
        #expect(outcome.lines.isEmpty)
        #expect(outcome.compressionError == .truncated(path: path, format: format, compressedOffset: 0, uncompressedOffset: 0))
    }

    @Test(arguments: ["empty", "empty.v2.log", "empty.txt"])
    func emptyFileWithoutCompressedSuffixHasNoLines(_ name: String) throws {
        let dir = TemporaryDirectory("empty-plain")
        let path = try dir.write(name, [])
        let outcome = try readAll(path)
        #expect(outcome.format == .plain)
        #expect(outcome.error == nil)
        #expect(outcome.lines.isEmpty)
        #expect(outcome.returnedCount == 0)
        let reader = try DecompressingReader(path: path)
        #expect(reader.fileSize == 0)
        #expect(try decompressAll(path).isEmpty)
    }

    @Test func plainLastLineWithoutNewlineIsDelivered() throws {
        let dir = TemporaryDirectory("unterminated")
        let path = try dir.write("plain.log", text: "id-1\t{\"a\":1}\nid-2\t{\"a\":2}")
        let outcome = try readAll(path)
        #expect(outcome.error == nil)
        #expect(outcome.texts == ["id-1\t{\"a\":1}", "id-2\t{\"a\":2}"])
        #expect(outcome.lines.map(\.offset) == [0, 13])
        #expect(outcome.lines.map(\.number) == [1, 2])
    }

    /// An unterminated last line longer than the 1 MiB read buffer.
    @Test func longUnterminatedLastLineIsDelivered() throws {
        let dir = TemporaryDirectory("unterminated-long")
        let long = [UInt8](repeating: UInt8(ascii: "q"), count: 3 << 20)
        let path = try dir.write("plain.log", Array("first\n".utf8) + long)
        let outcome = try readAll(path)
        #expect(outcome.error == nil)
        #expect(outcome.lines.count == 2)
        #expect(outcome.lines.last?.bytes == long)
        #expect(outcome.lines.last?.offset == 6)
        #expect(outcome.lines.last?.isTooLong == false)
    }

    // MARK: over-long lines

    /// A 50 MB line with the default 16 MiB limit: reported as too long with its full length; the lines around it
    /// are intact. (That it is never held in memory at once is not checked here.)
    @Test(arguments: ["plain", "xz"])
    func fiftyMegabyteLineIsTooLong(_ encoding: String) throws {
        let dir = TemporaryDirectory("long-line")
        let longLength = 50_000_000
        let head = Array("before\t{\"n\":1}\n".utf8)
        let tail = Array("after\t{\"n\":3}\n".utf8)
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1_000_000)
        let path: String
        if encoding == "xz" {
            path = dir.file("long.xz")
            let writer = try XZWriter(path: path)
            try head.withUnsafeBytes { try writer.write($0) }
            for _ in 0..<(longLength / chunk.count) { try chunk.withUnsafeBytes { try writer.write($0) } }
            try ([0x0A] + tail).withUnsafeBytes { try writer.write($0) }
            try writer.finish()
        } else {
            path = dir.file("long.log")
            // POSIX writes (FileHandle.write traps on EINTR, which the tests' child processes can cause).
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            try #require(fd >= 0)
            defer { close(fd) }
            func append(_ bytes: [UInt8]) throws {
                try bytes.withUnsafeBytes { buffer in
                    var done = 0
                    while done < buffer.count {
                        let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                        if n < 0 && errno == EINTR { continue }
                        try #require(n > 0, "write failed: errno \(errno)")
                        done += n
                    }
                }
            }
            try append(head)
            for _ in 0..<(longLength / chunk.count) { try append(chunk) }
            try append([0x0A] + tail)
        }
        let outcome = try readAll(path, maxLineBytes: 16 << 20)
        #expect(outcome.error == nil)
        #expect(outcome.lines.count == 3)
        #expect(outcome.returnedCount == 3)
        guard outcome.lines.count == 3 else { return }
        #expect(outcome.lines[0] == ReadLine(number: 1, offset: 0, bytes: Array(head.dropLast()), length: head.count - 1, isTooLong: false))
        #expect(outcome.lines[1] == ReadLine(number: 2, offset: head.count, bytes: [], length: longLength, isTooLong: true))
        #expect(outcome.lines[2] == ReadLine(number: 3, offset: head.count + longLength + 1, bytes: Array(tail.dropLast()),
                                             length: tail.count - 1, isTooLong: false))
    }

    /// The limit is exact: `maxLineBytes` bytes are a line, one more is too long, wherever the line sits in the
    /// reader's buffer (also when the whole file fits in it).
    @Test(arguments: [1_000, 4_096, 70_000, 2 << 20])
    func maxLineBytesIsExact(_ limit: Int) throws {
        let dir = TemporaryDirectory("limit")
        let atLimit = [UInt8](repeating: UInt8(ascii: "a"), count: limit)
        let overLimit = [UInt8](repeating: UInt8(ascii: "b"), count: limit + 1)
        let farOver = [UInt8](repeating: UInt8(ascii: "c"), count: limit * 3 + 17)
        let bytes = atLimit + [0x0A] + overLimit + [0x0A] + Array("ok\n".utf8) + farOver + [0x00] + atLimit + [0x0D, 0x0A] + overLimit
        let path = try dir.write("limit.log", bytes)
        let outcome = try readAll(path, maxLineBytes: limit)
        #expect(outcome.error == nil)
        let expected: [(number: Int, offset: Int, length: Int, tooLong: Bool)] = [
            (1, 0, limit, false),
            (2, limit + 1, limit + 1, true),
            (3, 2 * limit + 3, 2, false),
            (4, 2 * limit + 6, limit * 3 + 17, true),                       // ended by NUL
            (5, 5 * limit + 24, limit, false),                               // CR stripped, so exactly the limit
            (6, 6 * limit + 26, limit + 1, true),                            // unterminated at EOF
        ]
        #expect(outcome.lines.count == expected.count)
        for (line, want) in zip(outcome.lines, expected) {
            #expect(line.number == want.number)
            #expect(line.offset == want.offset, "line \(want.number)")
            #expect(line.length == want.length, "line \(want.number)")
            #expect(line.isTooLong == want.tooLong, "line \(want.number)")
            #expect(line.bytes.count == (want.tooLong ? 0 : want.length), "line \(want.number)")
        }
    }

    // MARK: many lines across buffer boundaries

    /// 20,000 lines of random length 1…5000 (about 50 MB) cross the 1 MiB line buffer and the 256 KiB input block
    /// many times; every line comes back exactly, with its number and byte offset.
    @Test(arguments: ["plain", "xz", "gzip"])
    func manyLinesAcrossBufferBoundaries(_ encoding: String) throws {
        var rng = SplitMix64(state: 2024)
        // Printable bytes without LF, CR or NUL; lines are slices of a pool so compression stays fast.
        let pool: [UInt8] = (0..<(32 * 1024)).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
        var content: [UInt8] = []
        content.reserveCapacity(51 << 20)
        var spans: [(offset: Int, length: Int)] = []
        spans.reserveCapacity(20_000)
        for _ in 0..<20_000 {
            let length = Int.random(in: 1...5_000, using: &rng)
            let start = Int.random(in: 0...(pool.count - length), using: &rng)
            spans.append((content.count, length))
            content.append(contentsOf: pool[start..<(start + length)])
            content.append(0x0A)
        }
        let dir = TemporaryDirectory("many-lines")
        let plain = try dir.write("lines.log", content)
        let path: String
        switch encoding {
        case "xz":
            path = dir.file("lines.log.xz")
            let writer = try XZWriter(path: path)
            try content.withUnsafeBytes { try writer.write($0) }
            try writer.finish()
        case "gzip":
            try shell("gzip -1 -c lines.log > lines.log.gz", in: dir.path)
            path = plain + ".gz"
        default:
            path = plain
        }

        let reader = try DecompressingReader(path: path)
        var count = 0
        var mismatches: [String] = []
        let delivered = try content.withUnsafeBytes { whole in
            try LineReader(source: reader).forEachLine { line in
                defer { count += 1 }
                guard count < spans.count else { mismatches.append("extra line \(line.number)"); return }
                let span = spans[count]
                if line.number != count + 1 || line.offset != span.offset || line.length != span.length || line.isTooLong
                    || line.bytes.count != span.length
                    || memcmp(line.bytes.baseAddress!, whole.baseAddress! + span.offset, span.length) != 0 {
                    if mismatches.count < 5 { mismatches.append("line \(count + 1): #\(line.number)@\(line.offset) \(line.length)B") }
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
        #expect(count == 20_000)
        #expect(delivered == 20_000)
        #expect(reader.uncompressedOffset == content.count)
        #expect(reader.compressedOffset == reader.fileSize)
    }

    // MARK: I/O errors

    @Test func missingFileIsAnIOErrorNamingThePath() throws {
        let dir = TemporaryDirectory("missing")
        let path = dir.path + "/no-such-file.xz"
        #expect(throws: CompressionError.io(path: path, operation: "open", errno: ENOENT, message: String(cString: strerror(ENOENT)))) {
            try DecompressingReader(path: path)
        }
    }

    @Test func directoryIsAnIOErrorNamingThePath() throws {
        let dir = TemporaryDirectory("directory")
        let error = try #require(throws: CompressionError.self) { try DecompressingReader(path: dir.path) }
        #expect(error == .io(path: dir.path, operation: "read", errno: EISDIR, message: String(cString: strerror(EISDIR))))
        #expect(!error.isDamage)
    }
}
