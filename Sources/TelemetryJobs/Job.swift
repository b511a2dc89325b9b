import Foundation
import TelemetryConvert
import TelemetryCore
import TelemetryStore

/// A MapReduce job (`spec/storage.md` §5) with typed keys and values.
///
/// `map` is called once per ping; `combine` (when `hasCombine`) whenever a key's list reaches
/// `JobRunner.combineThreshold` values and must return one value that replaces the list; `reduce` is called
/// once per key, even with one value. A map-only job (`isMapOnly`) writes every pair `map` emits.
/// Results must never depend on whether `combine` ran, nor on the order in which a key's values arrive (partials of
/// several shards are merged in shard order, docs/jobs.md "Partial results").
/// Keys and values are `Codable`: a partial result (`telemetry job --partial`) carries them as JSON.
public protocol Job: Sendable {
    associatedtype Key: Hashable & Sendable & CustomStringConvertible & Codable
    associatedtype Value: Sendable & CustomStringConvertible & Codable

    /// When true, `reduce` is never called and each emitted pair is output in mapper order.
    var isMapOnly: Bool { get }
    /// When true, `combine` is called at the threshold.
    var hasCombine: Bool { get }
    /// Called once per ping. Throwing marks this ping bad (reported with its document id).
    func map(_ ping: JobPing, into context: inout MapContext<Key, Value>) throws
    /// Partial reduce; returns the one value that replaces `values`.
    func combine(key: Key, values: [Value]) throws -> Value
    /// Called once before the first `reduce`; may change the separators.
    func setupReduce(_ context: inout OutputContext)
    /// Called once per distinct key with all its values (after any combines).
    func reduce(key: Key, values: [Value], into context: inout OutputContext) throws
}

extension Job {
    public var isMapOnly: Bool { false }
    public var hasCombine: Bool { false }
    public func combine(key: Key, values: [Value]) throws -> Value { values[values.count - 1] }
    public func setupReduce(_ context: inout OutputContext) {}
    public func reduce(key: Key, values: [Value], into context: inout OutputContext) throws {
        for value in values { context.write(key, value) }
    }
}

/// Where `map` emits pairs.
public struct MapContext<Key: Hashable & Sendable, Value: Sendable> {
    var pairs: [(Key, Value)] = []
    public init() {}
    /// Emits one pair.
    public mutating func write(_ key: Key, _ value: Value) { pairs.append((key, value)) }
}

/// Where `reduce` (or a map-only job's pairs) write output records.
public struct OutputContext: Sendable {
    /// Field separator for TSV output (default TAB).
    public var fieldSeparator = "\t"
    /// Record separator for TSV output (default LF).
    public var recordSeparator = "\n"
    /// Records written so far: textual key and value.
    public private(set) var records: [OutputRecord] = []
    public init() {}
    /// Writes `str(key)` and `str(value)` as one record.
    public mutating func write(_ key: some CustomStringConvertible, _ value: some CustomStringConvertible) {
        records.append(OutputRecord(key: key.description, value: value.description))
    }
}

/// One output record in textual form.
public struct OutputRecord: Sendable, Equatable, Hashable {
    public var key: String
    public var value: String
    public init(key: String, value: String) { self.key = key; self.value = value }
}

/// What `map` sees of one ping: document id, dimensions, info fields, payload, histograms.
///
/// Dimensions and the indexed `info` fields come from the store's `PingIndex` (no payload read); the payload
/// JSON is fetched from the store only when asked for; histograms come from the store's histogram column
/// files when they are current (docs/sql.md), else from the payload.
///
/// - Important: Not `Sendable`, and valid only during the `map` call it is passed to: the runner moves one
///   instance from ping to ping. Copy out what you keep.
public final class JobPing {
    private let index: PingIndex?
    private let reader: PingReader?
    private var row = 0
    private let detached: (documentID: String, dimensions: [String], payloadText: String)?
    private var text: String?
    private var parsed: Result<JSONValue, PingParser.Rejection>?
    private var infoLookup: (field: String, column: Int?)?

    /// A ping outside any store (tests, tools): everything comes from the arguments; histograms from the payload.
    public init(documentID: String, dimensions: [String], payloadText: String) {
        detached = (documentID, dimensions, payloadText)
        index = nil
        reader = nil
    }

    init(index: PingIndex, reader: PingReader) {
        self.index = index
        self.reader = reader
        detached = nil
    }

