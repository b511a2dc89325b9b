import Foundation
import Testing
@testable import TelemetryStore

/// The one histogram accumulator (docs/sql.md "The histogram sum rule").
struct HistogramAccumulatorTests {
    static func statistics(_ values: [Double]) -> [HistogramStatistic] {
        values.map { $0.rounded() == $0 ? .integer(Int64($0)) : .real($0) }
    }

    @Test func sumsElementWiseWithTheFiveStatistics() throws {
        var state = HistogramAccumulator()
        try state.add(buckets: [1, 2, 0], statistics: Self.statistics([10, -1, -1, 4, 0]))
        try state.add(buckets: [0, 1, 5], statistics: Self.statistics([2.5, -1, -1, 1, 0]))
        #expect(state.bucketCount == 3 && state.pings == 2)
        #expect(state.buckets == [1, 3, 5])
        #expect(state.description == "[1,3,5,12.5,-1,-1,5,0]")
    }

    /// Hazard BR-21: two layouts are never added position by position (the old BucketSum zero-padded them).
    @Test func mixedLayoutsAreAnErrorOrGroupedNeverPadded() throws {
        var state = try HistogramAccumulator(buckets: [1, 2], statistics: Self.statistics([3, -1, -1, 0, 0]))
        #expect(throws: HistogramAccumulatorError.layoutsDiffer(first: 2, other: 3)) {
            try state.add(buckets: [0, 1, 5], statistics: Self.statistics([1, -1, -1, 0, 0]))
        }
        let other = try HistogramAccumulator(buckets: [0, 1, 5], statistics: Self.statistics([1, -1, -1, 0, 0]))
        #expect(throws: HistogramAccumulatorError.layoutsDiffer(first: 2, other: 3)) { try state.merge(other) }
        var grouped = HistogramLayoutSums(other)
        try grouped.merge(state)
        try grouped.merge(state)
        #expect(grouped.layouts.map(\.bucketCount) == [2, 3])
        #expect(grouped.rows(key: "k").map(\.key) == ["k [2 buckets]", "k [3 buckets]"])
        #expect(grouped.rows(key: "k").map(\.value.description) == ["[2,4,6,-1,-1,0,0]", "[0,1,5,1,-1,-1,0,0]"])
    }

    /// Exact sums: leaving the Int64 range is an error, never a wrapped or rounded number.
    @Test func overflowIsAnError() throws {
        var state = try HistogramAccumulator(buckets: [Int64.max - 1, 5], statistics: Self.statistics([1, 0, 0, 0, 0]))
        try state.add(buckets: [1, 0], statistics: Self.statistics([1, 0, 0, 0, 0]))
        #expect(state.buckets == [Int64.max, 5])
        #expect(throws: HistogramAccumulatorError.bucketOverflow(bucket: 0)) {
            try state.add(buckets: [1, 0], statistics: Self.statistics([1, 0, 0, 0, 0]))
        }
        var big = try HistogramAccumulator(buckets: [0], statistics: [.integer(Int64.max), .integer(0), .integer(0), .integer(0), .integer(0)])
        #expect(throws: HistogramAccumulatorError.statisticOverflow(statistic: 0)) { try big.merge(big) }
        #expect("\(HistogramAccumulatorError.statisticOverflow(statistic: 0))" == "statistic sum overflows")
    }

    /// Any split of the pings, merged in any order, equals one pass — also for double statistics, whose sums are
    /// exact (correctly rounded): partial results from several machines merge to the single-machine answer.
    @Test func mergeOfAnySplitInAnyOrderEqualsOnePassAndCodableRoundTrips() throws {
        var inputs: [([Int64], [HistogramStatistic])] = []
        for i in 0..<60 {
            let sum: Double = 0.1 * Double(i) + 1e16 * Double(i % 3)
            let statistics: [HistogramStatistic] = [.real(sum), .real(1e-3), .integer(Int64(i)), .integer(7), .integer(0)]
            inputs.append(([Int64(i), Int64(i * 3), 1], statistics))
        }
        var whole = HistogramAccumulator()
        for input in inputs { try whole.add(buckets: input.0, statistics: input.1) }
        for split in [0, 1, 7, 25, 59, 60] {
            var left = HistogramAccumulator(), right = HistogramAccumulator()
            for input in inputs[..<split] { try left.add(buckets: input.0, statistics: input.1) }
            for input in inputs[split...].reversed() { try right.add(buckets: input.0, statistics: input.1) }
            let leftCopy = try JSONDecoder().decode(HistogramAccumulator.self, from: JSONEncoder().encode(left))
            let rightCopy = try JSONDecoder().decode(HistogramAccumulator.self, from: JSONEncoder().encode(right))
            var leftFirst = leftCopy; try leftFirst.merge(rightCopy)
            var rightFirst = rightCopy; try rightFirst.merge(leftCopy)
            #expect(leftFirst == whole && leftFirst.description == whole.description, "split at \(split)")
            #expect(rightFirst.description == whole.description, "split at \(split), other order")
        }
        // The double sum is the correctly rounded one (as Python's math.fsum), not a running float sum.
        guard case let .real(sum) = whole.statisticValues[0] else { Issue.record("sum is not a double"); return }
        #expect(sum == 6.000000000000001e+17)
        #expect(whole.pings == 60)
    }

    /// A hostile or damaged partial state is a decoding error, not a crash or a wrong sum.
    @Test func decodingChecksTheShape() throws {
        let bad = #"{"bucket_count":3,"buckets":[1,2],"statistics":[],"pings":1}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(HistogramAccumulator.self, from: Data(bad.utf8)) }
    }
}
