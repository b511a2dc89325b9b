// The one histogram accumulator (docs/sql.md "The histogram sum rule"): used by the SQL aggregates
// (`histogram_sum`, `histogram_summary`), the built-in jobs and their twins in `queries/`, and partial results
// merged across machines (`job --partial`, `merge`).

/// Why two histogram states cannot be added, or a sum left its exact range.
public enum HistogramAccumulatorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Two bucket layouts (bucket counts) were to be added position by position (hazard BR-21: never padded).
    case layoutsDiffer(first: Int, other: Int)
    /// A bucket sum left the Int64 range.
    case bucketOverflow(bucket: Int)
    /// An integer statistic's sum left the Int64 range, or a double statistic's sum is not finite.
    case statisticOverflow(statistic: Int)
    /// An input histogram does not have five statistics, or a statistic is NaN or infinite.
    case malformed(String)

    public var description: String {
        switch self {
        case let .layoutsDiffer(first, other):
            "bucket layouts differ (\(first) and \(other) buckets): they cannot be added position by position"
        case let .bucketOverflow(bucket): "bucket \(bucket) overflows int64"
        case let .statisticOverflow(statistic): "statistic \(HistogramAccumulator.statisticNames[statistic]) overflows"
        case let .malformed(detail): detail
        }
    }
}

/// The exact sum of one statistic over several histograms (`sum`, `log_sum`, `log_sum_squares`, `sum_squares_lo`
/// or `sum_squares_hi`; storage format, `spec/storage.md`).
///
/// Integer inputs are summed exactly in Int64 (overflow is an error). Double inputs are kept as non-overlapping
/// partial sums (Shewchuk's exact summation, as Python's `math.fsum`), so the value is the correctly rounded sum of
/// every input whatever the order of additions and merges. An absent input (integer -1) makes the sum absent.
public struct StatisticSum: Sendable, Codable, Equatable {
    /// Exact sum of the integer inputs.
    public private(set) var integer: Int64 = 0
    /// Non-overlapping partials whose exact sum is the sum of the double inputs.
    public private(set) var partials: [Double] = []
    /// True once any input was a double: the value is then a double.
    public private(set) var hasReal = false
    /// True once any input was absent (-1): the value is then -1.
    public private(set) var absent = false

    public init() {}

    /// Adds one stored statistic.
    /// - Throws: `HistogramAccumulatorError.statisticOverflow(index)`, `.malformed` for a NaN or infinite input.
    @inline(__always) mutating func add(_ statistic: HistogramStatistic, index: Int) throws {
        switch statistic {
        case let .integer(value):
            if value == -1 { absent = true; return }
            let (sum, overflow) = integer.addingReportingOverflow(value)
            if overflow { throw HistogramAccumulatorError.statisticOverflow(statistic: index) }
            integer = sum
        case let .real(value):
            guard value.isFinite else { throw HistogramAccumulatorError.malformed("statistic \(HistogramAccumulator.statisticNames[index]) is not finite") }
            hasReal = true
            try Self.addPartial(value, to: &partials, index: index)
        }
    }

    /// Adds another sum (exact, commutative, associative).
    mutating func merge(_ other: StatisticSum, index: Int) throws {
        let (sum, overflow) = integer.addingReportingOverflow(other.integer)
        if overflow { throw HistogramAccumulatorError.statisticOverflow(statistic: index) }
        integer = sum
        for partial in other.partials { try Self.addPartial(partial, to: &partials, index: index) }
        hasReal = hasReal || other.hasReal
        absent = absent || other.absent
    }

    /// The value: -1 when absent, the integer sum when every input was an integer, else the correctly rounded
    /// double sum of all inputs.
    public var value: HistogramStatistic {
        if absent { return .integer(-1) }
        guard hasReal else { return .integer(integer) }
        var all = partials
        let high = integer & ~0xFFFF_FFFF   // both halves are exact doubles
        for part in [Double(high), Double(integer - high)] where part != 0 {
            do { try Self.addPartial(part, to: &all, index: 0) } catch { return .real(.infinity) }
        }
        return .real(Self.rounded(all))
    }

    /// JSON number text of `value`.
    public var jsonNumber: String {
        switch value {
        case let .integer(value): String(value)
        case let .real(value): value.description
        }
    }

    /// Shewchuk's grow-expansion step (`msum` in Python's `math.fsum`).
    private static func addPartial(_ value: Double, to partials: inout [Double], index: Int) throws {
        var x = value
        var kept = 0
        for position in partials.indices {
            var y = partials[position]
            if abs(x) < abs(y) { swap(&x, &y) }
            let high = x + y
            let low = y - (high - x)
            if low != 0 { partials[kept] = low; kept += 1 }
            x = high
        }
        guard x.isFinite else { throw HistogramAccumulatorError.statisticOverflow(statistic: index) }
        partials.removeSubrange(kept...)
        partials.append(x)
    }

