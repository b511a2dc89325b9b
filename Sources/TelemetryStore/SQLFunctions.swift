import CSQLite
import Foundation
import TelemetryConvert
import TelemetryCore

/// The histogram SQL functions of one store's connection (`docs/sql.md`). Holds the mapped columns, opened on
/// first use and dropped when the store's columns change (`Store.histogramColumnsChanged`).
///
/// - Important: Not `Sendable`; used on the connection's thread only (SQLite calls back on the caller's thread).
final class HistogramSQLContext {
    unowned let store: Store
    private var columns: HistogramColumns?

    init(store: Store) { self.store = store }

    func invalidate() { columns = nil; denseIndexes = [:] }

    /// Direct `ping_id` → row tables of the columns whose groups received rows out of `ping_id` order (e.g. a scan of
    /// an index led by other columns), built once per connection and column; nil entries: too sparse for one.
    private var denseIndexes: [ObjectIdentifier: DenseRowIndex?] = [:]

    func denseIndex(for rows: HistogramRows) -> DenseRowIndex? {
        let key = ObjectIdentifier(rows)
        if let known = denseIndexes[key] { return known }
        let made = rows.makeDenseIndex()
        denseIndexes[key] = made
        return made
    }

    /// Bucket lower bounds for `histogram_summary`, from the histogram cache the store remembers; loaded on
    /// first use, dropped when the remembered cache changes (`Store.rememberHistogramCache`).
    private var boundsDefinitions: StoreHistogramDefinitions?
    /// Distinct reasons `histogram_summary` reported since the last `takeBoundsWarnings()`, first met first.
    private var boundsWarnings: [String] = []

    func invalidateDefinitions() { boundsDefinitions = nil }

    /// The definitions lookup; reads `store_meta` on first use (a nested read on this connection).
    /// - Throws: `StoreError.sqlite`.
    func definitions() throws -> StoreHistogramDefinitions {
        if let boundsDefinitions { return boundsDefinitions }
        let loaded = try StoreHistogramDefinitions(store: store)
        boundsDefinitions = loaded
        return loaded
    }

    func noteBoundsWarning(_ reason: String) {
        if !boundsWarnings.contains(reason) { boundsWarnings.append(reason) }
    }

    func takeBoundsWarnings() -> [String] {
        defer { boundsWarnings = [] }
        return boundsWarnings
    }

    /// The store's change token when `columns` were mapped: another process's import changes it.
    private var columnsToken: String?

    /// The mapped columns, mapped again when the store changed since (this or another process: an import, a
    /// `DELETE`, an `UPDATE` of payloads, which also marks the columns out of date); never repairs (a callback must
    /// not write): damaged or out-of-date columns are an error.
    func current() throws -> HistogramColumns {
        let token = try store.pingGeneration()
        if let columns, token != nil, token == columnsToken { return columns }
        let opened = try HistogramColumns.open(store: store, repair: false)
        columns = opened
        columnsToken = token
        return opened
    }

    /// The columns (one per layout) of histogram `name`.
    /// - Throws: `UnknownHistogramError` when the store has no histogram of that name (with the closest names,
    ///   `HistogramNames`); the errors of `current()`.
    func known(_ name: String, function: String) throws -> [HistogramColumn] {
        let columns = try current()
        let found = columns.column(named: name)
        guard found.isEmpty else { return found }
        throw UnknownHistogramError(context: function, name: name, known: columns.names)
    }

    /// Registers `histogram_sum`, `histogram_count`, `histogram_layout`, `histogram_mean`, `histogram_summary` and
    /// `histogram_percentile` and `histogram_kind` on `connection`.
    func register(on connection: Connection) throws {
        let user = Unmanaged.passUnretained(self).toOpaque()
        for arity: Int32 in [2, 3] {
            try check(sqlite3_create_function_v2(connection.handle, "histogram_sum", arity, SQLITE_UTF8, user, nil,
                                                 histogramSumStep, histogramSumFinal, nil), connection, "histogram_sum")
        }
        try check(sqlite3_create_function_v2(connection.handle, "histogram_count", 2, SQLITE_UTF8, user, nil,
                                             histogramCountStep, histogramCountFinal, nil), connection, "histogram_count")
        try check(sqlite3_create_function_v2(connection.handle, "histogram_layout", 2, SQLITE_UTF8, user,
                                             histogramLayout, nil, nil, nil), connection, "histogram_layout")
        try check(sqlite3_create_function_v2(connection.handle, "histogram_mean", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil,
                                             histogramMean, nil, nil, nil), connection, "histogram_mean")
        for arity: Int32 in [3, 4] {
            try check(sqlite3_create_function_v2(connection.handle, "histogram_summary", arity, SQLITE_UTF8, user, nil,
                                                 histogramSummaryStep, histogramSummaryFinal, nil), connection, "histogram_summary")
        }
        try check(sqlite3_create_function_v2(connection.handle, "histogram_percentile", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil,
                                             histogramPercentile, nil, nil, nil), connection, "histogram_percentile")
        try check(sqlite3_create_function_v2(connection.handle, "histogram_kind", 3, SQLITE_UTF8, user,
                                             histogramKind, nil, nil, nil), connection, "histogram_kind")
    }

