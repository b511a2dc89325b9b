import Testing
@testable import TelemetryJobs

struct BucketSumTests {
    @Test func sumsPaddedElementWise() throws {
        var acc = BucketSum()
        try acc.step([1, 2]); try acc.step([0, 1, 5])
        #expect(acc.buckets == [1, 3, 5])
        #expect(acc.count == 2)
        #expect(acc.description == "[1,3,5]")
    }

    @Test func mergeOfAnySplitInAnyOrderEqualsOnePass() throws {
        let inputs: [[Int64]] = (0..<60).map { i in (0..<(i % 4 + 1)).map { Int64(i * 3 + $0) } }
        var whole = BucketSum(); for input in inputs { try whole.step(input) }
        for split in [0, 1, 7, 25, 59, 60] {
            var left = BucketSum(), right = BucketSum()
            for input in inputs[..<split] { try left.step(input) }
            for input in inputs[split...] { try right.step(input) }
            var leftFirst = left; try leftFirst.merge(right)
            try right.merge(left)
            #expect(right == whole, "split at \(split)")
            #expect(leftFirst == whole, "split at \(split), other order")
        }
    }

    /// Exact sums: leaving the Int64 range is an error, never a wrapped or rounded number (hazard BR-11's kind).
    @Test func overflowIsAnErrorNamingTheBucket() throws {
        var acc = BucketSum([Int64.max - 1, 5])
        try acc.step([1, 0])
        #expect(acc.buckets == [Int64.max, 5])
        #expect(throws: BucketSum.Overflow.self) { try acc.step([1, 0]) }
        do { try acc.merge(BucketSum([0, Int64.max])) } catch { #expect("\(error)" == "bucket 1 overflows int64") }
    }

    @Test func countSumMergeOfAnySplitEqualsOnePass() {
        let values: [Int64] = (0..<40).map { Int64($0 % 5) }
        var whole = CountSum(); for v in values { whole.step(v) }
        for split in [0, 3, 20, 40] {
            var left = CountSum(), right = CountSum()
            for v in values[..<split] { left.step(v) }
            for v in values[split...] { right.step(v) }
            right.merge(left)
            #expect(right == whole)
        }
    }
}
