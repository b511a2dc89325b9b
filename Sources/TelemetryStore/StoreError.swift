import CSQLite

/// Errors thrown by `TelemetryStore`. Descriptions never include bound parameter values or ping contents.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    /// SQLite returned `code` (an extended result code) while running `sql`.
    case sqlite(code: Int32, message: String, sql: String?)
    /// No store at `path` (for commands that need an existing one).
    case missingStore(path: String)
    /// The store was built with another schema than the one asked for.
    case schemaMismatch(path: String, storeFields: [String], requestedFields: [String])
    /// The store file is from a newer or unknown TelemetryEngine layout.
    case unsupportedStoreVersion(path: String, version: Int)
    /// An input path does not exist.
    case inputNotFound(path: String)
    /// The operation was interrupted (Ctrl-C).
    case interrupted

    public var description: String {
        switch self {
        case let .sqlite(code, message, sql):
            "SQLite error \(code) (\(String(cString: sqlite3_errstr(code)))): \(message)"
                + (sql.map { " — while executing: \($0)" } ?? "")
        case let .missingStore(path): "\(path): no store here (create one with 'telemetry import PATH --store \(path)')"
        case let .schemaMismatch(path, store, requested):
            "\(path): the store was built with the schema [\(store.joined(separator: ", "))], not [\(requested.joined(separator: ", "))]; use another --store"
        case let .unsupportedStoreVersion(path, version): "\(path): store layout version \(version) is not supported by this telemetry"
        case let .inputNotFound(path): "\(path): no such file or directory"
        case .interrupted: "interrupted"
        }
    }

    /// True for `SQLITE_BUSY` / `SQLITE_LOCKED` and their extended codes: safe to retry.
    public var isBusy: Bool {
        if case let .sqlite(code, _, _) = self { return code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED }
        return false
    }
}