    /// Moves to the ping at `row` of the index.
    @inline(__always) func move(to row: Int) {
        self.row = row
        text = nil
        parsed = nil
    }

    /// The ping's `ping_id` in the store (0 for a detached ping).
    public var pingID: Int64 { index?.pingIDs[row] ?? 0 }

    /// The document id (`spec/storage.md` §1 key).
    public var documentID: String { index?.documentID(row: row) ?? detached?.documentID ?? "" }

    /// The dimension column values in schema order (the seed's `dimensions`; sanitised forms such as
    /// `saved_session`). Allocates an array: prefer `dimension(_:)` in hot loops.
    public var dimensions: [String] {
        guard let index else { return detached?.dimensions ?? [] }
        return (0..<index.dimensionCount).map { index.value(row: row, column: $0) ?? "" }
    }

    /// Number of dimensions.
    public var dimensionCount: Int { index?.dimensionCount ?? detached?.dimensions.count ?? 0 }

    /// Dimension `position` (schema order, `0 ..< dimensionCount`).
    public func dimension(_ position: Int) -> String {
        guard let index else { return detached?.dimensions[position] ?? "" }
        return index.value(row: row, column: position) ?? ""
    }

    /// The dimension named `name` (schema field name), nil when the schema has none.
    public func dimension(named name: String) -> String? {
        guard let index, let column = index.columns.prefix(index.dimensionCount).firstIndex(of: name) else { return nil }
        return index.value(row: row, column: column) ?? ""
    }

    /// The top-level `info.<field>` as text (strings as they are, numbers and booleans in their JSON form), nil
    /// when absent or null. Indexed fields (`OS`, `version`, `arch`, `locale`, `revision`, `appUpdateChannel`)
    /// are read from the ping index; others from the payload.
    /// - Throws: `PingParser.Rejection` when the payload must be read and is not valid JSON.
    public func info(_ field: String) throws -> String? {
        if let index {
            if infoLookup?.field != field { infoLookup = (field, index.infoColumn(field: field)) }
            if let column = infoLookup?.column { return index.value(row: row, column: column) }
        }
        switch try payload()["info"]?[field] {
        case let .string(text)?: return text
        case let .int(number)?: return String(number)
        case let .double(number)?: return String(number)
        case let .bool(flag)?: return flag ? "true" : "false"
        case nil, .null?: return nil
        case let value?: return value.minimalJSON
        }
    }

    /// The payload JSON text exactly as stored (read from the store on first use).
    /// - Throws: `StoreError` when the store cannot be read.
    public var payloadText: String {
        get throws {
            if let text { return text }
            let loaded = try reader?.payload(pingID: pingID) ?? detached?.payloadText ?? ""
            text = loaded
            return loaded
        }
    }

    /// The raw payload bytes (UTF-8).
    public var payloadBytes: [UInt8] { get throws { Array(try payloadText.utf8) } }

    /// The payload, parsed on first use.
    /// - Throws: `PingParser.Rejection` when the payload is not valid JSON; `StoreError` when it cannot be read.
    public func payload() throws -> JSONValue {
        if parsed == nil {
            let source = try payloadText
            do throws(PingParser.Rejection) { parsed = .success(try JSONValue.parse(source)) } catch { parsed = .failure(error) }
        }
        return try parsed!.get()
    }

    /// The histogram `name` (top-level `histograms`, else `payload.histograms`), nil when the ping has none.
    /// From the column files when current (no payload read), else from the payload.
    public func histogram(_ name: String) throws -> StoredHistogram? {
        if let reader, let columns = try reader.columns() {
            return try reader.histogram(name, pingID: pingID, columns: columns)
        }
        return try PayloadHistograms.histograms(of: payload())[name]
    }

    /// The ping's histograms by name: top-level `histograms`, else `payload.histograms` (unified pings).
    /// From the column files when current, else from the payload. Visits every column: prefer `histogram(_:)`.
    public func histograms() throws -> [String: StoredHistogram] {
        if let reader, let columns = try reader.columns() {
            var result: [String: StoredHistogram] = [:]
            for name in columns.byName.keys {   // unsorted: a dictionary result; `names` would sort per ping
                if let histogram = try reader.histogram(name, pingID: pingID, columns: columns) { result[name] = histogram }
            }
            return result
        }
        return try PayloadHistograms.histograms(of: payload())
    }
}