    private func check(_ rc: Int32, _ connection: Connection, _ name: String) throws {
        guard rc == SQLITE_OK else { throw StoreError.sqlite(code: rc, message: connection.lastMessage, sql: "register \(name)") }
    }
}

/// Per-group state of `histogram_sum`: element-wise sums over the rows of one column (one layout).
final class HistogramSumState {
    var column: HistogramColumn? {
        didSet { rowIndex = nil }
    }
    /// The column's validated row index, fetched once per group (`start`).
    var rowIndex: HistogramRows?
    var started = false
    /// The group's sums (the one accumulator: `HistogramAccumulator`).
    var sums = HistogramAccumulator()
    /// Pings summed (`histogram_count`: pings counted).
    var pings = 0
    var hint = 0
    var error: String?
    /// `histogram_count`: every layout of the name, with a lookup hint each.
    var allColumns: [HistogramColumn] = []
    var allRows: [HistogramRows] = []
    var hints: [Int] = []

    /// The connection's state, for the shared dense row tables.
    weak var context: HistogramSQLContext?
    private var dense: DenseRowIndex?
    private var misses = 0

    /// The row of `pingID` in the group's column: O(1) when rows arrive in `ping_id` order (the hint), else a
    /// binary search, and after 32 of those a direct table (rows arriving in another order, from an index led by
    /// other columns).
    @inline(__always) func row(of pingID: Int64) -> Int? {
        guard let rowIndex else { return nil }
        if hint < rowIndex.count && rowIndex.pingIDs[hint] == pingID { hint += 1; return hint - 1 }
        if let dense { return dense.row(of: pingID) }
        misses += 1
        if misses == 32, let context { dense = context.denseIndex(for: rowIndex) }
        guard let row = rowIndex.row(of: pingID, hint: hint) else { return nil }
        hint = row + 1
        return row
    }

    func add(row: Int) {
        guard let column, let rows = rowIndex else { return }
        do { try sums.add(row: row, of: rows); pings += 1 } catch { self.error = "histogram_sum: \(column.name): \(error)" }
    }

    /// `[b0…b(n-1), sum, log_sum, log_sum_squares, sum_squares_lo, sum_squares_hi]` as JSON text.
    var json: String { sums.description }
}

private func sumState(_ ctx: OpaquePointer?, create: Bool) -> HistogramSumState? {
    guard let slot = sqlite3_aggregate_context(ctx, create ? Int32(MemoryLayout<UnsafeMutableRawPointer?>.size) : 0)?
        .assumingMemoryBound(to: UnsafeMutableRawPointer?.self) else { return nil }
    if let existing = slot.pointee { return Unmanaged<HistogramSumState>.fromOpaque(existing).takeUnretainedValue() }
    guard create else { return nil }
    let state = HistogramSumState()
    slot.pointee = Unmanaged.passRetained(state).toOpaque()
    return state
}

private func releaseState(_ ctx: OpaquePointer?) {
    guard let slot = sqlite3_aggregate_context(ctx, 0)?.assumingMemoryBound(to: UnsafeMutableRawPointer?.self),
          let existing = slot.pointee else { return }
    Unmanaged<HistogramSumState>.fromOpaque(existing).release()
    slot.pointee = nil
}

private func text(_ value: OpaquePointer?) -> String? {
    guard let bytes = sqlite3_value_text(value) else { return nil }
    return String(cString: bytes)
}

