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
