import CSQLite
import Foundation
import TelemetryCompression
import TelemetryCore

/// The jobs' columnar index of the store's pings (docs/jobs.md "Ping index"): for every ping, in `ping_id`
/// order, its document id and a dictionary code per dimension column and per TEXT info column. Jobs select and
/// partition pings from it without touching the `pings` table; `map` reads dimensions and info fields from it.
///
/// Derived data, rebuilt from the `pings` table whenever it is out of date: the store counts every change to
/// `pings` in `store_meta.ping_generation` (triggers), and the index records the generation it was built from.
/// Kept in `<store>.pingindex` (written by `import` and by the first job after a change; atomic rename) and
/// cached per process, so repeated jobs over a warm store do not rebuild or reread it.
///
/// - Important: Immutable after init, hence `Sendable`.
public final class PingIndex: @unchecked Sendable {   // immutable after init
    /// The store's change token when built (`Store.pingGeneration`); nil for a store without change counting
    /// (then never cached or saved).
    public let generation: String?
    /// Indexed columns: the dimension columns (schema order) then the TEXT info columns.
    public let columns: [String]
    /// The `info` field of each info column (e.g. `os` → `OS`); nil for dimensions.
    public let infoFields: [String?]
    /// Number of dimension columns (the first `dimensionCount` of `columns`).
    public let dimensionCount: Int
    /// `ping_id` of each indexed ping, ascending.
    public let pingIDs: [Int64]
    /// `codes[column][row]`: 0 = NULL, else index + 1 into `values[column]`.
    let codes: [[UInt32]]
    /// `values[column][code - 1]`: the distinct values of a column.
    let values: [[String]]
    let documentIDBytes: [UInt8]
    let documentIDOffsets: [Int]

    init(generation: String?, columns: [String], infoFields: [String?], dimensionCount: Int, pingIDs: [Int64],
         codes: [[UInt32]], values: [[String]], documentIDBytes: [UInt8], documentIDOffsets: [Int]) {
        self.generation = generation
        self.columns = columns
        self.infoFields = infoFields
        self.dimensionCount = dimensionCount
        self.pingIDs = pingIDs
        self.codes = codes
        self.values = values
        self.documentIDBytes = documentIDBytes
        self.documentIDOffsets = documentIDOffsets
    }

    /// Number of indexed pings.
    public var count: Int { pingIDs.count }

    /// The value of `column` for the ping at `row` (nil = SQL NULL). `row < count`, `column < columns.count`.
    @inline(__always) public func value(row: Int, column: Int) -> String? {
        let code = codes[column][row]
        return code == 0 ? nil : values[column][Int(code) - 1]
    }

    /// The document id of the ping at `row`.
    public func documentID(row: Int) -> String {
        documentIDBytes.withUnsafeBufferPointer {
            String(decoding: UnsafeBufferPointer(rebasing: $0[documentIDOffsets[row]..<documentIDOffsets[row + 1]]), as: UTF8.self)
        }
    }

    /// Index of the info column holding `info.<field>`, nil when the field is not indexed.
    public func infoColumn(field: String) -> Int? { infoFields.firstIndex { $0 == field } }

    // MARK: Opening

    private static let cacheLock = NSLock()
    nonisolated(unsafe) private static var cache: [String: PingIndex] = [:]   // guarded by cacheLock

    /// The up-to-date index of `store`: the process cache, else `<store>.pingindex`, else built from `pings`
    /// (and saved when the directory is writable; a failure to save is not an error).
    /// - Throws: `StoreError.sqlite`.
    /// - Complexity: O(1) from the cache (one `store_meta` read); O(pings) otherwise.
    /// - Parameter requireSaved: throw when the rebuilt index cannot be saved beside the store (reindex); by
    ///   default a failed save is ignored (the index is rebuilt in memory the next time).
    public static func current(store: Store, requireSaved: Bool = false) throws -> PingIndex {
        let generation = try store.pingGeneration()
        let key = URL(fileURLWithPath: store.path).standardizedFileURL.path
        if let generation, let cached = cacheLock.withLock({ cache[key] }), cached.generation == generation { return cached }
        let file = filePath(storePath: store.path)
        var index: PingIndex? = nil
        if let generation, let loaded = load(path: file), loaded.generation == generation, loaded.matches(store) { index = loaded }
        if index == nil {
            let built = try build(store: store, generation: generation)
            if generation != nil {
                do { try built.save(path: file) } catch { if requireSaved { throw error } }
            }
            index = built
        }
        guard let index else { throw StoreError.sqlite(code: SQLITE_INTERNAL, message: "ping index unavailable", sql: nil) }
        if generation != nil {
            cacheLock.withLock {
                if cache.count >= 4 && cache[key] == nil { cache.removeAll() }   // bounded: a few stores per process
                cache[key] = index
            }
        }
        return index
    }

