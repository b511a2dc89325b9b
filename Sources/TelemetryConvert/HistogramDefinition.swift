import Foundation

/// The kind of a histogram in `Histograms.json` (`spec/histograms.md` §2). The raw value is the file's spelling.
public enum HistogramKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case boolean, flag, count, enumerated, linear, exponential
    /// Later Firefox versions (labels list; buckets like enumerated). **(unverified)**: not in the seed era.
    case categorical

    /// The nsITelemetry `histogram_type` number pings declare, also the histogram server's `kind` (as a string).
    public var histogramType: Int {
        switch self {
        case .exponential: 0
        case .linear, .enumerated: 1
        case .boolean: 2
        case .flag: 3
        case .count: 4
        case .categorical: 5
        }
    }

    /// True when the bounds come from the exponential algorithm (§3.2), false for the linear one (§3.1).
    public var usesExponentialBuckets: Bool { self == .exponential }

    public var description: String { rawValue }
}

/// A histogram's bucket layout: the reduced parameters (low, high, bucket count) of `spec/histograms.md` §2 and
/// the bucket lower bounds computed from them (§3).
///
/// - Shape: `bucketBounds.count == bucketCount`; `bucketBounds[0] == 0` (underflow bucket),
///   `bucketBounds[1] == low`, non-decreasing (strictly increasing for exponential kinds and whenever
///   `high - low >= bucketCount - 2`); bucket *i* holds values `bucketBounds[i] <= v < bucketBounds[i+1]`.
/// - Computed once at initialisation; the value is immutable and `Sendable`.
public struct HistogramDefinition: Sendable, Hashable, CustomStringConvertible {
    public let kind: HistogramKind
    /// Lower bound of bucket 1.
    public let low: Int64
    /// Upper parameter: the last lower bound for linear kinds and (normally) for exponential ones.
    public let high: Int64
    public let bucketCount: Int
    /// Bucket lower bounds, `bucketCount` of them (§3).
    public let bucketBounds: [Int64]

    /// Largest bucket count accepted (the real files use at most a few hundred). Inline parameters come from
    /// pings, so this also bounds what one histogram can make the converter allocate.
    public static let maxBucketCount = 100_000
    /// Largest `high` accepted: doubles represent every integer up to 2^53 exactly, so §3's arithmetic stays
    /// meaningful and the rounded bounds always fit in `Int64`.
    public static let maxHigh: Int64 = 1 << 53

    /// Builds the layout from the reduced triple and computes the bounds (§3).
    /// - Throws: `HistogramError.invalidDefinition(name: nil, …)` when the bounds would not be a valid layout:
    ///   `bucketCount` outside 3…`maxBucketCount`, `low` < 0 (< 1 for exponential: ln 0), `high <= low`, or
    ///   `high > maxHigh`.
    /// - Complexity: O(bucketCount); allocates the bounds array.
    public init(kind: HistogramKind, low: Int64, high: Int64, bucketCount: Int) throws(HistogramError) {
        guard bucketCount >= 3 && bucketCount <= Self.maxBucketCount else {
            throw .invalidDefinition(name: nil, reason: "bucket count \(bucketCount) is not between 3 and \(Self.maxBucketCount)")
        }
        let minimumLow: Int64 = kind.usesExponentialBuckets ? 1 : 0
        guard low >= minimumLow else {
            throw .invalidDefinition(name: nil, reason: "low \(low) is less than \(minimumLow)")
        }
        guard high > low else { throw .invalidDefinition(name: nil, reason: "high \(high) is not greater than low \(low)") }
        guard high <= Self.maxHigh else { throw .invalidDefinition(name: nil, reason: "high \(high) is too large") }
        self.kind = kind
        self.low = low
        self.high = high
        self.bucketCount = bucketCount
        self.bucketBounds = kind.usesExponentialBuckets
            ? Self.exponentialBounds(low: low, high: high, bucketCount: bucketCount)
            : Self.linearBounds(low: low, high: high, bucketCount: bucketCount)
    }

    public var description: String { "\(kind) \(low)…\(high), \(bucketCount) buckets" }

    // MARK: Bounds (spec/histograms.md §3)

