import CSQLite
import Foundation

/// One SQLite connection (`sqlite3*`).
/// - Important: Not `Sendable`. Use it, and every `Statement` made on it, from one thread or actor at a time.
public final class Connection {
    let handle: OpaquePointer
    public let path: String

    /// Opens (creating when `create`) the database at `path`.
    /// - Throws: `StoreError.sqlite` with SQLite's message.
    /// - Parameter immutable: open read-only as an immutable file (`?immutable=1`): no `-shm`/`-wal` needed or
    ///   read, no locks; for a store in a directory this user cannot write, where nobody else writes either.
    public init(path: String, create: Bool = true, readOnly: Bool = false, immutable: Bool = false) throws {
        var db: OpaquePointer?
        var flags = readOnly || immutable ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        if create && !readOnly && !immutable { flags |= SQLITE_OPEN_CREATE }
        flags |= SQLITE_OPEN_NOMUTEX
        var name = path
        if immutable {
            flags |= SQLITE_OPEN_URI
            let escaped = path.utf8.map { byte -> String in
                let c = Character(UnicodeScalar(byte))
                return byte < 0x80 && (c.isLetter || c.isNumber || "/-._~".contains(c)) ? String(c) : String(format: "%%%02X", byte)
            }.joined()
            name = "file:" + escaped + "?immutable=1"
        }
        let rc = sqlite3_open_v2(name, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            throw StoreError.sqlite(code: rc, message: message, sql: nil)
        }
        handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5000)
    }

    deinit { sqlite3_close_v2(handle) }

    var lastMessage: String { String(cString: sqlite3_errmsg(handle)) }

    /// Runs one or more SQL statements that return no rows.
    /// - Throws: `StoreError.sqlite`.
    public func execute(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? lastMessage
            sqlite3_free(error)
            throw StoreError.sqlite(code: rc, message: message, sql: sql)
        }
    }

    /// Prepares `sql` (one statement).
    public func prepare(_ sql: String) throws -> Statement { try Statement(sql, on: self) }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`; rolls back when it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Rowid of the last insert on this connection.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    /// Rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Asks a running statement on this connection to stop (safe from any thread, e.g. a SIGINT handler).
    public func interrupt() { sqlite3_interrupt(handle) }

    /// First column of the first row of `sql`, as text.
    public func scalarText(_ sql: String) throws -> String? {
        let statement = try prepare(sql)
        guard try statement.step() else { return nil }
        return statement.columnText(0)
    }

    /// First column of the first row of `sql`, as an integer.
    public func scalarInt(_ sql: String) throws -> Int64? {
        let statement = try prepare(sql)
        guard try statement.step() else { return nil }
        return statement.isNull(0) ? nil : statement.columnInt64(0)
    }
}

/// A prepared statement, reused across rows.
/// - Important: Not `Sendable`. Create, step and drop it on the thread that owns its `Connection`.
public final class Statement {
    public let sql: String
    let handle: OpaquePointer
    private let connection: Connection

    /// - Throws: `StoreError.sqlite` with SQLite's message and this SQL text.
    init(_ sql: String, on connection: Connection) throws {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(connection.handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw StoreError.sqlite(code: rc, message: connection.lastMessage, sql: sql)
        }
        (self.sql, self.handle, self.connection) = (sql, stmt, connection)
    }

    /// Wraps a statement prepared elsewhere (multi-statement scripts).
    init(adopting handle: OpaquePointer, sql: String, on connection: Connection) {
        (self.sql, self.handle, self.connection) = (sql, handle, connection)
    }

    deinit { sqlite3_finalize(handle) }

    private func check(_ rc: Int32) throws {
        guard rc == SQLITE_OK else { throw StoreError.sqlite(code: rc, message: connection.lastMessage, sql: sql) }
    }

    /// Binds text to the 1-based parameter `index`; SQLite copies the bytes.
    public func bind(_ value: String?, at index: Int32) throws {
        guard let value else { return try check(sqlite3_bind_null(handle, index)) }
        try check(sqlite3_bind_text(handle, index, value, -1, csqlite_transient()))
    }

    /// Binds UTF-8 bytes as text; SQLite copies them.
    public func bindText(_ bytes: UnsafeRawBufferPointer, at index: Int32) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return try bind("", at: index) }
        try check(sqlite3_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), csqlite_transient()))
    }

    /// Binds UTF-8 bytes as text without copying: `bytes` must stay valid until the next `step`/`reset`.
    public func bindTextNoCopy(_ bytes: UnsafeRawBufferPointer, at index: Int32) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return try bind("", at: index) }
        try check(sqlite3_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), csqlite_static()))
    }

    public func bind(_ value: Int64?, at index: Int32) throws {
        guard let value else { return try check(sqlite3_bind_null(handle, index)) }
        try check(sqlite3_bind_int64(handle, index, value))
    }

    public func bind(_ value: Int?, at index: Int32) throws { try bind(value.map(Int64.init), at: index) }

    public func bind(_ value: Double?, at index: Int32) throws {
        guard let value else { return try check(sqlite3_bind_null(handle, index)) }
        try check(sqlite3_bind_double(handle, index, value))
    }

    public func bindNull(at index: Int32) throws { try check(sqlite3_bind_null(handle, index)) }

    /// Steps once. Returns true when a row is available.
    /// - Throws: `StoreError.sqlite` (with this SQL) on an error, including an interrupt.
    @discardableResult
    public func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw StoreError.sqlite(code: rc, message: connection.lastMessage, sql: sql)
    }

    /// Resets the statement and clears its bindings for the next use.
    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public var columnCount: Int32 { sqlite3_column_count(handle) }
    public func columnName(_ index: Int32) -> String { sqlite3_column_name(handle, index).map { String(cString: $0) } ?? "" }
    public func columnType(_ index: Int32) -> Int32 { sqlite3_column_type(handle, index) }
    public func isNull(_ index: Int32) -> Bool { sqlite3_column_type(handle, index) == SQLITE_NULL }
    public func columnInt64(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }
    public func columnDouble(_ index: Int32) -> Double { sqlite3_column_double(handle, index) }
    public func columnText(_ index: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, index) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeRawBufferPointer(start: text, count: count), as: UTF8.self)
    }
    public func columnBlob(_ index: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let blob = sqlite3_column_blob(handle, index) else { return [] }
        return Array(UnsafeRawBufferPointer(start: blob, count: count))
    }

    /// The current row's column value, typed.
    public func value(_ index: Int32) -> SQLValue {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: .integer(columnInt64(index))
        case SQLITE_FLOAT: .real(columnDouble(index))
        case SQLITE_TEXT: .text(columnText(index) ?? "")
        case SQLITE_BLOB: .blob(columnBlob(index))
        default: .null
        }
    }

    /// True when the statement only reads (does not change the database).
    public var isReadOnly: Bool { sqlite3_stmt_readonly(handle) != 0 }
}

/// A SQL value as SQLite returns it.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}
