import CSQLite
import Foundation
import TelemetryCore

/// The local store: one SQLite file in WAL mode (docs/store.md).
///
/// Tables: `pings` (one row per storage-format record: document id, one indexed column per schema
/// dimension, typed `info` columns, the payload JSON as received), `source_files` (what was imported from
/// where: size, mtime, CRC-64 content hash, counts, status), `import_errors` (bad lines and file damage with
/// file, line, byte offset, reason), `store_meta` (layout version, schema, `ping_generation`: a change counter
/// of `pings` kept by triggers, which tells derived files such as the `PingIndex` whether they are current). Views: `pings_dedup`
/// (one row per document id and ping type), `duplicate_documents`.
///
/// - Important: Not `Sendable`: owns its `Connection`. Use one `Store` per thread.
public final class Store {
    /// Layout version written to `store_meta`; bumped when the tables change shape.
    public static let layoutVersion = 1
    /// Default store path when neither `--store` nor `TELEMETRY_STORE` is given.
    public static let defaultPath = "telemetry.db"

    /// A typed column filled from the ping's top-level `info` object.
    public struct InfoColumn: Sendable, Equatable {
        /// SQL column name.
        public let name: String
        /// Field name inside `info`.
        public let field: String
        /// SQL type: `TEXT` or `INTEGER`.
        public let sqlType: String
    }

    /// Typed `info` columns, chosen from what real pings carry and analysts group by most.
    /// A column whose name equals a dimension's is left out (the dimension column holds that field).
    public static let infoColumns: [InfoColumn] = [
        InfoColumn(name: "os", field: "OS", sqlType: "TEXT"),
        InfoColumn(name: "os_version", field: "version", sqlType: "TEXT"),
        InfoColumn(name: "arch", field: "arch", sqlType: "TEXT"),
        InfoColumn(name: "locale", field: "locale", sqlType: "TEXT"),
        InfoColumn(name: "memsize", field: "memsize", sqlType: "INTEGER"),
        InfoColumn(name: "cpucount", field: "cpucount", sqlType: "INTEGER"),
        InfoColumn(name: "revision", field: "revision", sqlType: "TEXT"),
        InfoColumn(name: "update_channel", field: "appUpdateChannel", sqlType: "TEXT"),
    ]

    public let path: String
    public let connection: Connection
    /// The dimension schema the store was built with.
    public let schema: DimensionSchema
    /// Info columns present in this store (those not shadowed by a dimension).
    public let activeInfoColumns: [InfoColumn]
    /// True when opened read-only (column files are then checked, never repaired).
    public let isReadOnly: Bool
    /// The histogram SQL functions' state (docs/sql.md); set once `init` has registered them.
    private var histogramSQL: HistogramSQLContext?

    /// How long a writer waits for another writer's lock by default, in seconds (`--wait SECONDS`).
    public static let defaultWriterWaitSeconds = 300.0
    /// Seconds a write operation on this store waits for another writer's lock before failing with
    /// `StoreError.writerBusy` (0: fail at once).
    public var writerWaitSeconds: Double
    /// Called once when a write operation starts waiting for another writer, with a message naming it
    /// ("waiting for the import by pid N to finish with …"); for standard error.
    public var onWriterWait: ((String) -> Void)?
    /// The writer lock while this store holds it, and how many nested write operations hold it.
    private var writerLock: WriterLock?
    private var writerLockDepth = 0

