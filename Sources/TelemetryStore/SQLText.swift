import CSQLite
import Foundation

/// Facts about SQL text that need no store, for line-oriented input (the REPL and `telemetry run`).
public enum SQLText {
    /// True when `sql` ends with a complete statement: a `;` that is not inside a string, a quoted identifier, a
    /// comment or a `CREATE TRIGGER` body, followed by nothing but whitespace and comments (`sqlite3_complete`).
    /// The shell reads lines until this holds, showing its continuation prompt meanwhile.
    /// - Complexity: O(length of `sql`); copies it once into a C string.
    public static func isComplete(_ sql: String) -> Bool {
        sqlite3_complete(sql) != 0
    }
}

extension Store {
    /// A statement that SQLite refused, with where it pointed.
    ///
    /// Thrown by `forEachStatement(_:parameters:_:)`. The description holds SQLite's message and the statement,
    /// never bound parameter values.
    public struct QueryError: Error, Equatable, CustomStringConvertible {
        /// SQLite's extended result code (`SQLITE_INTERRUPT` after `Connection.interrupt()`).
        public var code: Int32
        /// SQLite's message, e.g. `near "FORM": syntax error`.
        public var message: String
        /// The failing statement, trimmed; when SQLite could not parse it, the rest of the text from its start.
        public var statement: String
        /// UTF-8 byte offset of the token SQLite blames, counted from the start of the whole text given to
        /// `forEachStatement` (not of `statement`). `nil` when SQLite names no position (most run-time errors);
        /// `sqlite3_error_offset`, SQLite ≥ 3.38.
        public var offset: Int?

        /// A failure of `statement` with SQLite's `code` and `message`, `offset` bytes into the whole text.
        public init(code: Int32, message: String, statement: String, offset: Int?) {
            (self.code, self.message, self.statement, self.offset) = (code, message, statement, offset)
        }

        /// True when the statement stopped because `Connection.interrupt()` was called (Ctrl-C).
        public var isInterrupt: Bool { code & 0xFF == SQLITE_INTERRUPT }
        /// True for `SQLITE_BUSY` / `SQLITE_LOCKED`: safe to retry.
        public var isBusy: Bool { storeError.isBusy }
        /// The same failure as a `StoreError.sqlite`.
        public var storeError: StoreError { .sqlite(code: code, message: message, sql: statement) }

        public var description: String { storeError.description + (offset.map { " (at byte \($0))" } ?? "") }
    }

    /// Prepares each statement of `sql` in turn, binds `parameters` to it by name, and passes it to `body`, which
    /// steps it. Stops at the first failure.
    ///
    /// - Parameters:
    ///   - parameters: values by parameter name without its prefix: key `day` binds `:day`, `@day` and `$day`;
    ///     key `1` binds `?1`. Parameters without a value stay NULL, as in SQLite.
    /// - Throws: `Store.QueryError` when a statement cannot be prepared or when `body` throws `StoreError.sqlite`
    ///   (a failed step, an interrupt), with the offset of the error in `sql` when SQLite reports one. Other
    ///   errors thrown by `body` pass through unchanged.
    /// - Complexity: one copy of `sql` into a C string; each statement is prepared once.
    public func forEachStatement(_ sql: String, parameters: [String: SQLValue], _ body: (Statement) throws -> Void) throws {
        let text = Array(sql.utf8)
        let cString = sql.utf8CString   // same bytes plus a NUL
        let total = text.count
        var offset = 0
        func trimmedText(_ range: Range<Int>) -> String {
            String(decoding: text[range], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        while offset < total {
            var prepared: OpaquePointer?
            var next = total
            var failure: QueryError?
            cString.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                var tail: UnsafePointer<CChar>?
                let rc = sqlite3_prepare_v2(connection.handle, base + offset, Int32(clamping: total - offset), &prepared, &tail)
                next = tail.map { $0 - base } ?? total
                if rc != SQLITE_OK {
                    let at = sqlite3_error_offset(connection.handle)
                    failure = QueryError(code: rc, message: connection.lastMessage, statement: trimmedText(offset..<total),
                                         offset: at >= 0 ? offset + Int(at) : nil)
                    if let prepared { sqlite3_finalize(prepared) }
                    prepared = nil
                }
            }
            if let failure { throw failure }
            if let prepared {
                let statement = Statement(adopting: prepared, sql: trimmedText(offset..<min(max(next, offset), total)), on: connection)
                do {
                    try statement.bind(parameters: parameters)
                    try body(statement)
                } catch let StoreError.sqlite(code, message, _) {
                    let at = sqlite3_error_offset(connection.handle)
                    throw QueryError(code: code, message: message, statement: statement.sql,
                                     offset: at >= 0 ? offset + Int(at) : nil)
                }
            }
            if next <= offset { break }
            offset = next
        }
    }
}

extension Statement {
    /// The statement's parameter names in index order (index 1 first), with their prefix (`:day`, `@day`,
    /// `$day`, `?2`); `nil` for a bare `?`.
    public var parameterNames: [String?] {
        let count = sqlite3_bind_parameter_count(handle)
        guard count > 0 else { return [] }
        return (1...count).map { index in sqlite3_bind_parameter_name(handle, index).map { String(cString: $0) } }
    }

    /// Binds every parameter whose name without its prefix character (`:`, `@`, `$`, `?`) is a key of
    /// `parameters`; the others keep their current binding (NULL for a fresh statement).
    /// - Throws: `StoreError.sqlite` when SQLite refuses a value (e.g. too big).
    public func bind(parameters: [String: SQLValue]) throws {
        guard !parameters.isEmpty else { return }
        for (position, name) in parameterNames.enumerated() {
            guard let name, let value = parameters[String(name.dropFirst())] else { continue }
            try bind(value, at: Int32(position + 1))
        }
    }

    /// Binds a typed value to the 1-based parameter `index`; SQLite copies text and blobs.
    /// - Throws: `StoreError.sqlite` when SQLite refuses the value.
    public func bind(_ value: SQLValue, at index: Int32) throws {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(handle, index)
        case let .integer(i): rc = sqlite3_bind_int64(handle, index, i)
        case let .real(d): rc = sqlite3_bind_double(handle, index, d)
        case let .text(s): rc = sqlite3_bind_text(handle, index, s, -1, csqlite_transient())
        case let .blob(bytes) where bytes.isEmpty: rc = sqlite3_bind_zeroblob(handle, index, 0)
        case let .blob(bytes):
            rc = bytes.withUnsafeBytes { raw in
                sqlite3_bind_blob(handle, index, raw.baseAddress, Int32(clamping: raw.count), csqlite_transient())
            }
        }
        guard rc == SQLITE_OK else {
            let message = sqlite3_db_handle(handle).flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "bind failed"
            throw StoreError.sqlite(code: rc, message: message, sql: sql)
        }
    }
}