    /// The correctly rounded (half-even) value of non-overlapping `partials` (Python's `math.fsum` final step).
    private static func rounded(_ partials: [Double]) -> Double {
        var count = partials.count
        guard count > 0 else { return 0 }
        var high = partials[count - 1]
        var low = 0.0
        count -= 1
        while count > 0 {
            let x = high
            let y = partials[count - 1]
            count -= 1
            high = x + y
            low = y - (high - x)
            if low != 0 { break }
        }
        if count > 0, (low < 0 && partials[count - 1] < 0) || (low > 0 && partials[count - 1] > 0) {
            let y = low * 2
            let x = high + y
            if y == x - high { high = x }
        }
        return high
    }

    /// Equal when the values are equal (partials of one exact sum may differ by the order they were added in).
    public static func == (lhs: StatisticSum, rhs: StatisticSum) -> Bool { lhs.value == rhs.value }
}

/// The element-wise exact sum of histograms of one bucket layout, with the sums of their five statistics and the
/// number of histograms summed — the one histogram sum rule of the SQL functions, the jobs and their twins.
///
/// - Layout rule: the first histogram added fixes the layout (bucket count); adding or merging another layout is
///   an error (`layoutsDiffer`), never a zero-padded sum (hazard BR-21). `HistogramLayoutSums` groups by layout.
/// - Exactness: bucket sums are Int64 (overflow is an error); statistics follow `StatisticSum`.
/// - Merge: exact, commutative and associative: partial states from any split of the pings, merged in any order,
///   equal the one-pass state. `Codable` (JSON: `bucket_count`, `buckets`, `statistics`, `pings`), so partial
///   results from several machines can be merged; decoding checks the shapes.
/// - Output: `description` is the storage-format array `[b0…b(n-1), sum, log_sum, log_sum_squares, lo, hi]`
///   (`spec/storage.md`), as `histogram_sum` returns it.
public struct HistogramAccumulator: Sendable, Codable, Equatable, CustomStringConvertible {
    /// Names of the five statistics, in storage order.
    public static let statisticNames = ["sum", "log_sum", "log_sum_squares", "sum_squares_lo", "sum_squares_hi"]

    /// The layout: buckets per histogram; nil until the first histogram is added.
    public private(set) var bucketCount: Int?
    /// Summed bucket counts (`bucketCount` of them).
    public private(set) var buckets: [Int64] = []
    /// Sums of the five statistics.
    public private(set) var statistics = [StatisticSum](repeating: StatisticSum(), count: 5)
    /// Histograms (pings) summed.
    public private(set) var pings = 0

    /// An empty state (no layout yet).
    public init() {}

    /// An empty state of layout `bucketCount`.
    public init(bucketCount: Int) {
        self.bucketCount = bucketCount
        buckets = Array(repeating: 0, count: bucketCount)
    }

    /// The state of one histogram.
    /// - Throws: as `add(buckets:statistics:)`.
    public init(buckets: [Int64], statistics: [HistogramStatistic]) throws {
        self.init()
        try add(buckets: buckets, statistics: statistics)
    }

    /// Adds one histogram (bucket counts and its five statistics, storage format).
    /// - Throws: `HistogramAccumulatorError` (`layoutsDiffer`, `bucketOverflow`, `statisticOverflow`, `malformed`).
    public mutating func add(buckets counts: [Int64], statistics inputs: [HistogramStatistic]) throws {
        guard inputs.count == 5 else { throw HistogramAccumulatorError.malformed("a histogram has 5 statistics, not \(inputs.count)") }
        try adopt(counts.count)
        for index in counts.indices {
            let (sum, overflow) = buckets[index].addingReportingOverflow(counts[index])
            if overflow { throw HistogramAccumulatorError.bucketOverflow(bucket: index) }
            buckets[index] = sum
        }
        for index in 0..<5 { try statistics[index].add(inputs[index], index: index) }
        pings += 1
    }

    /// Adds row `row` of a column (its layout `rows.bucketCount`), reading the row in place.
    /// - Throws: as `add(buckets:statistics:)`.
    public mutating func add(row: Int, of rows: HistogramRows) throws {
        try adopt(rows.bucketCount)
        let overflowed = buckets.withUnsafeMutableBufferPointer { rows.addCounts(row: row, into: $0.baseAddress!) }
        if let overflowed { throw HistogramAccumulatorError.bucketOverflow(bucket: overflowed) }
        var failure: Error?
        statistics.withUnsafeMutableBufferPointer { sums in
            rows.forEachStatistic(row: row) { index, statistic in
                guard failure == nil else { return }
                do { try sums[index].add(statistic, index: index) } catch { failure = error }
            }
        }
        if let failure { throw failure }
        pings += 1
    }

