import Foundation
import Testing
import TelemetryCompression
import TelemetryTestSupport

/// A line as `LineReader` delivered it, copied out of the callback.
struct ReadLine: Equatable, CustomStringConvertible {
    var number: Int
    var offset: Int
    var bytes: [UInt8]
    var length: Int
    var isTooLong: Bool

    var text: String { String(decoding: bytes, as: UTF8.self) }
    var description: String { "#\(number)@\(offset)\(isTooLong ? " too long" : "") \(length)B \(text.prefix(60).debugDescription)" }
}

/// Everything one pass over a file gives: the lines delivered, then the error that ended it (if any).
struct ReadOutcome {
    var format: CompressionFormat
    var lines: [ReadLine]
    var returnedCount: Int?
    var error: (any Error)?

    var texts: [String] { lines.map(\.text) }
    var compressionError: CompressionError? { error as? CompressionError }
}

/// Opens `path` with `DecompressingReader`, splits it with `LineReader`, and collects lines and the final error.
func readAll(_ path: String, maxLineBytes: Int = LineReader.defaultMaxLineBytes) throws -> ReadOutcome {
    let reader = try DecompressingReader(path: path)
    var outcome = ReadOutcome(format: reader.format, lines: [], returnedCount: nil, error: nil)
    do {
        outcome.returnedCount = try LineReader(source: reader, maxLineBytes: maxLineBytes).forEachLine { line in
            outcome.lines.append(ReadLine(number: line.number, offset: line.offset, bytes: Array(line.bytes),
                                          length: line.length, isTooLong: line.isTooLong))
        }
    } catch {
        outcome.error = error
    }
    return outcome
}

/// Reads all decompressed bytes of `path` with `DecompressingReader` alone (no line splitting).
func decompressAll(_ path: String, blockBytes: Int = 64 * 1024) throws -> [UInt8] {
    let reader = try DecompressingReader(path: path)
    var out: [UInt8] = []
    let block = UnsafeMutableRawBufferPointer.allocate(byteCount: blockBytes, alignment: 16)
    defer { block.deallocate() }
    while true {
        let n = try reader.read(into: block)
        if n == 0 { return out }
        out.append(contentsOf: block[0..<n])
    }
}

extension CompressionError {
    /// The file the error names.
    var path: String {
        switch self {
        case let .io(path, _, _, _), let .truncated(path, _, _, _), let .corrupt(path, _, _, _, _, _),
             let .codecSetup(path, _, _, _): path
        }
    }
    var isTruncated: Bool { if case .truncated = self { true } else { false } }
    var isCorrupt: Bool { if case .corrupt = self { true } else { false } }
    /// Decompressed bytes delivered before the damage.
    var uncompressedOffset: Int? {
        switch self {
        case let .truncated(_, _, _, offset), let .corrupt(_, _, _, offset, _, _): offset
        default: nil
        }
    }
}

/// Runs a shell pipeline (for fixtures built with the `xz` and `gzip` CLIs) in `directory`; fails on a non-zero exit.
/// Uses `TelemetryTestSupport.runProcess` (posix_spawn with a clean signal mask, output to files).
func shell(_ script: String, in directory: String) throws {
    let result = try runProcess("/bin/sh", ["-c", "set -e; " + script], currentDirectory: directory)
    try #require(result.status == 0, "sh -c \(script) failed: \(result.stderr)")
}

/// The bytes of a file.
func contents(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

/// Writes `bytes` to `path` (replacing it).
func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

/// Deterministic pseudo-random numbers (fixtures must not change between runs).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` storage-style lines `<id>\t{"n":<i>,"pad":"<hex>"}` of varied length, deterministic for `seed`.
func sampleLines(count: Int, seed: UInt64 = 1, maxPad: Int = 200) -> [String] {
    var rng = SplitMix64(state: seed)
    let hex = Array("0123456789abcdef")
    return (0..<count).map { i in
        let pad = String((0..<Int.random(in: 0...maxPad, using: &rng)).map { _ in hex.randomElement(using: &rng)! })
        return String(format: "%08x-0000-4000-8000-%012x", i, i) + "\t{\"n\":\(i),\"pad\":\"\(pad)\"}"
    }
}

/// Writes `lines` (each followed by LF) with `XZWriter` and returns the path.
@discardableResult
func writeXZ(_ lines: [String], to path: String, preset: UInt32 = 0) throws -> String {
    let writer = try XZWriter(path: path, preset: preset)
    for line in lines { try writer.write(line + "\n") }
    try writer.finish()
    return path
}

/// `actual == expected` for long line lists, failing with the counts and the first difference instead of both lists.
func expectSameLines(_ actual: [String], _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual != expected else { return }
    let first = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(actual.count, expected.count)
    func show(_ lines: [String]) -> String { lines.indices.contains(first) ? String(lines[first].prefix(80)).debugDescription : "<none>" }
    let message = "lines differ: \(actual.count) read, \(expected.count) expected; first difference at index \(first): "
        + "\(show(actual)) vs \(show(expected))"
    Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
}
