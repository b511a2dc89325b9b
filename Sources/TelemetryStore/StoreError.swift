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
    /// Another writer (`holder`: "the import by pid N") held the store's writer lock for all of `waitedSeconds`.
    case writerBusy(path: String, holder: String, waitedSeconds: Double)
    /// The writer lock file `path` (`<store>.lock`) could not be opened or locked.
    case lockFailed(path: String, reason: String)
    /// `path` exists but is not a TelemetryEngine store (empty, or not an SQLite database): never written to.
    case notAStore(path: String, reason: String)
    /// SQLite failed on the store at `path` with an environment error (`code`: busy, disk full, I/O error,
    /// read-only, damaged): `StoreError.sqlite` translated once with the store's path (`naming(store:)`).
    case storeFailed(path: String, code: Int32, message: String)
    /// A file beside the store (column file, ping index, lock file) or an output file could not be written:
    /// `reason` is the system's (e.g. "No space left on device").
    case writeFailed(path: String, reason: String)

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
        case let .writerBusy(path, holder, waited):
            "\(path): \(holder) is still writing this store" + (waited > 0 ? " after \(Int(waited)) s of waiting" : "")
                + "; one writer at a time (try again later, or give --wait SECONDS)"
        case let .lockFailed(path, reason): "\(path): cannot take the store's writer lock: \(reason)"
        case let .notAStore(path, reason): "\(path): not a telemetry store (\(reason)); nothing was written to it"
        case let .storeFailed(path, code, message):
            switch code & 0xFF {
            case SQLITE_BUSY, SQLITE_LOCKED:
                "\(path): the store is busy: another process holds a lock on it (\(message)); try again when it is done"
            case SQLITE_FULL:
                "\(path): the disk is full (\(message)); what was committed is kept: free space and run the command again"
            case SQLITE_IOERR:
                "\(path): I/O error on the store (\(message), SQLite error \(code)); what was committed is kept"
            case SQLITE_READONLY:
                "\(path): the store cannot be written (\(message)): a read-only file or directory"
            case SQLITE_CANTOPEN:
                "\(path): cannot open the store (\(message))"
            case SQLITE_CORRUPT, SQLITE_NOTADB:
                "\(path): the store is damaged (\(message)); 'telemetry check --store \(path)' says what is wrong"
            default:
                "\(path): SQLite error \(code) (\(String(cString: sqlite3_errstr(code)))): \(message)"
            }
        case let .writeFailed(path, reason): "\(path): write failed: \(reason)"
        }
    }

    /// This error with the store's path, when it is an environment failure of SQLite (busy, full, I/O,
    /// read-only, can't open, damaged): what a user sees instead of a raw "database is locked". Other errors
    /// (a SQL syntax error, a constraint) are returned as they are.
    public func naming(store path: String) -> StoreError {
        guard case let .sqlite(code, message, _) = self else { return self }
        switch code & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_NOTADB:
            return .storeFailed(path: path, code: code, message: message)
        default:
            return self
        }
    }

    /// True for `SQLITE_BUSY` / `SQLITE_LOCKED` and their extended codes: safe to retry.
    public var isBusy: Bool {
        switch self {
        case let .sqlite(code, _, _), let .storeFailed(_, code, _): return code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED
        case .writerBusy: return true
        default: return false
        }
    }
}