    /// §3.1, in IEEE doubles with the spec's order of operations; `floor(x + 0.5)`.
    /// - Precondition: `bucketCount >= 3` (callers validate).
    static func linearBounds(low: Int64, high: Int64, bucketCount n: Int) -> [Int64] {
        precondition(n >= 3, "linear bounds need at least 3 buckets")
        var bounds = [Int64](repeating: 0, count: n)
        let dLow = Double(low), dHigh = Double(high), denominator = Double(n - 2)
        for bucketIndex in 1..<n {
            let x = (dLow * Double(n - 1 - bucketIndex) + dHigh * Double(bucketIndex - 1)) / denominator
            bounds[bucketIndex] = Int64((x + 0.5).rounded(.down))
        }
        return bounds
    }

    /// §3.2: spread the remaining log-distance evenly over the remaining buckets; advance by 1 when rounding
    /// would not advance.
    /// - Precondition: `low >= 1`, `bucketCount >= 3`.
    static func exponentialBounds(low: Int64, high: Int64, bucketCount n: Int) -> [Int64] {
        precondition(low >= 1 && n >= 3, "exponential bounds need low >= 1 and at least 3 buckets")
        var bounds = [Int64](repeating: 0, count: n)
        var current = low
        bounds[1] = current
        let logMax = Foundation.log(Double(high))
        for bucketIndex in 2..<n {
            let logCurrent = Foundation.log(Double(current))
            let logRatio = (logMax - logCurrent) / Double(n - bucketIndex)
            let next = (Foundation.exp(logCurrent + logRatio) + 0.5).rounded(.down)
            // `next` is at most about `high` (≤ 2^53), so the conversion cannot trap.
            current = next > Double(current) ? Int64(next) : current + 1
            bounds[bucketIndex] = current
        }
        return bounds
    }

    // MARK: Index lookup

    /// Index of the bucket whose lower bound is exactly `lowerBound` (how ping `values` keys are matched,
    /// §4 step 3), or nil when `lowerBound` is not a lower bound. With repeated bounds (a degenerate linear
    /// layout) the last index wins, as in the seed's bound → index map.
    /// - Complexity: O(log bucketCount), no allocation.
    public func bucketIndex(ofLowerBound lowerBound: Int64) -> Int? {
        let index = lastIndex(notAbove: lowerBound)
        return index >= 0 && bucketBounds[index] == lowerBound ? index : nil
    }

    /// Index of the bucket a sample `value` falls into: the last bucket whose lower bound is ≤ `value`
    /// (values below 0 go to bucket 0, values ≥ the last bound to the overflow bucket).
    /// - Complexity: O(log bucketCount), no allocation.
    public func bucketIndex(containing value: Int64) -> Int {
        max(lastIndex(notAbove: value), 0)
    }

    /// Largest index whose bound is ≤ `value`, or -1.
    private func lastIndex(notAbove value: Int64) -> Int {
        var lowIndex = 0, highIndex = bucketBounds.count   // answer in [lowIndex - 1, highIndex - 1]
        while lowIndex < highIndex {
            let mid = (lowIndex + highIndex) / 2
            if bucketBounds[mid] <= value { lowIndex = mid + 1 } else { highIndex = mid }
        }
        return lowIndex - 1
    }
}

// MARK: - Definitions from JSON

extension HistogramDefinition {
    /// Parses one `Histograms.json` definition object (`spec/histograms.md` §1, §2): `kind`, and per kind `low`
    /// (default 1), `high`, `n_buckets`, `n_values` or `labels`. Numeric fields may be JSON integers, integral
    /// doubles, or strings holding an integer expression (§1.1). Other keys are ignored.
    /// - Throws: `HistogramError.invalidDefinition(name: nil, reason:)` with the reason, e.g.
    ///   `missing kind element`, `invalid kind element: 'bogus'`,
    ///   `n_values 'JS::gcreason::NUM_TELEMETRY_REASONS' is not an integer expression`.
    public init(json definition: JSONValue) throws(HistogramError) {
        guard let object = definition.objectValue else {
            throw .invalidDefinition(name: nil, reason: "definition is not an object")
        }
        guard let kindValue = object["kind"] else { throw .invalidDefinition(name: nil, reason: "missing kind element") }
        guard let kindText = kindValue.stringValue, let kind = HistogramKind(rawValue: kindText) else {
            throw .invalidDefinition(name: nil, reason: "invalid kind element: '\(Self.brief(kindValue))'")
        }
        switch kind {
        case .boolean, .flag, .count:
            try self.init(kind: kind, low: 1, high: 2, bucketCount: 3)
        case .enumerated:
            let values = try Self.integer(object, "n_values")
            try self.init(kind: kind, low: 1, high: values, bucketCount: try Self.bucketCount(values, plusOne: true))
        case .categorical:
            guard let labels = object["labels"]?.arrayValue else {
                throw .invalidDefinition(name: nil, reason: "missing labels element")
            }
            let labelCount = Int64(labels.count)
            try self.init(kind: kind, low: 1, high: labelCount, bucketCount: try Self.bucketCount(labelCount, plusOne: true))
        case .linear, .exponential:
            var low: Int64 = 1
            if object["low"] != nil { low = try Self.integer(object, "low") }
            let high = try Self.integer(object, "high")
            let buckets = try Self.integer(object, "n_buckets")
            try self.init(kind: kind, low: low, high: high, bucketCount: try Self.bucketCount(buckets))
        }
    }

