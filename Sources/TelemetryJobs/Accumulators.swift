/// Element-wise sum of bucket arrays of possibly different lengths (shorter arrays count as zero-padded).
///
/// - Input: bucket counts. Output: summed buckets and the number of inputs.
/// - Throws: `BucketSum.Overflow` when a sum leaves the Int64 range (exact sums only, never wrapped or rounded).
/// - Complexity: O(bucket count) per `step` and `merge`.
/// Merge is commutative and associative: any split of the input merged in any order equals one pass.
/// Codable as `{"buckets": [Int64…], "count": Int}` (a job partial's value, docs/jobs.md); decoding refuses a
/// negative count.
public struct BucketSum: Sendable, Equatable, CustomStringConvertible, Codable {
    /// A bucket sum left the Int64 range.
    public struct Overflow: Error, CustomStringConvertible {
        public var bucket: Int
        public var description: String { "bucket \(bucket) overflows int64" }
    }

    public private(set) var buckets: [Int64] = []
    public private(set) var count = 0
    public init() {}
    public init(_ buckets: [Int64]) { self.buckets = buckets; count = 1 }

    public mutating func step(_ counts: [Int64]) throws { try add(counts, inputs: 1) }
    public mutating func merge(_ other: BucketSum) throws { try add(other.buckets, inputs: other.count) }

    private mutating func add(_ counts: [Int64], inputs: Int) throws {
        if counts.count > buckets.count { buckets.append(contentsOf: repeatElement(0, count: counts.count - buckets.count)) }
        for index in counts.indices {
            let (sum, overflow) = buckets[index].addingReportingOverflow(counts[index])
            if overflow { throw Overflow(bucket: index) }
            buckets[index] = sum
        }
        count += inputs
    }

    private enum CodingKeys: String, CodingKey { case buckets, count }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        buckets = try container.decode([Int64].self, forKey: .buckets)
        count = try container.decode(Int.self, forKey: .count)
        guard count >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .count, in: container, debugDescription: "negative count \(count)")
        }
    }

    /// `[b0,b1,…]` (the summed buckets, as the SQL twins print them with `json_group_array`).
    public var description: String { "[" + buckets.map(String.init).joined(separator: ",") + "]" }
}

/// A count (`Int` sum) — the seed's `reduce = sum(values)`.
public struct CountSum: Sendable, Equatable {
    public private(set) var total: Int64 = 0
    public init() {}
    public mutating func step(_ value: Int64) { total += value }
    public mutating func merge(_ other: CountSum) { total += other.total }
}