    /// Opens an existing store, or creates one when `create` is true.
    ///
    /// A new store is built beside its path (`<store>.creating`, schema and setup rows in one transaction) and
    /// renamed into place under the writer lock, so a kill at any moment leaves no store or a complete one. An
    /// existing file is opened only if it is an SQLite database (never written to otherwise). Read-only opening
    /// never writes the file; when SQLite cannot open it read-only in place (no `-shm` and a directory this user
    /// cannot write), it is opened as an immutable file.
    /// - Parameters:
    ///   - schema: for a new store, the schema to build it with (default: the seed schema); for an existing one,
    ///     must match the schema it was built with (`nil` accepts whatever it has).
    ///   - writerWaitSeconds, onWriterWait: as the properties of the same names; they apply to the creation too.
    /// - Throws: `StoreError.missingStore` (no file and `create` false), `.notAStore` (a file that is not an SQLite
    ///   database), `.schemaMismatch`, `.unsupportedStoreVersion`, `.writerBusy`, `.storeFailed` (SQLite's
    ///   environment errors, naming the path), `.sqlite`.
    public init(path: String, create: Bool, schema requested: DimensionSchema? = nil, readOnly: Bool = false,
                writerWaitSeconds: Double = Store.defaultWriterWaitSeconds, onWriterWait: ((String) -> Void)? = nil) throws {
        self.path = path
        self.writerWaitSeconds = writerWaitSeconds
        self.onWriterWait = onWriterWait
        isReadOnly = readOnly
        var exists = try Self.checkIsStore(path: path)
        if !exists {
            guard create && !readOnly else { throw StoreError.missingStore(path: path) }
            let schema = requested ?? .seed
            try Self.validate(schema: schema)
            do {
                try Self.createAtomically(path: path, schema: schema, waitSeconds: writerWaitSeconds, waiting: onWriterWait)
            } catch let error as StoreError { throw error.naming(store: path) }
            exists = true
        }
        do {
            connection = try Self.openConnection(path: path, readOnly: readOnly)
            if !readOnly {
                try connection.execute("PRAGMA journal_mode=WAL")
                try connection.execute("PRAGMA synchronous=NORMAL")
            }
            // Temporary b-trees (GROUP BY, ORDER BY, DISTINCT on big rows) spill to files in $SQLITE_TMPDIR or
            // $TMPDIR (else /var/tmp, /tmp) rather than holding every payload in RAM (docs/store.md "Memory").
            try connection.execute("PRAGMA foreign_keys=OFF; PRAGMA temp_store=FILE")
            let hasMeta = try connection.scalarInt("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='store_meta'") ?? 0
            guard hasMeta > 0 else { throw StoreError.notAStore(path: path, reason: "an SQLite database without the store's tables") }
            let version = Int(try connection.scalarText("SELECT value FROM store_meta WHERE key='layout_version'") ?? "0") ?? 0
            guard version == Self.layoutVersion else { throw StoreError.unsupportedStoreVersion(path: path, version: version) }
            let text = try connection.scalarText("SELECT value FROM store_meta WHERE key='schema'") ?? ""
            let stored = try DimensionSchema(json: Data(text.utf8), source: "\(path) (store_meta.schema)")
            if let requested, requested != stored {
                throw StoreError.schemaMismatch(path: path, storeFields: stored.fieldNames, requestedFields: requested.fieldNames)
            }
            schema = stored
            let dimensionNames = Set(schema.fieldNames.map { $0.lowercased() })
            activeInfoColumns = Self.infoColumns.filter { !dimensionNames.contains($0.name.lowercased()) }
            if !readOnly, try connection.scalarInt(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'pings\\_%' ESCAPE '\\'") ?? 0 < 4 {
                try withWriterLock("upgrade") { try Self.addGenerationTriggers(connection) }
            }
            if !readOnly { try addMissingIndexes(); try refreshViews() }
        } catch let error as StoreError { throw error.naming(store: path) }
        let histogramSQL = HistogramSQLContext(store: self)
        try histogramSQL.register(on: connection)
        self.histogramSQL = histogramSQL
    }