/// First step of a group: picks the column (layout) of the histogram named by argument 1.
private func start(_ state: HistogramSumState, _ ctx: OpaquePointer?, _ argc: Int32, _ argv: UnsafeMutablePointer<OpaquePointer?>) {
    state.started = true
    guard let context = sqlite3_user_data(ctx).map({ Unmanaged<HistogramSQLContext>.fromOpaque($0).takeUnretainedValue() }) else { return }
    state.context = context
    guard let name = text(argv[1]) else { state.error = "histogram_sum: the histogram name must be text"; return }
    let columns: [HistogramColumn]
    do { columns = try context.known(name, function: "histogram_sum") } catch { state.error = "\(error)"; return }
    if argc >= 3 {
        guard sqlite3_value_type(argv[2]) == SQLITE_INTEGER else {
            state.error = "histogram_sum: the bucket count (third argument) must be an integer"
            return
        }
        let wanted = Int(sqlite3_value_int64(argv[2]))
        state.column = columns.first { $0.bucketCount == wanted }
    } else if columns.count > 1 {
        state.error = "histogram_sum: \(name) has several layouts (bucket counts \(columns.map { String($0.bucketCount) }.joined(separator: " and "))); "
            + "they cannot be added position by position: pass the bucket count, histogram_sum(ping_id, '\(name)', n), or GROUP BY histogram_layout(ping_id, '\(name)')"
    } else {
        state.column = columns.first
    }
    if let column = state.column {
        state.sums = HistogramAccumulator(bucketCount: column.bucketCount)
        do { state.rowIndex = try column.rows() } catch { state.error = "\(error)" }   // damaged rows: an error, never a partial sum
    }
}

private let histogramSumStep: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, argc, argv in
    guard let argv, let state = sumState(ctx, create: true) else { sqlite3_result_error_nomem(ctx); return }
    if !state.started { start(state, ctx, argc, argv) }
    guard state.error == nil, sqlite3_value_type(argv[0]) == SQLITE_INTEGER else { return }
    if let row = state.row(of: sqlite3_value_int64(argv[0])) { state.add(row: row) }
}

private let histogramSumFinal: @convention(c) (OpaquePointer?) -> Void = { ctx in
    defer { releaseState(ctx) }
    guard let state = sumState(ctx, create: false) else { sqlite3_result_null(ctx); return }
    if let error = state.error { sqlite3_result_error(ctx, error, -1); return }
    guard state.pings > 0 else { sqlite3_result_null(ctx); return }
    sqlite3_result_text(ctx, state.json, -1, csqlite_transient())
}

private let histogramCountStep: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, argc, argv in
    guard let argv, let state = sumState(ctx, create: true) else { sqlite3_result_error_nomem(ctx); return }
    if !state.started {
        state.started = true
        guard let context = sqlite3_user_data(ctx).map({ Unmanaged<HistogramSQLContext>.fromOpaque($0).takeUnretainedValue() }),
              let name = text(argv[1]) else { state.error = "histogram_count: the histogram name must be text"; return }
        do { state.allColumns = try context.known(name, function: "histogram_count") } catch { state.error = "\(error)"; return }
        state.hints = Array(repeating: 0, count: state.allColumns.count)
        do { state.allRows = try state.allColumns.map { try $0.rows() } } catch { state.error = "\(error)"; return }
    }
    guard state.error == nil, sqlite3_value_type(argv[0]) == SQLITE_INTEGER else { return }
    let pingID = sqlite3_value_int64(argv[0])
    for index in state.allRows.indices {
        if let row = state.allRows[index].row(of: pingID, hint: state.hints[index]) { state.hints[index] = row + 1; state.pings += 1; break }
    }
}

private let histogramCountFinal: @convention(c) (OpaquePointer?) -> Void = { ctx in
    defer { releaseState(ctx) }
    guard let state = sumState(ctx, create: false) else { sqlite3_result_int64(ctx, 0); return }
    if let error = state.error { sqlite3_result_error(ctx, error, -1); return }
    sqlite3_result_int64(ctx, Int64(state.pings))
}

/// `histogram_layout(ping_id, name)`: the bucket count of the ping's histogram `name`, NULL when it has none.
private let histogramLayout: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, _, argv in
    guard let argv, sqlite3_value_type(argv[0]) == SQLITE_INTEGER, let name = text(argv[1]),
          let context = sqlite3_user_data(ctx).map({ Unmanaged<HistogramSQLContext>.fromOpaque($0).takeUnretainedValue() }) else {
        sqlite3_result_null(ctx); return
    }
    let pingID = sqlite3_value_int64(argv[0])
    do {
        for column in try context.known(name, function: "histogram_layout") where try column.rows().row(of: pingID) != nil {
            sqlite3_result_int64(ctx, Int64(column.bucketCount)); return
        }
        sqlite3_result_null(ctx)
    } catch {
        sqlite3_result_error(ctx, "\(error)", -1)
    }
}

