import Foundation
import TelemetryCore
import TelemetryStore

/// Which pings a job reads: a seed filter (sanitised, `spec/storage.md` §4) and/or SQL on dimension columns.
public struct JobSelection: Sendable {
    /// A job filter; list values are sanitised before use. Dimensions are matched by field name.
    public var filter: DimensionSchema?
    /// An SQL expression over the `pings` columns (dimension columns, typed info columns), e.g. `os = 'WINNT'`.
    public var whereSQL: String?
    public init(filter: DimensionSchema? = nil, whereSQL: String? = nil) {
        self.filter = filter
        self.whereSQL = whereSQL
    }
}

/// How to run a job.
public struct JobOptions: Sendable {
    public var selection: JobSelection
    /// Number of mapper partitions (default: the number of cores).
    public var mappers: Int
    /// Stop at the first ping whose `map` throws (otherwise report and continue).
    public var failFast: Bool
    /// Call `combine` at the threshold (tests turn it off to compare).
    public var combineEnabled: Bool
    /// Fewest pings worth a partition of their own (small selections run in fewer partitions than `mappers`).
    public var minimumPartitionPings: Int
    public init(selection: JobSelection = JobSelection(), mappers: Int = ProcessInfo.processInfo.activeProcessorCount,
                failFast: Bool = false, combineEnabled: Bool = true, minimumPartitionPings: Int = 1024) {
        self.selection = selection
        self.mappers = max(1, mappers)
        self.failFast = failFast
        self.combineEnabled = combineEnabled
        self.minimumPartitionPings = max(1, minimumPartitionPings)
    }
}

/// A ping on which `map` threw.
public struct BadPing: Sendable, Equatable {
    public var documentID: String
    public var message: String
}

/// The outcome of a run: output records, separators chosen by `setupReduce`, counts.
public struct JobResult: Sendable {
    public var records: [OutputRecord]
    public var fieldSeparator: String
    public var recordSeparator: String
    /// Pings given to `map`.
    public var pingsMapped: Int
    /// Pings on which `map` threw, in partition order.
    public var badPings: [BadPing]
    /// Number of `combine` calls.
    public var combineCalls: Int
    /// Number of partitions that ran.
    public var partitions: Int

    /// Summary line for stderr.
    public var summary: String {
        "\(pingsMapped) pings mapped in \(partitions) partitions, \(badPings.count) bad, \(records.count) records written"
    }
}

/// Runs jobs over a store (docs/jobs.md "Execution"): the pings are selected on the store's `PingIndex` (filter
/// and `--where` on dimension and info columns, before any payload is touched), split into contiguous runs of
/// `ping_id` order, one child task per run mapping and combining into its own lists; the parent merges and reduces.
public enum JobRunner {
    /// A key's list is combined when it reaches this many values (`spec/storage.md` §5).
    public static let combineThreshold = 50
    /// Runs `job` over the store at `storePath`.
    /// - Throws: `JobError.mapFailed` (fail-fast), `.reduceFailed`, `.badFilter`, `StoreError`, `CancellationError`.
    public static func run<J: Job>(_ job: J, storePath: String, options: JobOptions = JobOptions()) async throws -> JobResult {
        try reduce(job, try await gather(job, storePath: storePath, options: options))
    }

    /// What map and combine left: per key (first-seen order) its list of values, or a map-only job's pairs.
    struct Gathered<Key: Hashable & Sendable, Value: Sendable>: Sendable {
        var pairs: [(Key, Value)] = []
        var keys: [Key] = []
        var lists: [[Value]] = []
        var slots: [Key: Int] = [:]
        var pingsMapped = 0
        var badPings: [BadPing] = []
        var combineCalls = 0
        var partitions = 0

        /// Appends `values` to `key`'s list, combining at the threshold when `job` combines.
        mutating func add<J: Job>(_ job: J, key: Key, values: [Value], combine: Bool) throws where J.Key == Key, J.Value == Value {
            guard let slot = slots[key] else {
                slots[key] = lists.count; keys.append(key); lists.append(values)
                return
            }
            lists[slot].append(contentsOf: values)
            if combine && lists[slot].count >= combineThreshold {
                lists[slot] = [try combined(job, key, lists[slot])]
                combineCalls += 1
            }
        }
    }

