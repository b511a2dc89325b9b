import Foundation
import Testing
import TelemetryCompression
import TelemetryTestSupport

/// `XZWriter` writes what `DecompressingReader` and the `xz` tool read back (`spec/storage.md` §3: `.xz`, CRC64).
struct XZWriterTests {
    @Test(arguments: [0, 1, 6])
    func roundTripsLines(_ preset: Int) throws {
        let dir = TemporaryDirectory("xzwriter")
        let path = dir.file("out.v2.log.0123456789abcdef0123456789abcdef.xz")
        let lines = sampleLines(count: 5_000, seed: UInt64(preset) + 100) + ["last\t{\"unicode\":\"Wikip\u{E9}dia\"}"]
        let writer = try XZWriter(path: path, preset: UInt32(preset))
        var expectedBytes = 0
        for (index, line) in lines.enumerated() {
            if index % 2 == 0 {
                try writer.write(line + "\n")                                   // String
            } else {
                try Array((line + "\n").utf8).withUnsafeBytes { try writer.write($0) }   // raw bytes
            }
            expectedBytes += line.utf8.count + 1
        }
        try writer.write("")                                                    // empty writes are no-ops
        try [UInt8]().withUnsafeBytes { try writer.write($0) }
        try writer.finish(sync: true)
        try writer.finish()                                                     // a second finish does nothing
        let fileBytes = try contents(path)
        #expect(writer.uncompressedBytes == expectedBytes)
        #expect(writer.compressedBytes == fileBytes.count)
        #expect(Array(fileBytes.prefix(6)) == [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00])
        #expect(fileBytes[7] == 0x04, "stream flags: check type CRC64")
        #expect(Array(fileBytes.suffix(2)) == [0x59, 0x5A], "stream footer magic 'YZ'")

        let outcome = try readAll(path)
        #expect(outcome.format == .xz)
        #expect(outcome.error == nil)
        expectSameLines(outcome.texts, lines)
        #expect(outcome.lines.last?.bytes == Array(lines.last!.utf8))

        // The reference tool agrees, byte for byte.
        try shell("xz -t out.*.xz && xz -dc out.*.xz > roundtrip.txt", in: dir.path)
        #expect(try contents(dir.file("roundtrip.txt")) == Array(lines.map { $0 + "\n" }.joined().utf8))
    }

    @Test func emptyWriterGivesAValidEmptyStream() throws {
        let dir = TemporaryDirectory("xzwriter-empty")
        let path = dir.file("empty.xz")
        let writer = try XZWriter(path: path)
        try writer.finish()
        #expect(writer.uncompressedBytes == 0)
        #expect(writer.compressedBytes == 32, "an empty xz stream is header + index + footer")
        let outcome = try readAll(path)
        #expect(outcome.error == nil)
        #expect(outcome.format == .xz)
        #expect(outcome.lines.isEmpty)
        try shell("xz -t empty.xz", in: dir.path)
    }

    /// The type's documented contract: a writer dropped without `finish()` leaves a file readers report as truncated.
    @Test func unfinishedFileReadsAsTruncated() throws {
        let dir = TemporaryDirectory("xzwriter-unfinished")
        let path = dir.file("unfinished.xz")
        do {
            let writer = try XZWriter(path: path)
            for line in sampleLines(count: 2_000, seed: 9) { try writer.write(line + "\n") }
        }
        let outcome = try readAll(path)
        let error = try #require(outcome.compressionError)
        #expect(error.isTruncated, "\(error)")
        #expect(error.path == path)
        expectSameLines(outcome.texts, Array(sampleLines(count: 2_000, seed: 9).prefix(outcome.lines.count)))
    }

    @Test func writerReportsUnwritablePath() throws {
        let dir = TemporaryDirectory("xzwriter-io")
        let path = dir.path + "/missing-directory/out.xz"
        let error = try #require(throws: CompressionError.self) { try XZWriter(path: path) }
        guard case let .io(errorPath, operation, errno, _) = error else {
            Issue.record("expected .io, got \(error)")
            return
        }
        #expect(errorPath == path)
        #expect(operation == "open")
        #expect(errno == ENOENT)
    }
}