/// `histogram_mean(summed)`: the `sum` statistic divided by the total count of a storage-format array text
/// (a `histogram_sum` result); NULL when the sum is absent (-1), the count is 0, or the argument is NULL.
/// Given a `histogram_summary` result (a JSON object) instead: the bound-based mean (`summaryMean`).
private let histogramMean: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, _, argv in
    guard let argv, let json = text(argv[0]) else { sqlite3_result_null(ctx); return }
    if json.first == "{" { summaryMean(ctx, json); return }   // a histogram_summary result: bound-based
    let trimmed = json.trimmingCharacters(in: .whitespacesAndNewlines)
    let parts = trimmed.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let numbers = parts.compactMap(Double.init)
    guard trimmed.first == "[", trimmed.last == "]", parts.count >= 6, numbers.count == parts.count else {
        sqlite3_result_error(ctx, "histogram_mean: not a storage-format histogram array ([b0,…,b(n-1),sum,log_sum,log_sum_squares,lo,hi]) nor a histogram_summary", -1)
        return
    }
    let n = numbers.count - 5
    let total = numbers[0..<n].reduce(0, +)
    let sum = numbers[n]
    guard sum != -1, total > 0 else { sqlite3_result_null(ctx); return }
    sqlite3_result_double(ctx, sum / total)
}

extension Statement {
    /// Passes the bytes of column `index` of the current row to `body`; the pointer does not escape.
    func withColumnBytes<R>(_ index: Int32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let blob = sqlite3_column_blob(handle, index) else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: blob, count: count))
    }
}

// MARK: - histogram_summary, histogram_percentile (bound-based statistics; docs/sql.md)

/// Per-group state of `histogram_summary(ping_id, name, revision [, n])`: the element-wise sums of
/// `histogram_sum` (kept in `sum`, so rows are read exactly as `histogram_sum` reads them) plus the lower bounds
/// that every summed ping's revision gives for the layout.
final class HistogramSummaryState {
    let sum = HistogramSumState()
    var name = ""
    var definitions: StoreHistogramDefinitions?
    var bounds = GroupBounds()
    /// The revision argument of the last summed row whose bounds were looked up (`nil` = none yet or SQL NULL),
    /// so runs of pings from one revision cost one byte comparison each.
    var lastRevision: [UInt8]?
    var lastRevisionWasNull = false
}

private func summaryState(_ ctx: OpaquePointer?, create: Bool) -> HistogramSummaryState? {
    guard let slot = sqlite3_aggregate_context(ctx, create ? Int32(MemoryLayout<UnsafeMutableRawPointer?>.size) : 0)?
        .assumingMemoryBound(to: UnsafeMutableRawPointer?.self) else { return nil }
    if let existing = slot.pointee { return Unmanaged<HistogramSummaryState>.fromOpaque(existing).takeUnretainedValue() }
    guard create else { return nil }
    let state = HistogramSummaryState()
    slot.pointee = Unmanaged.passRetained(state).toOpaque()
    return state
}

private func releaseSummaryState(_ ctx: OpaquePointer?) {
    guard let slot = sqlite3_aggregate_context(ctx, 0)?.assumingMemoryBound(to: UnsafeMutableRawPointer?.self),
          let existing = slot.pointee else { return }
    Unmanaged<HistogramSummaryState>.fromOpaque(existing).release()
    slot.pointee = nil
}

/// First step of a group: checks the name, refuses several layouts without `n`, then lets `histogram_sum`'s
/// `start` pick the column (arguments 0, 1 and, when given, `n`).
private func startSummary(_ state: HistogramSummaryState, _ ctx: OpaquePointer?, _ argc: Int32,
                          _ argv: UnsafeMutablePointer<OpaquePointer?>) {
    state.sum.started = true
    guard let context = sqlite3_user_data(ctx).map({ Unmanaged<HistogramSQLContext>.fromOpaque($0).takeUnretainedValue() }) else { return }
    guard let name = text(argv[1]) else { state.sum.error = "histogram_summary: the histogram name must be text"; return }
    state.name = name
    do {
        state.definitions = try context.definitions()
        let columns = try context.known(name, function: "histogram_summary")
        if argc < 4 && columns.count > 1 {
            state.sum.error = "histogram_summary: \(name) has several layouts (bucket counts \(columns.map { String($0.bucketCount) }.joined(separator: " and "))); "
                + "pass the bucket count, histogram_summary(ping_id, '\(name)', revision, n), or GROUP BY histogram_layout(ping_id, '\(name)')"
            return
        }
    } catch {
        state.sum.error = "\(error)"
        return
    }
    var forwarded: [OpaquePointer?] = argc >= 4 ? [argv[0], argv[1], argv[3]] : [argv[0], argv[1]]
    forwarded.withUnsafeMutableBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return }
        start(state.sum, ctx, Int32(buffer.count), base)
    }
}