    /// `<store>.pingindex`.
    public static func filePath(storePath: String) -> String { storePath + ".pingindex" }

    private func matches(_ store: Store) -> Bool {
        let expected = Self.indexedColumns(store)
        return columns == expected.map(\.name) && dimensionCount == store.schema.fieldNames.count
    }

    private static func indexedColumns(_ store: Store) -> [(name: String, field: String?)] {
        store.schema.fieldNames.map { ($0, nil) } + store.activeInfoColumns.filter { $0.sqlType == "TEXT" }.map { ($0.name, $0.field) }
    }

    /// Builds the index from the `pings` table (one scan in `ping_id` order).
    static func build(store: Store, generation: String?) throws -> PingIndex {
        let columns = indexedColumns(store)
        let statement = try store.connection.prepare(
            "SELECT ping_id, document_id, \(columns.map { Store.quote($0.name) }.joined(separator: ", ")) FROM pings ORDER BY ping_id")
        var pingIDs: [Int64] = []
        var codes = [[UInt32]](repeating: [], count: columns.count)
        var values = [[String]](repeating: [], count: columns.count)
        var interned = [[String: UInt32]](repeating: [:], count: columns.count)
        var idBytes: [UInt8] = []
        var idOffsets: [Int] = [0]
        while try statement.step() {
            pingIDs.append(statement.columnInt64(0))
            statement.withColumnBytes(1) { idBytes.append(contentsOf: $0) }
            idOffsets.append(idBytes.count)
            for column in columns.indices {
                guard let text = statement.columnText(Int32(column + 2)) else { codes[column].append(0); continue }
                if let code = interned[column][text] { codes[column].append(code); continue }
                values[column].append(text)
                let code = UInt32(values[column].count)
                interned[column][text] = code
                codes[column].append(code)
            }
        }
        return PingIndex(generation: generation, columns: columns.map(\.name), infoFields: columns.map(\.field),
                         dimensionCount: store.schema.fieldNames.count, pingIDs: pingIDs, codes: codes, values: values,
                         documentIDBytes: idBytes, documentIDOffsets: idOffsets)
    }

    // MARK: File format
    // "TPIDX001", generation (UInt32 length + UTF-8), ping count, column count, dimension count (Int64 LE
    // each); ping ids (Int64 × n);
    // per column: codes (UInt32 × n); document-id offsets (Int64 × (n + 1)) and bytes; per column: name, info
    // field ("" for a dimension), value count (UInt32) and values, each string as UInt32 length + UTF-8; then the
    // CRC-64 of everything before it (UInt64 LE): a damaged file is rebuilt, never used.

    private static let magic = Array("TPIDX001".utf8)