    /// Map and combine over the selected pings: the partitions' lists concatenated in partition order.
    static func gather<J: Job>(_ job: J, storePath: String, options: JobOptions) async throws -> Gathered<J.Key, J.Value> {
        let (index, rows) = try select(storePath: storePath, options: options)
        let partitions = split(rows, into: options.mappers, minimum: options.minimumPartitionPings)
        let histograms = SharedHistogramColumns(storePath: storePath)
        let useCombine = usesCombine(job, options)
        let results = try await withThrowingTaskGroup(of: (Int, PartitionOutput<J.Key, J.Value>).self) { group in
            for (number, part) in partitions.enumerated() {
                group.addTask {
                    (number, try mapPartition(job, index: index, rows: part, reader: PingReader(storePath: storePath, histograms: histograms),
                                              failFast: options.failFast, combine: useCombine))
                }
            }
            var outputs = [PartitionOutput<J.Key, J.Value>?](repeating: nil, count: partitions.count)
            for try await (number, output) in group { outputs[number] = output }
            return outputs.compactMap { $0 }
        }
        var gathered = Gathered<J.Key, J.Value>()
        gathered.combineCalls = results.reduce(0) { $0 + $1.combineCalls }
        gathered.pingsMapped = results.reduce(0) { $0 + $1.pingsMapped }
        gathered.badPings = results.flatMap(\.badPings)
        gathered.partitions = partitions.count
        if job.isMapOnly {
            for output in results { gathered.pairs.append(contentsOf: output.pairs) }
        } else {
            for output in results {
                for (key, values) in zip(output.keys, output.lists) { try gathered.add(job, key: key, values: values, combine: useCombine) }
            }
        }
        return gathered
    }

    static func usesCombine<J: Job>(_ job: J, _ options: JobOptions) -> Bool {
        job.hasCombine && options.combineEnabled && !job.isMapOnly
    }

    /// The final step: a map-only job's pairs as records, else `setupReduce` and `reduce` per key in key-text order.
    static func reduce<J: Job>(_ job: J, _ gathered: Gathered<J.Key, J.Value>) throws -> JobResult {
        var context = OutputContext()
        if job.isMapOnly {
            for (key, value) in gathered.pairs { context.write(key, value) }
        } else {
            job.setupReduce(&context)
            let keys = gathered.keys
            let order = keys.indices.sorted { keys[$0].description < keys[$1].description }
            for slot in order {
                do { try job.reduce(key: keys[slot], values: gathered.lists[slot], into: &context) } catch {
                    throw JobError.reduceFailed(key: keys[slot].description, message: "\(error)")
                }
            }
        }
        return JobResult(records: context.records, fieldSeparator: context.fieldSeparator,
                         recordSeparator: context.recordSeparator, pingsMapped: gathered.pingsMapped,
                         badPings: gathered.badPings, combineCalls: gathered.combineCalls, partitions: gathered.partitions)
    }

    static func combined<J: Job>(_ job: J, _ key: J.Key, _ values: [J.Value]) throws -> J.Value {
        do { return try job.combine(key: key, values: values) } catch {
            throw JobError.reduceFailed(key: key.description, message: "combine: \(error)")
        }
    }

    struct PartitionOutput<Key: Hashable & Sendable, Value: Sendable>: Sendable {
        var pairs: [(Key, Value)] = []
        var keys: [Key] = []
        var lists: [[Value]] = []
        var pingsMapped = 0
        var badPings: [BadPing] = []
        var combineCalls = 0
    }

    /// The store's ping index and the rows (ascending `ping_id`) the selection keeps.
    static func select(storePath: String, options: JobOptions) throws -> (PingIndex, [Int32]) {
        try PlanningConnection.with(storePath: storePath) { store in
            let index = try PingIndex.current(store: store)
            do {
                return (index, try index.select(filter: options.selection.filter, whereSQL: options.selection.whereSQL, store: store))
            } catch let error as PingIndexError {
                throw JobError.badFilter(error.description)
            }
        }
    }