/// Looks up the bounds of the summed row's revision (argument 2) unless the group already has a reason or the
/// revision is the previous row's.
private func noteRevision(_ state: HistogramSummaryState, _ value: OpaquePointer?) {
    guard !state.bounds.isUnavailable, let definitions = state.definitions, let column = state.sum.column else { return }
    var revision: String?
    if sqlite3_value_type(value) == SQLITE_NULL {
        if state.lastRevisionWasNull { return }
        state.lastRevisionWasNull = true
        state.lastRevision = nil
    } else {
        let count = Int(sqlite3_value_bytes(value))
        let bytes = sqlite3_value_text(value).map { UnsafeBufferPointer(start: $0, count: count) } ?? UnsafeBufferPointer(start: nil, count: 0)
        if !state.lastRevisionWasNull, let last = state.lastRevision, last.elementsEqual(bytes) { return }
        state.lastRevisionWasNull = false
        state.lastRevision = Array(bytes)
        revision = String(decoding: bytes, as: UTF8.self)
    }
    let lookup = definitions.bounds(forHistogram: state.name, revisionURL: revision, bucketCount: column.bucketCount)
    state.bounds.add(lookup, name: state.name, revisionURL: revision)
}

private let histogramSummaryStep: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, argc, argv in
    guard let argv, let state = summaryState(ctx, create: true) else { sqlite3_result_error_nomem(ctx); return }
    if !state.sum.started { startSummary(state, ctx, argc, argv) }
    guard state.sum.error == nil, sqlite3_value_type(argv[0]) == SQLITE_INTEGER else { return }
    if let row = state.sum.row(of: sqlite3_value_int64(argv[0])) {
        let summedBefore = state.sum.pings
        state.sum.add(row: row)
        if state.sum.pings > summedBefore { noteRevision(state, argv[2]) }
    }
}

/// JSON number text of a finite double, or `null`.
private func jsonNumber(_ value: Double?) -> String {
    guard let value, value.isFinite else { return "null" }
    return value.description
}

private let histogramSummaryFinal: @convention(c) (OpaquePointer?) -> Void = { ctx in
    defer { releaseSummaryState(ctx) }
    guard let state = summaryState(ctx, create: false) else { sqlite3_result_null(ctx); return }
    if let error = state.sum.error {
        let message = error.hasPrefix("histogram_sum:") ? "histogram_summary:" + error.dropFirst("histogram_sum:".count) : error
        sqlite3_result_error(ctx, message, -1)
        return
    }
    guard state.sum.pings > 0 else { sqlite3_result_null(ctx); return }
    let counts = state.sum.sums.buckets
    let definition = state.bounds.definition
    var out = "{\"name\":" + jsonQuoted(state.name)
    out += ",\"buckets\":[" + counts.map { String($0) }.joined(separator: ",") + "]"
    out += ",\"pings\":\(state.sum.pings)"
    out += ",\"kind\":" + (definition.map { jsonQuoted($0.kind.rawValue) } ?? "null")
    out += ",\"lower_bounds\":" + (definition.map { "[" + $0.bucketBounds.map { String($0) }.joined(separator: ",") + "]" } ?? "null")
    if let reason = state.bounds.reason {
        out += ",\"reason\":" + jsonQuoted(reason.description)
        if let context = sqlite3_user_data(ctx).map({ Unmanaged<HistogramSQLContext>.fromOpaque($0).takeUnretainedValue() }) {
            context.noteBoundsWarning("histogram_summary(\(state.name)): \(reason)")
        }
    } else {
        out += ",\"reason\":null"
    }
    let bounds = definition?.bucketBounds
    out += ",\"mean\":" + jsonNumber(bounds.flatMap { BoundStatistics.mean(counts: counts, lowerBounds: $0) })
    out += ",\"p50\":" + jsonNumber(bounds.flatMap { BoundStatistics.percentile(50, counts: counts, lowerBounds: $0) })
    out += ",\"p95\":" + jsonNumber(bounds.flatMap { BoundStatistics.percentile(95, counts: counts, lowerBounds: $0) })
    out += "}"
    sqlite3_result_text(ctx, out, -1, csqlite_transient())
}