    /// True when `path` exists and begins with the SQLite header; false when there is no file.
    /// - Throws: `StoreError.notAStore` for an empty file, a directory or any other file (never opened by SQLite,
    ///   so never written to).
    static func checkIsStore(path: String) throws -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return false }
            throw StoreError.storeFailed(path: path, code: SQLITE_CANTOPEN, message: String(cString: strerror(errno)))
        }
        guard info.st_mode & S_IFMT == S_IFREG else { throw StoreError.notAStore(path: path, reason: "not a regular file") }
        guard info.st_size > 0 else { throw StoreError.notAStore(path: path, reason: "an empty file") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StoreError.storeFailed(path: path, code: SQLITE_CANTOPEN, message: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 16)
        guard pread(fd, &header, 16, 0) == 16, header == Array("SQLite format 3\0".utf8) else {
            throw StoreError.notAStore(path: path, reason: "not an SQLite database")
        }
        return true
    }

    /// Opens the connection; read-only falls back to an immutable opening when SQLite cannot set up its shared
    /// memory (`-shm`) for a store in a directory this user cannot write.
    private static func openConnection(path: String, readOnly: Bool) throws -> Connection {
        let connection = try Connection(path: path, create: false, readOnly: readOnly)
        guard readOnly else { return connection }
        do {
            _ = try connection.scalarInt("SELECT count(*) FROM sqlite_master")
            return connection
        } catch let StoreError.sqlite(code, _, _) where code & 0xFF == SQLITE_CANTOPEN || code & 0xFF == SQLITE_READONLY {
            return try Connection(path: path, create: false, readOnly: true, immutable: true)
        }
    }

    /// Builds a new store at `<path>.creating` (tables, indexes, views and setup rows in one transaction) and
    /// renames it to `path`, under the writer lock; a leftover of a killed creation is removed first. Returns
    /// without doing anything when another process created the store meanwhile.
    private static func createAtomically(path: String, schema: DimensionSchema, waitSeconds: Double,
                                         waiting: ((String) -> Void)?) throws {
        let lock = try WriterLock(storePath: path, operation: "store creation", waitSeconds: waitSeconds, waiting: waiting)
        defer { withExtendedLifetime(lock) {} }
        if try checkIsStore(path: path) { return }
        let building = path + ".creating"
        for suffix in ["", "-journal", "-wal", "-shm"] { unlink(building + suffix) }
        do {
            let c = try Connection(path: building, create: true)
            try c.execute("PRAGMA journal_mode=DELETE")
            try createTables(c, schema: schema)
            try c.execute("PRAGMA journal_mode=WAL")
        }
        let fd = open(building, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
        guard rename(building, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(building)
            throw StoreError.writeFailed(path: path, reason: reason)
        }
        let directory = open((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent,
                             O_RDONLY | O_CLOEXEC)
        if directory >= 0 { _ = fsync(directory); close(directory) }
    }

    /// Runs `body` holding the store's writer lock (`<store>.lock`, docs/store.md "One writer at a time"); nested
    /// calls share the outer one's lock. Every operation that writes the store, its column files or its ping
    /// index runs inside one: import, reindex, column rebuild, user SQL that writes.
    /// - Parameter operation: what the lock is for, shown to a writer that waits ("import", "reindex").
    /// - Throws: `StoreError.writerBusy` when another writer keeps the lock for `writerWaitSeconds`;
    ///   `.storeFailed` (read-only store); what `body` throws, SQLite's environment errors naming the store.
    public func withWriterLock<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        if writerLock == nil {
            guard !isReadOnly else {
                throw StoreError.storeFailed(path: path, code: SQLITE_READONLY, message: "opened read-only for \(operation)")
            }
            writerLock = try WriterLock(storePath: path, operation: operation, waitSeconds: writerWaitSeconds, waiting: onWriterWait)
        }
        writerLockDepth += 1
        defer {
            writerLockDepth -= 1
            if writerLockDepth == 0 { writerLock = nil }
        }
        do { return try body() } catch let error as StoreError { throw error.naming(store: path) }
    }

    /// True when this process may write the store at `path` and its directory (for the `-wal`, `-shm` and lock
    /// files): read-only commands open the store read-only otherwise.
    public static func isWritable(path: String) -> Bool {
        let directory = (path as NSString).deletingLastPathComponent
        return access(path, W_OK) == 0 && access(directory.isEmpty ? "." : directory, W_OK) == 0
    }

    /// True while this store holds the writer lock.
    public var holdsWriterLock: Bool { writerLock != nil }

    /// Drops the mapped histogram columns the SQL functions use; they are mapped again on next use.
    /// Called after column files change (import, reindex).
    public func histogramColumnsChanged() { histogramSQL?.invalidate() }

    /// Drops the SQL functions' histogram definitions (bucket lower bounds); they are loaded again, from the
    /// histogram cache `store_meta` then remembers, on next use. Called by `rememberHistogramCache`.
    func histogramDefinitionsChanged() { histogramSQL?.invalidateDefinitions() }

    /// The distinct reasons `histogram_summary` reported no bounds for (docs/sql.md), in the order first met
    /// since the last call, which clears them; for a warning after a query. Not ping contents: reasons name
    /// histograms, revision URLs and cache paths.
    public func takeHistogramBoundsWarnings() -> [String] { histogramSQL?.takeBoundsWarnings() ?? [] }

    /// Quotes an identifier for SQL.
    public static func quote(_ identifier: String) -> String { "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    private static let reservedColumns: Set<String> = ["ping_id", "file_id", "line", "document_id", "payload"]

    static func validate(schema: DimensionSchema) throws {
        var seen = Set<String>()
        for name in schema.fieldNames {
            let lower = name.lowercased()
            guard !reservedColumns.contains(lower), seen.insert(lower).inserted else {
                throw CoreError.invalidSchema(path: "schema", reason: "dimension name '\(name)' is repeated or reserved by the store")
            }
        }
    }

    private static func createTables(_ c: Connection, schema: DimensionSchema) throws {
        let dimensionNames = Set(schema.fieldNames.map { $0.lowercased() })
        let info = infoColumns.filter { !dimensionNames.contains($0.name.lowercased()) }
        let dimColumns = schema.fieldNames.map { "\(quote($0)) TEXT NOT NULL" }
        let infoDDL = info.map { "\(quote($0.name)) \($0.sqlType)" }
        var sql = """
        BEGIN;
        CREATE TABLE store_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE source_files(
            file_id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            base TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            content_hash TEXT,
            format TEXT,
            status TEXT NOT NULL,
            record_count INTEGER NOT NULL DEFAULT 0,
            bad_line_count INTEGER NOT NULL DEFAULT 0,
            warning_count INTEGER NOT NULL DEFAULT 0,
            uncompressed_bytes INTEGER NOT NULL DEFAULT 0,
            imported_at TEXT NOT NULL,
            import_seconds REAL NOT NULL DEFAULT 0
        );
        CREATE TABLE pings(
            ping_id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL,
            line INTEGER NOT NULL,
            document_id TEXT NOT NULL,
            \((dimColumns + infoDDL).joined(separator: ",\n    ")),
            payload TEXT NOT NULL
        );
        CREATE INDEX pings_file ON pings(file_id);
        CREATE INDEX pings_document_id ON pings(document_id);
        CREATE TABLE import_errors(
            error_id INTEGER PRIMARY KEY,
            file_id INTEGER,
            path TEXT NOT NULL,
            line INTEGER,
            byte_offset INTEGER,
            severity TEXT NOT NULL,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            document_id TEXT,
            recorded_at TEXT NOT NULL
        );
        CREATE INDEX import_errors_file ON import_errors(file_id);

        """
        for index in dimensionIndexes(schema: schema, info: info) {
            sql += "CREATE INDEX \(quote(index.name)) ON pings(\(index.columns.map(quote).joined(separator: ", ")));\n"
        }
        for view in views(schema: schema) { sql += view.sql + ";\n" }
        do {
            try c.execute(sql)
            // The setup rows commit with the tables: a store never exists without its layout version and schema.
            let meta = try c.prepare("INSERT INTO store_meta(key, value) VALUES (?1, ?2)")
            for (key, value) in [("layout_version", String(layoutVersion)),
                                 ("schema", String(decoding: schema.jsonData(), as: UTF8.self)),
                                 ("created_at", ISO8601DateFormatter().string(from: Date()))] {
                try meta.bind(key, at: 1); try meta.bind(value, at: 2); try meta.step(); meta.reset()
            }
            try addGenerationTriggers(c)
            try c.execute("COMMIT")
        } catch {
            try? c.execute("ROLLBACK")
            throw error
        }
    }

    /// The indexes on dimension and info columns. For each dimension column and for `os` and `update_channel`:
    /// a narrow one (`pings_dim_<name>`, `pings_info_<name>`: that column alone), which plain `GROUP BY` and
    /// equality lookups scan fastest, and a covering one (`pings_cover_<name>`: that column, then all the other
    /// dimension and TEXT info columns), with which a query that filters on some of these columns and groups on
    /// another (and reads `ping_id`, which every index holds) reads one index and never the wide `pings` rows with
    /// their payloads (e.g. `… WHERE reason = … AND appUpdateChannel IN (…) GROUP BY update_channel`). SQLite's
    /// planner picks between them by cost.
    static func dimensionIndexes(schema: DimensionSchema, info: [InfoColumn]) -> [(name: String, columns: [String])] {
        let all: [String] = schema.fieldNames + info.filter { $0.sqlType == "TEXT" }.map(\.name)
        var leads: [(name: String, column: String)] = schema.fieldNames.map { (name: "pings_dim_" + $0, column: $0) }
        for column in info where ["os", "update_channel"].contains(column.name) {
            leads.append((name: "pings_info_" + column.name, column: column.name))
        }
        var indexes: [(name: String, columns: [String])] = leads.map { (name: $0.name, columns: [$0.column]) }
        for lead in leads {
            indexes.append((name: "pings_cover_" + lead.column, columns: [lead.column] + all.filter { $0 != lead.column }))
        }
        return indexes
    }

    /// The store's views, as `CREATE VIEW` statements (docs/store.md "Duplicates"): `pings_dedup` keeps, for each
    /// (document id, ping type), the copy with the earliest `submission_date` (then source path, then line);
    /// `duplicate_documents` lists each (document id, ping type) seen more than once with its copies. The ping
    /// type is the schema's `pingTypeField` (`reason`); a schema without one keys on the document id alone.
    static func views(schema: DimensionSchema) -> [(name: String, sql: String)] {
        let dateColumn = schema.fieldNames.contains(DimensionSchema.submissionDateField)
            ? "p." + quote(DimensionSchema.submissionDateField) : "''"
        let type = schema.pingTypeField.map(quote)
        let partition = ["p.document_id"] + (type.map { ["p." + $0] } ?? [])
        return [
            (name: "pings_dedup", sql: """
            CREATE VIEW pings_dedup AS
                SELECT * FROM pings WHERE ping_id IN (
                    SELECT ping_id FROM (
                        SELECT p.ping_id, row_number() OVER (
                            PARTITION BY \(partition.joined(separator: ", ")) ORDER BY \(dateColumn), f.path, p.line) AS copy_number
                        FROM pings p JOIN source_files f USING (file_id))
                    WHERE copy_number = 1)
            """),
            (name: "duplicate_documents", sql: """
            CREATE VIEW duplicate_documents AS
                SELECT document_id, \(type ?? "NULL") AS ping_type, count(*) AS copies FROM pings
                GROUP BY document_id\(type.map { ", " + $0 } ?? "") HAVING count(*) > 1
            """),
        ]
    }

    /// Re-creates the views of a store made with older definitions (e.g. dedup by document id alone); a no-op
    /// read when they are current. Writable stores only: a read-only open keeps the views it finds.
    private func refreshViews() throws {
        let expected = Self.views(schema: schema)
        var stale: [(name: String, sql: String)] = []
        for view in expected {
            let statement = try connection.prepare("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?1")
            try statement.bind(view.name, at: 1)
            let current: String? = try statement.step() ? statement.columnText(0) : nil
            if current != view.sql { stale.append(view) }
        }
        guard !stale.isEmpty else { return }
        try withWriterLock("upgrade") {
            try connection.transaction {
                for view in stale {
                    try connection.execute("DROP VIEW IF EXISTS \(Self.quote(view.name)); \(view.sql)")
                }
            }
        }
    }

    /// Adds the indexes a store made before them lacks (`CREATE INDEX IF NOT EXISTS`); a no-op read otherwise.
    private func addMissingIndexes() throws {
        let indexes = Self.dimensionIndexes(schema: schema, info: activeInfoColumns)
        let names = indexes.map { "'" + $0.name.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: ", ")
        let present = try connection.scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN (\(names))") ?? 0
        guard present < indexes.count else { return }
        try withWriterLock("upgrade") { try connection.transaction {
            for index in indexes {
                try connection.execute("CREATE INDEX IF NOT EXISTS \(Self.quote(index.name)) ON pings(\(index.columns.map(Self.quote).joined(separator: ", ")))")
            }
        } }
    }

    /// Result of `query`: column names and rows of values.
    public struct QueryResult: Sendable, Equatable {
        public var columns: [String]
        public var rows: [[SQLValue]]
        public init(columns: [String], rows: [[SQLValue]]) {
            self.columns = columns
            self.rows = rows
        }
    }

    /// Runs every statement in `sql` (separated by `;`), returning the result of each statement that
    /// produces columns, in order.
    /// - Throws: `StoreError.sqlite` naming the failing statement.
    public func query(_ sql: String) throws -> [QueryResult] {
        var results: [QueryResult] = []
        try forEachStatement(sql) { statement in
            let columnCount = statement.columnCount
            var result = QueryResult(columns: (0..<columnCount).map { statement.columnName($0) }, rows: [])
            while try statement.step() {
                result.rows.append((0..<columnCount).map { statement.value($0) })
            }
            if columnCount > 0 { results.append(result) }
        }
        return results
    }

    /// Prepares each statement of `sql` in turn and passes it to `body` (which steps it).
    public func forEachStatement(_ sql: String, _ body: (Statement) throws -> Void) throws {
        var remaining = sql.utf8CString
        var offset = 0
        while true {
            let next: (Statement?, Int) = try remaining.withUnsafeMutableBufferPointer { buffer in
                let start = buffer.baseAddress! + offset
                var tail: UnsafePointer<CChar>?
                var stmt: OpaquePointer?
                let rc = sqlite3_prepare_v2(connection.handle, start, -1, &stmt, &tail)
                let consumed = tail.map { $0 - UnsafePointer(buffer.baseAddress!) } ?? buffer.count - 1
                let text = String(cString: start)
                guard rc == SQLITE_OK else {
                    throw StoreError.sqlite(code: rc, message: connection.lastMessage,
                                            sql: text.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                guard let stmt else { return (nil, consumed) }
                let statementText = String(text.utf8.prefix(consumed - offset)) ?? text
                return (Statement(adopting: stmt, sql: statementText.trimmingCharacters(in: .whitespacesAndNewlines), on: connection), consumed)
            }
            if let statement = next.0 { try body(statement) }
            if next.1 <= offset || next.1 >= remaining.count - 1 { break }
            offset = next.1
        }
        _ = remaining
    }
}
