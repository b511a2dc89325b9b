/// Errors thrown by `TelemetryCompression`. Every case names the file; offsets are in bytes, 0-based.
public enum CompressionError: Error, Equatable, CustomStringConvertible {
    /// `open`/`read`/`write` failed with `errno`.
    case io(path: String, operation: String, errno: Int32, message: String)
    /// The compressed data ends before the end of its stream: the file was cut short.
    /// `compressedOffset` is the file size read; `uncompressedOffset` is how much decompressed cleanly.
    case truncated(path: String, format: CompressionFormat, compressedOffset: Int, uncompressedOffset: Int)
    /// The compressed data is damaged at or before `compressedOffset` (the decoder's code and message).
    case corrupt(path: String, format: CompressionFormat, compressedOffset: Int, uncompressedOffset: Int, code: Int32, message: String)
    /// The decoder or encoder could not be set up (out of memory, unsupported options).
    case codecSetup(path: String, format: CompressionFormat, code: Int32, message: String)

    public var description: String {
        switch self {
        case let .io(path, operation, errno, message): "\(path): \(operation) failed: \(message) (errno \(errno))"
        case let .truncated(path, format, compressed, uncompressed):
            "\(path): truncated \(format) data: the stream ends early at compressed byte \(compressed) (\(uncompressed) bytes decompressed)"
        case let .corrupt(path, format, compressed, uncompressed, code, message):
            "\(path): corrupt \(format) data near compressed byte \(compressed) (after \(uncompressed) decompressed bytes): \(message) (code \(code))"
        case let .codecSetup(path, format, code, message): "\(path): cannot set up the \(format) codec: \(message) (code \(code))"
        }
    }

    /// True for damage in the data (truncated or corrupt), as opposed to I/O or setup failures.
    public var isDamage: Bool {
        switch self {
        case .truncated, .corrupt: true
        default: false
        }
    }
}

extension CompressionError {
    /// The `code` of the `.corrupt` error `Gzip.inflate` throws when the data inflates past its output limit.
    /// Not a zlib or liblzma code (those are small integers), so it cannot be confused with one.
    public static let outputLimitExceededCode: Int32 = 0x4C49_4D54   // "LIMT"

    /// The error for data that inflates to more than `limit` bytes (`spec/payloads.md` §10.4 `max_uncompressed`;
    /// hazards BR-06): a `.corrupt` error with `outputLimitExceededCode`, `uncompressedOffset` = `limit` + 1 (where
    /// inflating stopped) and `compressedOffset` = input bytes consumed by then. `isDamage` is true: a body over the
    /// limit is `corrupted_data`.
    /// - Note: a `.corrupt` case rather than a case of its own so that existing exhaustive `switch`es over
    ///   `CompressionError` keep compiling; match it with `exceededOutputLimit`.
    public static func tooLarge(path: String, format: CompressionFormat, limit: Int, compressedOffset: Int) -> CompressionError {
        .corrupt(path: path, format: format, compressedOffset: compressedOffset, uncompressedOffset: limit + 1,
                 code: outputLimitExceededCode, message: "uncompressed size exceeds \(limit)")
    }

    /// The output limit in bytes when this error says the data inflates past it (see `tooLarge`); nil otherwise.
    public var exceededOutputLimit: Int? {
        if case let .corrupt(_, _, _, uncompressed, code, _) = self, code == Self.outputLimitExceededCode { uncompressed - 1 } else { nil }
    }
}