    /// Writes the index to `<path>.tmp-<pid>`, fsyncs and renames it over `path`: readers see the old file or the
    /// new one, whole. A failed write (disk full) removes the temporary file.
    /// - Throws: `StoreError.writeFailed` naming the file and the system's reason.
    func save(path: String) throws {
        guard let generation else { return }
        var out: [UInt8] = Self.magic
        out.reserveCapacity(64 + pingIDs.count * (8 + 4 * columns.count + 8) + documentIDBytes.count)
        func int64(_ value: Int64) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        func uint32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ value: String) { uint32(UInt32(value.utf8.count)); out.append(contentsOf: value.utf8) }
        string(generation); int64(Int64(pingIDs.count)); int64(Int64(columns.count)); int64(Int64(dimensionCount))
        for id in pingIDs { int64(id) }
        for column in codes { for code in column { uint32(code) } }
        for offset in documentIDOffsets { int64(Int64(offset)) }
        out.append(contentsOf: documentIDBytes)
        for (index, name) in columns.enumerated() {
            string(name); string(infoFields[index] ?? "")
            uint32(UInt32(values[index].count))
            for value in values[index] { string(value) }
        }
        let crc = out.withUnsafeBytes { CRC64.update(0, $0) }
        withUnsafeBytes(of: crc.littleEndian) { out.append(contentsOf: $0) }
        let temporary = path + ".tmp-\(getpid())"
        try FileWriting.writeWhole(out, to: temporary)
        if rename(temporary, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw StoreError.writeFailed(path: path, reason: reason)
        }
    }

    /// Reads an index file; nil when it is missing, damaged or of another format (then it is rebuilt).
    static func load(path: String) -> PingIndex? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return data.withUnsafeBytes { (whole: UnsafeRawBufferPointer) -> PingIndex? in
            guard whole.count >= 48 else { return nil }
            let raw = UnsafeRawBufferPointer(rebasing: whole[0..<whole.count - 8])
            let stored = UInt64(littleEndian: whole.loadUnaligned(fromByteOffset: whole.count - 8, as: UInt64.self))
            guard CRC64.update(0, raw) == stored else { return nil }
            var at = 0
            func int64() -> Int64? {
                guard at + 8 <= raw.count else { return nil }
                defer { at += 8 }
                return Int64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self))
            }
            func uint32() -> UInt32? {
                guard at + 4 <= raw.count else { return nil }
                defer { at += 4 }
                return UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
            }
            func string() -> String? {
                guard let length = uint32().map(Int.init), at + length <= raw.count else { return nil }
                defer { at += length }
                return String(decoding: UnsafeRawBufferPointer(rebasing: raw[at..<at + length]), as: UTF8.self)
            }
            guard raw.count >= 40, Array(raw[0..<8]) == magic else { return nil }
            at = 8
            guard let generation = string(), let n64 = int64(), let c64 = int64(), let d64 = int64(),
                  n64 >= 0, n64 <= Int64(raw.count / 8), c64 >= 0, c64 < 4096, d64 >= 0, d64 <= c64 else { return nil }
            let n = Int(n64), columnCount = Int(c64)
            guard raw.count - at >= n * (8 + 4 * columnCount + 8) + 8 else { return nil }
            var pingIDs = [Int64](); pingIDs.reserveCapacity(n)
            for _ in 0..<n { guard let id = int64() else { return nil }; pingIDs.append(id) }
            var codes: [[UInt32]] = []
            for _ in 0..<columnCount {
                var column = [UInt32](); column.reserveCapacity(n)
                for _ in 0..<n { guard let code = uint32() else { return nil }; column.append(code) }
                codes.append(column)
            }
            var offsets = [Int](); offsets.reserveCapacity(n + 1)
            for _ in 0...n { guard let offset = int64(), offset >= 0 else { return nil }; offsets.append(Int(offset)) }
            guard let total = offsets.last, offsets.first == 0, at + total <= raw.count,
                  zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else { return nil }
            let idBytes = Array(raw[at..<at + total]); at += total
            var names: [String] = [], fields: [String?] = [], values: [[String]] = []
            for column in 0..<columnCount {
                guard let name = string(), let field = string(), let count = uint32() else { return nil }
                names.append(name); fields.append(field.isEmpty ? nil : field)
                var list: [String] = []
                for _ in 0..<count { guard let value = string() else { return nil }; list.append(value) }
                guard codes[column].allSatisfy({ $0 <= count }) else { return nil }
                values.append(list)
            }
            guard at == raw.count else { return nil }
            return PingIndex(generation: generation, columns: names, infoFields: fields, dimensionCount: Int(d64),
                             pingIDs: pingIDs, codes: codes, values: values, documentIDBytes: idBytes, documentIDOffsets: offsets)
        }
    }

    // MARK: Selection

    /// The rows (ascending) of the pings a job reads: those the filter allows (values matched with
    /// `AllowedValues.allows` on the stored, sanitised values; dimensions by field name) and `whereSQL` keeps.
    ///
    /// `whereSQL` is evaluated by SQLite: when it reads only indexed columns of `pings` and calls only functions
    /// SQLite marks deterministic (`SQLITE_DETERMINISTIC` in `pragma_function_list`), once per distinct
    /// combination of those columns (an in-memory table), else once per ping on the store (`SELECT ping_id FROM
    /// pings WHERE (…)`): `random()`, `randomblob()`, `changes()`, the store's histogram functions… are called per
    /// ping, as in `query`. Both give SQLite's own answer.
    /// - Throws: `StoreError.sqlite` for a `whereSQL` SQLite rejects; `PingIndexError.unknownDimension`.
    public func select(filter: DimensionSchema?, whereSQL: String?, store: Store) throws -> [Int32] {
        var allowedCodes: [(column: Int, allowed: [Bool])] = []
        if let filter = filter?.asFilter {
            for dimension in filter.dimensions {
                guard let column = columns.prefix(dimensionCount).firstIndex(of: dimension.fieldName) else {
                    throw PingIndexError.unknownDimension(name: dimension.fieldName, known: Array(columns.prefix(dimensionCount)))
                }
                if dimension.allowedValues == .any { continue }
                allowedCodes.append((column, [dimension.allows("")] + values[column].map { dimension.allows($0) }))
            }
        }
        var rows: [Int32] = []
        rows.reserveCapacity(count)
        rows: for row in 0..<count {
            for (column, allowed) in allowedCodes where !allowed[Int(codes[column][row])] { continue rows }
            rows.append(Int32(row))
        }
        guard let whereSQL, !whereSQL.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return rows }
        if let read = try readColumns(whereSQL: whereSQL, store: store),
           try Self.allDeterministic(read.functions, on: store.connection),
           let indexed = Optional(read.columns.compactMap { columns.firstIndex(of: $0) }), indexed.count == read.columns.count {
            return try selectByTuples(rows, columns: indexed, whereSQL: whereSQL)
        }
        let statement = try store.connection.prepare("SELECT ping_id FROM pings WHERE \(Self.condition(whereSQL)) ORDER BY ping_id")
        var kept: [Int32] = []
        var position = 0
        while try statement.step() {
            let id = statement.columnInt64(0)
            while position < rows.count && pingIDs[Int(rows[position])] < id { position += 1 }
            if position < rows.count && pingIDs[Int(rows[position])] == id { kept.append(rows[position]); position += 1 }
        }
        return kept
    }

    /// The `pings` columns `whereSQL` reads and the functions it calls (lower-cased), or nil when it reads anything
    /// else (another table, `ping_id`).
    private func readColumns(whereSQL: String, store: Store) throws -> (columns: [String], functions: Set<String>)? {
        final class Reads { var columns: Set<String> = []; var functions: Set<String> = []; var other = false; var selects = 0 }
        let reads = Reads()
        let user = Unmanaged.passUnretained(reads).toOpaque()
        sqlite3_set_authorizer(store.connection.handle, { user, action, table, column, _, _ in
            guard let user else { return SQLITE_OK }
            let reads = Unmanaged<Reads>.fromOpaque(user).takeUnretainedValue()
            switch action {
            case SQLITE_READ:
                let tableName = table.map { String(cString: $0) } ?? ""
                let columnName = column.map { String(cString: $0) } ?? ""
                if tableName == "pings" && !columnName.isEmpty && columnName != "ping_id" { reads.columns.insert(columnName) } else { reads.other = true }
            case SQLITE_SELECT: reads.selects += 1   // more than one: a subquery, which must see the real table
            case SQLITE_FUNCTION:   // the function's name is the second argument
                if let column { reads.functions.insert(String(cString: column).lowercased()) } else { reads.other = true }
            default: reads.other = true
            }
            return SQLITE_OK
        }, user)
        defer { sqlite3_set_authorizer(store.connection.handle, nil, nil) }
        try Self.checkSingleExpression(whereSQL, on: store.connection)
        return withExtendedLifetime(reads) { reads.other || reads.selects > 1 ? nil : (reads.columns.sorted(), reads.functions) }
    }

    /// True when SQLite marks every function named in `functions` deterministic on `connection`: every overload of
    /// the name carries `SQLITE_DETERMINISTIC` (0x800) in `pragma_function_list` (built-in and the store's own
    /// functions alike). A name the list lacks, or a SQLite without the pragma, counts as non-deterministic:
    /// evaluating per ping is always right, per distinct combination only for deterministic functions.
    /// - Throws: never for a missing pragma; `StoreError` only from `Statement` misuse.
    static func allDeterministic(_ functions: Set<String>, on connection: Connection) throws -> Bool {
        guard !functions.isEmpty else { return true }
        guard let statement = try? connection.prepare(
            "SELECT lower(name), min(flags & 2048) FROM pragma_function_list GROUP BY lower(name)") else { return false }
        var deterministic = Set<String>()
        while try statement.step() {
            if statement.columnInt64(1) != 0, let name = statement.columnText(0) { deterministic.insert(name) }
        }
        return functions.isSubset(of: deterministic)
    }

    /// `whereSQL` as the condition of a query on `pings`, on lines of its own so that a trailing `--` comment
    /// cannot swallow the closing parenthesis.
    public static func condition(_ whereSQL: String) -> String { "(\n\(whereSQL)\n)" }

    /// Checks that `whereSQL` is one SQL expression: it prepares as the condition of one statement with nothing
    /// after it (`1); DROP TABLE pings; --` is refused, not half-run).
    /// - Throws: `StoreError.sqlite` with SQLite's message, or naming the text that follows the expression.
    public static func checkSingleExpression(_ whereSQL: String, on connection: Connection) throws {
        let sql = "SELECT 1 FROM pings WHERE \(condition(whereSQL))"
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let rc = sql.withCString { text -> Int32 in
            let rc = sqlite3_prepare_v2(connection.handle, text, -1, &statement, &tail)
            if rc == SQLITE_OK, let tail, String(cString: tail).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty == false {
                return SQLITE_MISUSE
            }
            return rc
        }
        sqlite3_finalize(statement)
        if rc == SQLITE_MISUSE {
            throw StoreError.sqlite(code: SQLITE_ERROR, message: "--where must be one SQL expression; found more SQL after it", sql: whereSQL)
        }
        guard rc == SQLITE_OK else { throw StoreError.sqlite(code: rc, message: connection.lastMessage, sql: "WHERE " + whereSQL) }
    }

    /// Evaluates `whereSQL` once per distinct combination of `columns` among `rows` in an in-memory table named
    /// `pings` holding just those columns.
    private func selectByTuples(_ rows: [Int32], columns selected: [Int], whereSQL: String) throws -> [Int32] {
        var tupleOf = [Int32](repeating: 0, count: rows.count)
        var ordered: [[UInt32]] = []
        // A tuple's key: its codes in mixed radix (one UInt64) when that fits, else the code array.
        var radix: [UInt64] = []
        var product: UInt64 = 1
        for column in selected {
            radix.append(product)
            let (next, overflow) = product.multipliedReportingOverflow(by: UInt64(values[column].count + 1))
            product = overflow ? 0 : next
        }
        if product != 0 && product <= 1 << 16 {
            var tuples = [Int32](repeating: 0, count: Int(product))   // dense: key → tuple number (0 = not seen)
            for (position, row) in rows.enumerated() {
                var key = 0
                for (place, column) in selected.enumerated() { key += Int(codes[column][Int(row)]) * Int(radix[place]) }
                if tuples[key] == 0 {
                    ordered.append(selected.map { codes[$0][Int(row)] })
                    tuples[key] = Int32(ordered.count)
                }
                tupleOf[position] = tuples[key]
            }
        } else if product != 0 {
            var tuples: [UInt64: Int32] = [:]
            for (position, row) in rows.enumerated() {
                var key: UInt64 = 0
                for (place, column) in selected.enumerated() { key &+= UInt64(codes[column][Int(row)]) &* radix[place] }
                if let existing = tuples[key] { tupleOf[position] = existing; continue }
                ordered.append(selected.map { codes[$0][Int(row)] })
                tuples[key] = Int32(ordered.count)
                tupleOf[position] = Int32(ordered.count)
            }
        } else {
            var tuples: [[UInt32]: Int32] = [:]
            for (position, row) in rows.enumerated() {
                let key = selected.map { codes[$0][Int(row)] }
                if let existing = tuples[key] { tupleOf[position] = existing; continue }
                ordered.append(key)
                tuples[key] = Int32(ordered.count)
                tupleOf[position] = Int32(ordered.count)
            }
        }
        let memory = try Connection(path: ":memory:")
        try memory.execute("CREATE TABLE pings(\(selected.map { Store.quote(columns[$0]) + " TEXT" }.joined(separator: ", ")))")
        let insert = try memory.prepare("INSERT INTO pings(rowid, \(selected.map { Store.quote(columns[$0]) }.joined(separator: ", "))) VALUES (?1\(selected.indices.map { ", ?\($0 + 2)" }.joined()))")
        try memory.transaction {
            for (number, key) in ordered.enumerated() {
                try insert.bind(Int64(number + 1), at: 1)
                for (position, column) in selected.enumerated() {
                    let code = key[position]
                    try insert.bind(code == 0 ? nil : values[column][Int(code) - 1], at: Int32(position + 2))
                }
                _ = try insert.step()
                insert.reset()
            }
        }
        var keep = [Bool](repeating: false, count: ordered.count + 1)
        let query = try memory.prepare("SELECT rowid FROM pings WHERE \(Self.condition(whereSQL))")
        while try query.step() { keep[Int(query.columnInt64(0))] = true }
        var kept: [Int32] = []
        kept.reserveCapacity(rows.count)
        for (position, row) in rows.enumerated() where keep[Int(tupleOf[position])] { kept.append(row) }
        return kept
    }
}