    /// The layout a raw ping histogram declares inline (§3.3): `range: [low, high]`, `bucket_count`,
    /// `histogram_type` (0 → exponential, anything else → linear). Nil when any of the three is missing or
    /// not an integer, or the parameters are not a valid layout.
    public init?(inlineParametersOf histogram: JSONObject) {
        guard let range = histogram["range"]?.arrayValue, range.count == 2,
              case let .int(low)? = range.first, case let .int(high)? = range.last,
              case let .int(count)? = histogram["bucket_count"],
              case let .int(type)? = histogram["histogram_type"],
              let bucketCount = Int(exactly: count)
        else { return nil }
        guard let layout = try? HistogramDefinition(kind: type == 0 ? .exponential : .linear,
                                                    low: low, high: high, bucketCount: bucketCount)
        else { return nil }
        self = layout
    }

    /// True when every layout field the raw ping histogram declares (`bucket_count`, `range`, `histogram_type`)
    /// equals this definition's; absent fields cannot disagree, malformed ones do. False means a
    /// `definition_mismatch` warning (§4 step 2, §7).
    public func agrees(withDeclarationOf histogram: JSONObject) -> Bool {
        if let declared = histogram["bucket_count"], declared != .int(Int64(bucketCount)) { return false }
        if let declared = histogram["histogram_type"], declared != .int(Int64(kind.histogramType)) { return false }
        if let declared = histogram["range"] {
            guard let range = declared.arrayValue, range.count == 2, range[0] == .int(low), range[1] == .int(high)
            else { return false }
        }
        return true
    }

    /// `value` (or `value + 1`, for the value-count kinds) as a bucket count within 3…`maxBucketCount`.
    private static func bucketCount(_ value: Int64, plusOne: Bool = false) throws(HistogramError) -> Int {
        let minimum: Int64 = plusOne ? 2 : 3, maximum = Int64(maxBucketCount) - (plusOne ? 1 : 0)
        guard value >= minimum && value <= maximum else {
            let what = plusOne ? "value count" : "bucket count"
            throw .invalidDefinition(name: nil, reason: "\(what) \(value) is not between \(minimum) and \(maximum)")
        }
        return Int(value) + (plusOne ? 1 : 0)
    }

    /// A numeric field: an integer, an integral double, or a string expression (§1.1).
    private static func integer(_ object: JSONObject, _ key: String) throws(HistogramError) -> Int64 {
        guard let value = object[key] else { throw .invalidDefinition(name: nil, reason: "missing \(key) element") }
        switch value {
        case let .int(i):
            return i
        case let .double(d):
            if let i = value.integerValue { return i }
            throw .invalidDefinition(name: nil, reason: "\(key) \(d) is not an integer")
        case let .string(text):
            do {
                return try HistogramExpression.evaluate(text)
            } catch {
                throw .invalidDefinition(name: nil, reason: "\(key) '\(brief(value))' is not an integer expression")
            }
        default:
            throw .invalidDefinition(name: nil, reason: "\(key) \(brief(value)) is not a number")
        }
    }

    /// A short rendering of a definition value for messages (definition files are not ping data).
    static func brief(_ value: JSONValue) -> String {
        let text = value.stringValue ?? value.minimalJSON
        return text.count > 80 ? String(text.prefix(80)) + "…" : text
    }
}