    /// Splits `rows` into at most `count` contiguous runs of near-equal length (at least `minimum` each, so
    /// small selections run in one partition).
    static func split(_ rows: [Int32], into count: Int, minimum: Int) -> [ArraySlice<Int32>] {
        let parts = max(1, min(count, rows.count / max(1, minimum)))
        return (0..<parts).map { part in rows[(rows.count * part / parts)..<(rows.count * (part + 1) / parts)] }
    }

    /// One mapper: maps its rows in `ping_id` order and combines into its own lists.
    static func mapPartition<J: Job>(_ job: J, index: PingIndex, rows: ArraySlice<Int32>, reader: PingReader,
                                     failFast: Bool, combine: Bool) throws -> PartitionOutput<J.Key, J.Value> {
        var output = PartitionOutput<J.Key, J.Value>()
        var slots: [J.Key: Int] = [:]
        // The last few keys and their slots: most pings emit one of a handful of keys, found without hashing.
        var recent: [(key: J.Key, slot: Int)] = []
        let ping = JobPing(index: index, reader: reader)
        var context = MapContext<J.Key, J.Value>()
        context.pairs.reserveCapacity(1024)
        for (position, row) in rows.enumerated() {
            if position & 1023 == 0 {
                try Task.checkCancellation()
                context.pairs.removeAll(keepingCapacity: true)   // pairs of earlier pings, dropped in bulk
            }
            let first = context.pairs.count
            ping.move(to: Int(row))
            output.pingsMapped += 1
            do { try job.map(ping, into: &context) } catch {
                if context.pairs.count > first { context.pairs.removeSubrange(first...) }   // a bad ping emits nothing
                // The store itself failing (damaged column files, a read error, a ping deleted meanwhile) is not
                // this ping's fault: it ends the job with one message instead of marking every ping bad.
                if error is HistogramColumnError || error is StoreError || error is JobError { throw error }
                if failFast { throw JobError.mapFailed(documentID: ping.documentID, message: "\(error)") }
                output.badPings.append(BadPing(documentID: ping.documentID, message: "\(error)"))
                continue
            }
            if job.isMapOnly { output.pairs.append(contentsOf: context.pairs[first...]); continue }
            for pairIndex in first..<context.pairs.count {
                let (key, value) = context.pairs[pairIndex]
                var known: Int?
                for entry in recent where entry.key == key { known = entry.slot; break }
                if known == nil {
                    known = slots[key]
                    if let slot = known {
                        if recent.count == 4 { recent.removeFirst() }
                        recent.append((key, slot))
                    }
                }
                guard let slot = known else {
                    slots[key] = output.lists.count; output.keys.append(key); output.lists.append([value])
                    continue
                }
                output.lists[slot].append(value)
                if combine && output.lists[slot].count >= combineThreshold {
                    output.lists[slot] = [try combined(job, key, output.lists[slot])]
                    output.combineCalls += 1
                }
            }
        }
        return output
    }
}

/// A read-only `Store` per store file kept open between job runs of one process (opening one costs ~0.35 ms,
/// a fifth of a small job), used only under its lock. Reopened when the path names another file (a store
/// deleted and made again).
final class PlanningConnection: @unchecked Sendable {   // `lock` serialises every use of `store`
    private let store: Store
    private let identity: (dev_t, ino_t)
    private let lock = NSLock()
    private static let cacheLock = NSLock()
    nonisolated(unsafe) private static var cache: [String: PlanningConnection] = [:]   // guarded by cacheLock

    private init(store: Store, identity: (dev_t, ino_t)) {
        self.store = store
        self.identity = identity
    }

