import CSQLite
import Foundation

/// The histogram SQL functions of one store's connection (`docs/sql.md`). Holds the mapped columns, opened on
/// first use and dropped when the store's columns change (`Store.histogramColumnsChanged`).
///
/// - Important: Not `Sendable`; used on the connection's thread only (SQLite calls back on the caller's thread).
final class HistogramSQLContext {
    unowned let store: Store
    private var columns: HistogramColumns?

    init(store: Store) { self.store = store }

    func invalidate() { columns = nil }

    /// The mapped columns; never repairs (a callback must not write): damaged columns are an error.
    func current() throws -> HistogramColumns {
        if let columns { return columns }
        let opened = try HistogramColumns.open(store: store, repair: false)
        columns = opened
        return opened
    }

    /// Registers `histogram_sum`, `histogram_count` and `histogram_mean` on `connection`.
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
    }

    private func check(_ rc: Int32, _ connection: Connection, _ name: String) throws {
        guard rc == SQLITE_OK else { throw StoreError.sqlite(code: rc, message: connection.lastMessage, sql: "register \(name)") }
    }
}

/// Per-group state of `histogram_sum`: element-wise sums over the rows of one column (one layout).
final class HistogramSumState {
    var column: HistogramColumn?
    var started = false
    var buckets: [Int64] = []
    /// Per statistic: integer sum, double sum, whether any input was a double, whether any input was absent.
    var integerStats = [Int64](repeating: 0, count: 5)
    var realStats = [Double](repeating: 0, count: 5)
    var statIsReal = [Bool](repeating: false, count: 5)
    var statAbsent = [Bool](repeating: false, count: 5)
    var pings = 0
    var hint = 0
    var error: String?
    /// `histogram_count`: every layout of the name, with a lookup hint each.
    var allColumns: [HistogramColumn] = []
    var hints: [Int] = []

    func add(row: Int) {
        guard let column else { return }
        let counts = column.counts(row: row)
        for bucketIndex in 0..<buckets.count {
            let (value, overflow) = buckets[bucketIndex].addingReportingOverflow(counts[bucketIndex])
            if overflow { error = "histogram_sum: bucket \(bucketIndex) of \(column.name) overflows int64"; return }
            buckets[bucketIndex] = value
        }
        for statIndex in 0..<5 {
            switch column.statistic(row: row, index: statIndex) {
            case let .integer(value):
                if value == -1 { statAbsent[statIndex] = true; continue }
                let (sum, overflow) = integerStats[statIndex].addingReportingOverflow(value)
                if overflow { statIsReal[statIndex] = true } else { integerStats[statIndex] = sum }
                realStats[statIndex] += Double(value)
            case let .real(value):
                statIsReal[statIndex] = true
                realStats[statIndex] += value
            }
        }
        pings += 1
    }

    /// `[b0…b(n-1), sum, log_sum, log_sum_squares, sum_squares_lo, sum_squares_hi]` as JSON text.
    var json: String {
        var out = "["
        for value in buckets { out += String(value); out += "," }
        for statIndex in 0..<5 {
            if statAbsent[statIndex] { out += "-1" }
            else if statIsReal[statIndex] { out += realStats[statIndex].description }
            else { out += String(integerStats[statIndex]) }
            out += statIndex == 4 ? "]" : ","
        }
        return out
    }
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
    guard let name = text(argv[1]) else { state.error = "histogram_sum: the histogram name must be text"; return }
    let columns: [HistogramColumn]
    do { columns = try context.current().column(named: name) } catch { state.error = "\(error)"; return }
    if argc >= 3 {
        let wanted = Int(sqlite3_value_int64(argv[2]))
        state.column = columns.first { $0.bucketCount == wanted }
    } else if columns.count > 1 {
        state.error = "histogram_sum: \(name) has several layouts (bucket counts \(columns.map { String($0.bucketCount) }.joined(separator: " and "))); "
            + "they cannot be added position by position: pass the bucket count, histogram_sum(ping_id, '\(name)', n), or GROUP BY histogram_layout(ping_id, '\(name)')"
    } else {
        state.column = columns.first
    }
    if let column = state.column { state.buckets = Array(repeating: 0, count: column.bucketCount) }
}

private let histogramSumStep: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, argc, argv in
    guard let argv, let state = sumState(ctx, create: true) else { sqlite3_result_error_nomem(ctx); return }
    if !state.started { start(state, ctx, argc, argv) }
    guard state.error == nil, let column = state.column, sqlite3_value_type(argv[0]) == SQLITE_INTEGER else { return }
    if let row = column.row(of: sqlite3_value_int64(argv[0]), hint: state.hint) {
        state.add(row: row)
        state.hint = row + 1
    }
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
        do { state.allColumns = try context.current().column(named: name) } catch { state.error = "\(error)"; return }
        state.hints = Array(repeating: 0, count: state.allColumns.count)
    }
    guard state.error == nil, sqlite3_value_type(argv[0]) == SQLITE_INTEGER else { return }
    let pingID = sqlite3_value_int64(argv[0])
    for (index, column) in state.allColumns.enumerated() {
        if let row = column.row(of: pingID, hint: state.hints[index]) { state.hints[index] = row + 1; state.pings += 1; break }
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
        for column in try context.current().column(named: name) where column.row(of: pingID) != nil {
            sqlite3_result_int64(ctx, Int64(column.bucketCount)); return
        }
        sqlite3_result_null(ctx)
    } catch {
        sqlite3_result_error(ctx, "\(error)", -1)
    }
}

/// `histogram_mean(summed)`: the `sum` statistic divided by the total count of a storage-format array text
/// (a `histogram_sum` result); NULL when the sum is absent (-1), the count is 0, or the argument is NULL.
private let histogramMean: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = { ctx, _, argv in
    guard let argv, let json = text(argv[0]) else { sqlite3_result_null(ctx); return }
    let parts = json.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard parts.count >= 6 else { sqlite3_result_error(ctx, "histogram_mean: not a storage-format histogram array", -1); return }
    let n = parts.count - 5
    var total = 0.0
    for part in parts[0..<n] { total += Double(part) ?? 0 }
    guard let sum = Double(parts[n]), sum != -1, total > 0 else { sqlite3_result_null(ctx); return }
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
