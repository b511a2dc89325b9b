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
    public init(selection: JobSelection = JobSelection(), mappers: Int = ProcessInfo.processInfo.activeProcessorCount,
                failFast: Bool = false, combineEnabled: Bool = true) {
        self.selection = selection
        self.mappers = max(1, mappers)
        self.failFast = failFast
        self.combineEnabled = combineEnabled
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

/// Runs jobs over a store: one child task per partition (groups of distinct dimension tuples, packed greedily
/// by ping count), each mapping and combining into its own accumulators; the parent merges and reduces.
public enum JobRunner {
    /// A key's list is combined when it reaches this many values (`spec/storage.md` §5).
    public static let combineThreshold = 50

    /// Runs `job` over the store at `storePath`.
    /// - Throws: `JobError.mapFailed` (fail-fast), `.reduceFailed`, `.badFilter`, `StoreError`, `CancellationError`.
    public static func run<J: Job>(_ job: J, storePath: String, options: JobOptions = JobOptions()) async throws -> JobResult {
        let plan = try planPartitions(storePath: storePath, options: options)
        let useCombine = job.hasCombine && options.combineEnabled && !job.isMapOnly
        let results = try await withThrowingTaskGroup(of: (Int, PartitionOutput<J.Key, J.Value>).self) { group in
            for (index, tuples) in plan.partitions.enumerated() {
                group.addTask {
                    (index, try mapPartition(job, storePath: storePath, columns: plan.columns, tuples: tuples,
                                             whereSQL: options.selection.whereSQL, failFast: options.failFast,
                                             combine: useCombine))
                }
            }
            var outputs = [PartitionOutput<J.Key, J.Value>?](repeating: nil, count: plan.partitions.count)
            for try await (index, output) in group { outputs[index] = output }
            return outputs.compactMap { $0 }
        }
        var context = OutputContext()
        var combineCalls = results.reduce(0) { $0 + $1.combineCalls }
        if job.isMapOnly {
            for output in results { for (key, value) in output.pairs { context.write(key, value) } }
        } else {
            var lists: [J.Key: [J.Value]] = [:]
            var order: [J.Key] = []
            for output in results {
                for (key, values) in output.lists {
                    if lists[key] == nil { order.append(key) }
                    var list = lists.removeValue(forKey: key) ?? []
                    list.append(contentsOf: values)
                    if useCombine && list.count >= combineThreshold {
                        list = [try combined(job, key, list)]
                        combineCalls += 1
                    }
                    lists[key] = list
                }
            }
            job.setupReduce(&context)
            for key in order.sorted(by: { $0.description < $1.description }) {
                do { try job.reduce(key: key, values: lists[key]!, into: &context) } catch {
                    throw JobError.reduceFailed(key: key.description, message: "\(error)")
                }
            }
        }
        return JobResult(records: context.records, fieldSeparator: context.fieldSeparator,
                         recordSeparator: context.recordSeparator,
                         pingsMapped: results.reduce(0) { $0 + $1.pingsMapped },
                         badPings: results.flatMap(\.badPings), combineCalls: combineCalls,
                         partitions: plan.partitions.count)
    }

    private static func combined<J: Job>(_ job: J, _ key: J.Key, _ values: [J.Value]) throws -> J.Value {
        do { return try job.combine(key: key, values: values) } catch {
            throw JobError.reduceFailed(key: key.description, message: "combine: \(error)")
        }
    }

    struct PartitionOutput<Key: Hashable & Sendable, Value: Sendable>: Sendable {
        var pairs: [(Key, Value)] = []
        var lists: [(Key, [Value])] = []
        var pingsMapped = 0
        var badPings: [BadPing] = []
        var combineCalls = 0
    }

    struct Plan: Sendable {
        var columns: [String]
        var partitions: [[[String]]]
    }

    /// Finds the distinct dimension tuples the selection allows (dimension indexes only; no payload is read)
    /// and packs them into at most `options.mappers` partitions by ping count (greedy, largest first).
    static func planPartitions(storePath: String, options: JobOptions) throws -> Plan {
        let store = try Store(path: storePath, create: false, readOnly: true)
        let columns = store.schema.fieldNames
        var allowed: [(Int, AllowedValues)] = []
        if let filter = options.selection.filter?.asFilter {
            for dimension in filter.dimensions {
                guard let index = columns.firstIndex(of: dimension.fieldName) else {
                    throw JobError.badFilter("dimension '\(dimension.fieldName)' is not in the store's schema (\(columns.joined(separator: ", ")))")
                }
                if dimension.allowedValues != .any { allowed.append((index, dimension.allowedValues)) }
            }
        }
        let quoted = columns.map(Store.quote).joined(separator: ", ")
        var sql = "SELECT \(quoted), count(*) FROM pings"
        if let whereSQL = options.selection.whereSQL, !whereSQL.isEmpty { sql += " WHERE (\(whereSQL))" }
        sql += " GROUP BY \(quoted)"
        let statement = try store.connection.prepare(sql)
        var tuples: [([String], Int)] = []
        while try statement.step() {
            let values = columns.indices.map { statement.columnText(Int32($0)) ?? "" }
            guard allowed.allSatisfy({ $0.1.allows(values[$0.0]) }) else { continue }
            tuples.append((values, Int(statement.columnInt64(Int32(columns.count)))))
        }
        tuples.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0.lexicographicallyPrecedes($1.0) }
        let count = min(options.mappers, tuples.count)
        var partitions = [[[String]]](repeating: [], count: count)
        var sizes = [Int](repeating: 0, count: count)
        for (values, pings) in tuples {
            let target = sizes.indices.min { sizes[$0] < sizes[$1] }!
            partitions[target].append(values)
            sizes[target] += pings
        }
        return Plan(columns: columns, partitions: partitions)
    }

    /// One mapper: reads its dimension tuples' pings in `ping_id` order, maps, combines into its own lists.
    static func mapPartition<J: Job>(_ job: J, storePath: String, columns: [String], tuples: [[String]],
                                     whereSQL: String?, failFast: Bool, combine: Bool) throws -> PartitionOutput<J.Key, J.Value> {
        let store = try Store(path: storePath, create: false, readOnly: true)
        var sql = "SELECT document_id, payload FROM pings WHERE "
            + columns.enumerated().map { "\(Store.quote($0.element)) = ?\($0.offset + 1)" }.joined(separator: " AND ")
        if let whereSQL, !whereSQL.isEmpty { sql += " AND (\(whereSQL))" }
        sql += " ORDER BY ping_id"
        let statement = try store.connection.prepare(sql)
        var output = PartitionOutput<J.Key, J.Value>()
        var lists: [J.Key: [J.Value]] = [:]
        var order: [J.Key] = []
        for tuple in tuples {
            statement.reset()
            for (index, value) in tuple.enumerated() { try statement.bind(value, at: Int32(index + 1)) }
            while try statement.step() {
                try Task.checkCancellation()
                let ping = JobPing(documentID: statement.columnText(0) ?? "", dimensions: tuple,
                                   payloadText: statement.columnText(1) ?? "")
                output.pingsMapped += 1
                var context = MapContext<J.Key, J.Value>()
                do { try job.map(ping, into: &context) } catch {
                    if failFast { throw JobError.mapFailed(documentID: ping.documentID, message: "\(error)") }
                    output.badPings.append(BadPing(documentID: ping.documentID, message: "\(error)"))
                    continue
                }
                if job.isMapOnly { output.pairs.append(contentsOf: context.pairs); continue }
                for (key, value) in context.pairs {
                    if lists[key] == nil { order.append(key) }
                    var list = lists.removeValue(forKey: key) ?? []
                    list.append(value)
                    if combine && list.count >= combineThreshold {
                        list = [try combined(job, key, list)]
                        output.combineCalls += 1
                    }
                    lists[key] = list
                }
            }
        }
        output.lists = order.map { ($0, lists[$0]!) }
        return output
    }
}

/// The dimension schema of the store at `path`.
func storeSchema(_ path: String) throws -> DimensionSchema {
    try Store(path: path, create: false, readOnly: true).schema
}