    /// Runs `body` with the cached read-only store of `storePath` (opened on first use).
    /// - Throws: what `Store.init` or `body` throws.
    static func with<T>(storePath: String, _ body: (Store) throws -> T) throws -> T {
        var info = stat()
        guard stat(storePath, &info) == 0 else { throw StoreError.missingStore(path: storePath) }
        let identity = (info.st_dev, info.st_ino)
        let cached = cacheLock.withLock { cache[storePath] }
        let connection: PlanningConnection
        if let cached, cached.identity == identity {
            connection = cached
        } else {
            connection = PlanningConnection(store: try Store(path: storePath, create: false, readOnly: true), identity: identity)
            cacheLock.withLock {
                if cache.count >= 4 { cache.removeAll() }   // a few stores per process at most; each holds open files
                cache[storePath] = connection
            }
        }
        return try connection.lock.withLock { try body(connection.store) }
    }
}

/// The store's histogram columns, opened once per job run on first use and shared by the mappers; nil when the
/// store has no current columns (then histograms come from the payload). Cached per process by column state.
final class SharedHistogramColumns: @unchecked Sendable {   // `lock` guards `state`
    private let storePath: String
    private let lock = NSLock()
    private var state: Result<HistogramColumns?, Error>?
    private static let cacheLock = NSLock()
    nonisolated(unsafe) private static var cache: [String: HistogramColumns] = [:]   // guarded by cacheLock

    init(storePath: String) { self.storePath = storePath }

    func get() throws -> HistogramColumns? {
        try lock.withLock {
            if let state { return try state.get() }
            let result = Result { () throws -> HistogramColumns? in
                let store = try Store(path: storePath, create: false, readOnly: true)
                guard let text = try store.connection.scalarText("SELECT value FROM store_meta WHERE key = 'histogram_columns'") else { return nil }
                let key = storePath + "\u{0}" + text
                if let cached = Self.cacheLock.withLock({ Self.cache[key] }) { return cached }
                guard let columns = try? HistogramColumns.open(store: store, repair: false) else { return nil }
                Self.cacheLock.withLock { Self.cache = [key: columns] }
                return columns
            }
            state = result
            return try result.get()
        }
    }
}

/// One mapper's access to the store: payloads by `ping_id` (its own read-only connection, opened on first use)
/// and histogram rows with per-column lookup hints (ascending `ping_id` scans are O(1) per lookup).
///
/// - Important: Not `Sendable`; owned by one mapper.
final class PingReader {
    private let storePath: String
    private let shared: SharedHistogramColumns
    private var store: Store?
    private var payloadStatement: Statement?
    private var hints: [ObjectIdentifier: Int] = [:]
    private var rowIndexes: [ObjectIdentifier: HistogramRows] = [:]

    init(storePath: String, histograms: SharedHistogramColumns) {
        self.storePath = storePath
        shared = histograms
    }

    func payload(pingID: Int64) throws -> String {
        if payloadStatement == nil {
            let opened = try Store(path: storePath, create: false, readOnly: true)
            store = opened
            payloadStatement = try opened.connection.prepare("SELECT payload FROM pings WHERE ping_id = ?1")
        }
        guard let statement = payloadStatement else { return "" }
        statement.reset()
        try statement.bind(pingID, at: 1)
        guard try statement.step() else { throw JobError.pingMissing(pingID: pingID) }
        return statement.columnText(0) ?? ""
    }

    func columns() throws -> HistogramColumns? { try shared.get() }

    /// The histogram `name` of `pingID` from the columns (any layout), nil when the ping has none.
    func histogram(_ name: String, pingID: Int64, columns: HistogramColumns) throws -> StoredHistogram? {
        for column in columns.column(named: name) {
            let id = ObjectIdentifier(column)
            let rows: HistogramRows
            if let cached = rowIndexes[id] { rows = cached } else { rows = try column.rows(); rowIndexes[id] = rows }
            guard let row = rows.row(of: pingID, hint: hints[id] ?? 0) else { continue }
            hints[id] = row + 1
            return StoredHistogram(buckets: rows.counts(row: row), storedStatistics: rows.statistics(row: row))
        }
        return nil
    }
}

/// The dimension schema of the store at `path`.
func storeSchema(_ path: String) throws -> DimensionSchema {
    try Store(path: path, create: false, readOnly: true).schema
}