/// Errors of ping selection.
public enum PingIndexError: Error, Equatable, CustomStringConvertible {
    /// A filter names a dimension the store does not have.
    case unknownDimension(name: String, known: [String])

    public var description: String {
        switch self {
        case let .unknownDimension(name, known): "dimension '\(name)' is not in the store's schema (\(known.joined(separator: ", ")))"
        }
    }
}

extension Store {
    /// A token that changes whenever `pings` does: `store_meta.store_id` (random, per store file) and
    /// `store_meta.ping_generation` (bumped by triggers on every insert, update or delete in `pings`); nil for a
    /// store opened read-only before the triggers were added.
    public func pingGeneration() throws -> String? {
        let statement = try connection.prepare(
            "SELECT (SELECT value FROM store_meta WHERE key = 'store_id'), (SELECT value FROM store_meta WHERE key = 'ping_generation')")
        guard try statement.step(), let id = statement.columnText(0), let generation = statement.columnText(1) else { return nil }
        return id + "/" + generation
    }

    /// Adds the change-counting triggers behind `pingGeneration`, and one that marks the histogram column files
    /// out of date when a payload is changed in place (`UPDATE pings SET payload = …`: the columns no longer match
    /// it; jobs then read the payload and the SQL functions ask for `telemetry reindex`). Idempotent.
    static func addGenerationTriggers(_ connection: Connection) throws {
        var sql = """
        INSERT OR IGNORE INTO store_meta(key, value) VALUES ('ping_generation', '0');
        INSERT OR IGNORE INTO store_meta(key, value) VALUES ('store_id', '\(UUID().uuidString)');

        """
        for event in ["INSERT", "UPDATE", "DELETE"] {
            sql += """
            CREATE TRIGGER IF NOT EXISTS pings_generation_\(event.lowercased()) AFTER \(event) ON pings BEGIN
                UPDATE store_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'ping_generation';
            END;

            """
        }
        sql += """
        CREATE TRIGGER IF NOT EXISTS pings_payload_update AFTER UPDATE OF payload ON pings BEGIN
            DELETE FROM store_meta WHERE key = '\(histogramColumnsMetaKey)';
        END;
        """
        try connection.execute(sql)
    }
}
