/// Element-wise sum of bucket arrays of possibly different lengths (shorter arrays count as zero-padded).
///
/// - Input: bucket counts. Output: summed buckets and the number of inputs.
/// - Complexity: O(bucket count) per `step` and `merge`.
/// Merge is commutative and associative: any split of the input merged in any order equals one pass.
public struct BucketSum: Sendable, Equatable, CustomStringConvertible {
    public private(set) var buckets: [Int64] = []
    public private(set) var count = 0
    public init() {}
    public init(_ buckets: [Int64]) { self.buckets = buckets; count = 1 }

    public mutating func step(_ counts: [Int64]) { add(counts, inputs: 1) }
    public mutating func merge(_ other: BucketSum) { add(other.buckets, inputs: other.count) }

    private mutating func add(_ counts: [Int64], inputs: Int) {
        if counts.count > buckets.count { buckets.append(contentsOf: repeatElement(0, count: counts.count - buckets.count)) }
        for index in counts.indices { buckets[index] += counts[index] }
        count += inputs
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