/// The fields of a `histogram_summary` result the scalar functions need.
private struct SummaryFields: Decodable {
    let buckets: [Int64]
    let lowerBounds: [Int64]?
    enum CodingKeys: String, CodingKey { case buckets, lowerBounds = "lower_bounds" }

    /// Nil when `json` is not a `histogram_summary` result: also when its lower bounds are not one per bucket and
    /// non-decreasing (a hand-edited summary), rather than computing from them.
    static func decode(_ json: String) -> SummaryFields? {
        guard let fields = try? JSONDecoder().decode(SummaryFields.self, from: Data(json.utf8)) else { return nil }
        if let bounds = fields.lowerBounds {
            guard bounds.count == fields.buckets.count, zip(bounds, bounds.dropFirst()).allSatisfy({ $0 <= $1 }) else { return nil }
        }
        return fields
    }
}

/// `histogram_mean(summary)` for a `histogram_summary` result: `BoundStatistics.mean`; NULL without bounds.
private func summaryMean(_ ctx: OpaquePointer?, _ json: String) {
    guard let fields = SummaryFields.decode(json) else {
        sqlite3_result_error(ctx, "histogram_mean: not a histogram_summary result or a storage-format histogram array", -1)
        return
    }
    guard let bounds = fields.lowerBounds, let mean = BoundStatistics.mean(counts: fields.buckets, lowerBounds: bounds) else {
        sqlite3_result_null(ctx); return
    }
    sqlite3_result_double(ctx, mean)
}

/// `histogram_percentile(summary, p)`: the p-th percentile (p a percentage, 0…100) of a `histogram_summary`
/// result (`BoundStatistics.percentile`); NULL when either argument is NULL, the summary has no bounds or its
/// total count is 0. Errors for p outside 0…100 or a first argument that is not a summary.
private let histogramPercentile: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, _, argv in
    guard let argv, let json = text(argv[0]), sqlite3_value_type(argv[1]) != SQLITE_NULL else { sqlite3_result_null(ctx); return }
    let type = sqlite3_value_numeric_type(argv[1])
    let percent = sqlite3_value_double(argv[1])
    guard type == SQLITE_INTEGER || type == SQLITE_FLOAT, percent >= 0, percent <= 100 else {
        sqlite3_result_error(ctx, "histogram_percentile: p must be a percentage between 0 and 100 (e.g. 95 for the 95th percentile)", -1)
        return
    }
    guard json.first == "{", let fields = SummaryFields.decode(json) else {
        sqlite3_result_error(ctx, "histogram_percentile: the first argument must be a histogram_summary result", -1)
        return
    }
    guard let bounds = fields.lowerBounds,
          let value = BoundStatistics.percentile(percent, counts: fields.buckets, lowerBounds: bounds) else {
        sqlite3_result_null(ctx); return
    }
    sqlite3_result_double(ctx, value)
}

/// `histogram_kind(name, revision, n)`: the kind (`exponential`, `linear`, `boolean`, `flag`, `enumerated`, `count`,
/// `categorical`) of histogram `name` with `n` buckets as the revision URL `revision` defines it, through the histogram
/// cache the store remembers; NULL when no definition is available (no cache, revision not cached, unknown name,
/// another layout). Used by `queries/job_histogram_distribution.sql`.
private let histogramKind: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, _, argv in
    guard let argv, let name = text(argv[0]), sqlite3_value_type(argv[2]) == SQLITE_INTEGER,
          let context = sqlite3_user_data(ctx).map({ Unmanaged<HistogramSQLContext>.fromOpaque($0).takeUnretainedValue() }) else {
        sqlite3_result_null(ctx); return
    }
    do {
        let lookup = try context.definitions().bounds(forHistogram: name, revisionURL: text(argv[1]),
                                                       bucketCount: Int(sqlite3_value_int64(argv[2])))
        guard case let .bounds(definition) = lookup else { sqlite3_result_null(ctx); return }
        sqlite3_result_text(ctx, definition.kind.rawValue, -1, csqlite_transient())
    } catch {
        sqlite3_result_error(ctx, "\(error)", -1)
    }
}