    /// Adds another state of the same layout (an empty state merges with any).
    /// - Throws: `HistogramAccumulatorError.layoutsDiffer`, `bucketOverflow`, `statisticOverflow`.
    public mutating func merge(_ other: HistogramAccumulator) throws {
        guard let otherLayout = other.bucketCount else { return }
        try adopt(otherLayout)
        for index in other.buckets.indices {
            let (sum, overflow) = buckets[index].addingReportingOverflow(other.buckets[index])
            if overflow { throw HistogramAccumulatorError.bucketOverflow(bucket: index) }
            buckets[index] = sum
        }
        for index in 0..<5 { try statistics[index].merge(other.statistics[index], index: index) }
        pings += other.pings
    }

    private mutating func adopt(_ layout: Int) throws {
        if let bucketCount {
            guard bucketCount == layout else { throw HistogramAccumulatorError.layoutsDiffer(first: bucketCount, other: layout) }
        } else {
            bucketCount = layout
            buckets = Array(repeating: 0, count: layout)
        }
    }

    /// The five statistic values (`-1` where absent).
    public var statisticValues: [HistogramStatistic] { statistics.map(\.value) }

    /// The storage-format array as JSON text: `[b0,…,b(n-1),sum,log_sum,log_sum_squares,lo,hi]`.
    public var description: String {
        "[" + (buckets.map(String.init) + statistics.map(\.jsonNumber)).joined(separator: ",") + "]"
    }

    enum CodingKeys: String, CodingKey { case bucketCount = "bucket_count", buckets, statistics, pings }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        bucketCount = try container.decodeIfPresent(Int.self, forKey: .bucketCount)
        buckets = try container.decode([Int64].self, forKey: .buckets)
        statistics = try container.decode([StatisticSum].self, forKey: .statistics)
        pings = try container.decode(Int.self, forKey: .pings)
        let shapeOK = buckets.count == (bucketCount ?? 0) && (bucketCount ?? 0) >= 0 && statistics.count == 5 && pings >= 0
            && statistics.allSatisfy { $0.partials.allSatisfy(\.isFinite) }
        guard shapeOK else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "histogram state: \(buckets.count) buckets for bucket_count \(bucketCount.map(String.init) ?? "null"), \(statistics.count) statistics (5 expected), pings \(pings)"))
        }
    }
}

/// Histogram sums grouped by bucket layout: one `HistogramAccumulator` per bucket count, in increasing order.
/// The jobs' value type where pings of several revisions may carry different layouts of one histogram.
/// Merge is exact, commutative and associative; `Codable` (a JSON array of states).
public struct HistogramLayoutSums: Sendable, Codable, Equatable, CustomStringConvertible {
    /// One state per layout, ordered by bucket count.
    public private(set) var layouts: [HistogramAccumulator] = []

    public init() {}

    /// The sums of one state.
    public init(_ state: HistogramAccumulator) { if state.bucketCount != nil { layouts = [state] } }

    /// Adds another group's sums, layout by layout.
    /// - Throws: `HistogramAccumulatorError.bucketOverflow`, `statisticOverflow`.
    public mutating func merge(_ other: HistogramLayoutSums) throws {
        for state in other.layouts { try merge(state) }
    }

    /// Adds one state into the state of its layout.
    public mutating func merge(_ state: HistogramAccumulator) throws {
        guard let layout = state.bucketCount else { return }
        if let position = layouts.firstIndex(where: { $0.bucketCount == layout }) {
            try layouts[position].merge(state)
        } else {
            layouts.append(state)
            layouts.sort { ($0.bucketCount ?? 0) < ($1.bucketCount ?? 0) }
        }
    }

    /// The states as `[…];[…]` (storage-format arrays, by increasing bucket count).
    public var description: String { layouts.map(\.description).joined(separator: ";") }

    public init(from decoder: Decoder) throws {
        let states = try decoder.singleValueContainer().decode([HistogramAccumulator].self)
        for state in states { try merge(state) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(layouts)
    }

    /// The output rows of a key: `(key, state)` for one layout; with several, one row per layout keyed
    /// `key [n buckets]` (the SQL twins' rule, `queries/job_histogram_*.sql`).
    public func rows(key: String) -> [(key: String, value: HistogramAccumulator)] {
        if layouts.count == 1 { return [(key, layouts[0])] }
        return layouts.map { ("\(key) [\($0.bucketCount ?? 0) buckets]", $0) }
    }
}