/// A histogram in the storage format: bucket counts followed by five statistics.
public struct StoredHistogram: Sendable, Equatable {
    /// Bucket counts.
    public var buckets: [Int64]
    /// `sum`, `log_sum`, `log_sum_squares`, `sum_squares_lo`, `sum_squares_hi` as stored (integer or double;
    /// integer -1 = absent), for exact sums (`HistogramAccumulator`).
    public var storedStatistics: [HistogramStatistic]
    /// The five statistics as doubles (-1 = absent).
    public var statistics: [Double] {
        storedStatistics.map { statistic in
            switch statistic {
            case let .integer(value): Double(value)
            case let .real(value): value
            }
        }
    }
    /// True when `log_sum` and `log_sum_squares` are both -1: a non-exponential kind (linear, boolean,
    /// flag, enumerated), as the storage converter writes them.
    public var isLinearFamily: Bool {
        let statistics = statistics
        return statistics.count == 5 && statistics[1] == -1 && statistics[2] == -1
    }
    public init(buckets: [Int64], storedStatistics: [HistogramStatistic]) {
        self.buckets = buckets
        self.storedStatistics = storedStatistics
    }
    public init(buckets: [Int64], statistics: [Double]) {
        self.init(buckets: buckets, storedStatistics: statistics.map { $0.rounded() == $0 && abs($0) < 9.2e18 ? .integer(Int64($0)) : .real($0) })
    }

    /// This histogram as an accumulator state (one ping).
    /// - Throws: `HistogramAccumulatorError` (e.g. a statistic that is not finite).
    public func accumulated() throws -> HistogramAccumulator {
        try HistogramAccumulator(buckets: buckets, statistics: storedStatistics)
    }

    /// Parses the storage-format array; nil when it has fewer than 6 elements, non-integer buckets or non-numeric
    /// statistics (the column files' rule: such an array is not stored as a histogram).
    public init?(_ value: JSONValue) {
        guard let array = value.arrayValue, array.count >= 6 else { return nil }
        var buckets: [Int64] = []
        buckets.reserveCapacity(array.count - 5)
        for element in array[..<(array.count - 5)] {
            guard case let .int(count) = element else { return nil }
            buckets.append(count)
        }
        var statistics: [HistogramStatistic] = []
        for element in array[(array.count - 5)...] {
            switch element {
            case let .int(value): statistics.append(.integer(value))
            case let .double(value): statistics.append(.real(value))
            default: return nil
            }
        }
        self.buckets = buckets
        self.storedStatistics = statistics
    }
}

/// Histograms from the payload JSON (`histograms` or `payload.histograms`); the first of duplicate names wins.
enum PayloadHistograms {
    static func histograms(of payload: JSONValue) -> [String: StoredHistogram] {
        guard let object = (payload["histograms"] ?? payload["payload"]?["histograms"])?.objectValue else { return [:] }
        var result: [String: StoredHistogram] = [:]
        for member in object.members where result[member.key] == nil {
            if let histogram = StoredHistogram(member.value) { result[member.key] = histogram }
        }
        return result
    }
}

/// Errors from running jobs.
public enum JobError: Error, CustomStringConvertible, Equatable {
    /// `map` threw on a ping and `--fail-fast` was chosen.
    case mapFailed(documentID: String, message: String)
    /// `reduce` or `combine` threw.
    case reduceFailed(key: String, message: String)
    /// No built-in job has this name.
    case unknownJob(name: String, known: [String])
    /// A job argument is missing or wrong.
    case badArguments(job: String, message: String)
    /// The filter names a dimension the store does not have, or similar.
    case badFilter(String)
    /// A job script could not be compiled or loaded.
    case script(String)
    /// A selected ping was deleted from the store while the job ran.
    case pingMissing(pingID: Int64)

    public var description: String {
        switch self {
        case let .mapFailed(id, message): "map failed on document \(id): \(message)"
        case let .reduceFailed(key, message): "reduce failed for key \(key): \(message)"
        case let .unknownJob(name, known): "no job named '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .badArguments(job, message): "\(job): \(message)"
        case let .badFilter(message): "filter: \(message)"
        case let .script(message): message
        case let .pingMissing(pingID): "ping \(pingID) is no longer in the store (it changed while the job ran); run the job again"
        }
    }
}

/// A ping-level error raised by built-in jobs (the seed's KeyError / ValueError).
public struct PingError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
