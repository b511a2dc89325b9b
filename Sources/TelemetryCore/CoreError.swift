/// Errors thrown by `TelemetryCore`: schema and filter documents, storage-layout paths.
public enum CoreError: Error, Equatable, CustomStringConvertible {
    /// No file at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read.
    case unreadableFile(path: String, detail: String)
    /// A schema or filter file that is not JSON.
    case schemaNotJSON(path: String, detail: String)
    /// A schema or filter with the wrong structure.
    case invalidSchema(path: String, reason: String)
    /// A dimension name the schema does not define.
    case unknownDimension(name: String, known: [String])
    /// A stored-file path outside the base directory.
    case notUnderBase(path: String, base: String)
    /// A stored-file path that does not follow the storage layout.
    case unparsableStoragePath(path: String, reason: String)
    /// A write refused because its path would leave the output root (`StorageLayout.directory(_:inside:create:)`);
    /// convert counts the record `invalid_path`.
    case invalidPath(path: String, root: String, reason: String)
    /// A file-system call on an output path failed (`operation` is the call, e.g. `mkdir`).
    case io(path: String, operation: String, message: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path): "\(path): no such file"
        case let .unreadableFile(path, detail): "\(path): cannot read: \(detail)"
        case let .schemaNotJSON(path, detail): "\(path): not a JSON document: \(detail)"
        case let .invalidSchema(path, reason): "\(path): invalid schema: \(reason)"
        case let .unknownDimension(name, known): "unknown dimension '\(name)' (the schema has: \(known.joined(separator: ", ")))"
        case let .notUnderBase(path, base): "file '\(path)' is not under base dir '\(base)'"
        case let .unparsableStoragePath(path, reason): "\(path): not a storage-layout path: \(reason)"
        case let .invalidPath(path, root, reason): "\(path): write refused, not inside the output root '\(root)': \(reason)"
        case let .io(path, operation, message): "\(path): \(operation) failed: \(message)"
        }
    }
}
