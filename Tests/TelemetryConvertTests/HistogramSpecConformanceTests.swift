import Foundation
import Testing
import TelemetryConvert
import TelemetryTestSupport

/// Every case of `../shared/conformance/histogram_spec.json` (ops `bucket_ranges`, `bucket_index`,
/// `load_bucket_spec`; the file has no optional cases). An op this runner does not know fails.
struct HistogramSpecConformanceTests {
    static let file = "conformance/histogram_spec.json"

    @Test func fileHasOnlyKnownOps() throws {
        let cases = try HistogramFixtures.cases(Self.file)
        #expect(cases.count == 16)
        #expect(Set(cases.map(\.op)).isSubset(of: ["bucket_ranges", "bucket_index", "load_bucket_spec"]))
        #expect(Set(cases.map(\.id)).count == cases.count, "ids are unique")
    }

    @Test(arguments: HistogramFixtures.requiredCases(file))
    func runsCase(_ vector: HistogramConformanceCase) throws {
        switch vector.op {
        case "bucket_ranges": try bucketRanges(vector)
        case "bucket_index": try bucketIndex(vector)
        case "load_bucket_spec": loadBucketSpec(vector)
        default: Issue.record("\(vector.id): unknown op \(vector.op)")
        }
    }

    /// A named definition from a Histograms.json file, or an inline `definition` object.
    private func definition(_ input: JSONValue) throws -> HistogramDefinition {
        if let file = input["histograms_file"]?.stringValue {
            let definitions = try HistogramDefinitions.load(path: Fixtures.sharedPath(file))
            return try definitions.definition(named: input["name"]?.stringValue ?? "")
        }
        return try HistogramDefinition(json: input["definition"] ?? .null)
    }

    private func bucketRanges(_ vector: HistogramConformanceCase) throws {
        let expected = vector.expected
        #expect(HistogramFixtures.unknownKeys(expected, known: ["kind", "bucket_count", "ranges", "error"]).isEmpty)
        if expected["error"] != nil {
            do {
                let unexpected = try definition(vector.input)
                Issue.record("\(vector.id): expected \(expected["error"]!), got \(unexpected)")
            } catch {
                HistogramFixtures.expectError(error, expected, vector.id)
            }
            return
        }
        let layout = try definition(vector.input)
        if let kind = expected["kind"]?.stringValue { #expect(layout.kind.rawValue == kind, "\(vector.id)") }
        if let count = expected["bucket_count"] { #expect(count == .int(Int64(layout.bucketCount)), "\(vector.id)") }
        if let ranges = expected["ranges"] {
            #expect(HistogramFixtures.integers(ranges) == layout.bucketBounds, "\(vector.id)")
            #expect(layout.bucketBounds.count == layout.bucketCount)
        }
    }

    private func bucketIndex(_ vector: HistogramConformanceCase) throws {
        let input = vector.input, expected = vector.expected
        #expect(HistogramFixtures.unknownKeys(expected, known: ["bucket_count", "indices", "missing_name_defined"]).isEmpty)
        let file = try #require(input["histograms_file"]?.stringValue)
        let definitions = try HistogramDefinitions.load(path: Fixtures.sharedPath(file))
        let layout = try definitions.definition(named: try #require(input["name"]?.stringValue))
        if let count = expected["bucket_count"] { #expect(count == .int(Int64(layout.bucketCount)), "\(vector.id)") }
        if let indices = expected["indices"]?.objectValue {
            for member in indices.members {
                let bound = try #require(Int64(member.key))
                let expectedIndex = member.value.integerValue.map(Int.init)
                #expect(layout.bucketIndex(ofLowerBound: bound) == expectedIndex, "\(vector.id): bound \(bound)")
            }
        }
        if let defined = expected["missing_name_defined"], let missing = input["missing_name"]?.stringValue {
            #expect(defined == .bool(definitions.lookup(missing) != nil), "\(vector.id)")
        }
    }

    private func loadBucketSpec(_ vector: HistogramConformanceCase) {
        let expected = vector.expected
        #expect(HistogramFixtures.unknownKeys(expected, known: ["error", "message", "message_contains", "message_prefix"]).isEmpty)
        let path = Fixtures.sharedPath(vector.input["file"]?.stringValue ?? "")
        do {
            let format = try BucketFormat.load(path: path)
            if expected["error"] != nil { Issue.record("\(vector.id): loaded \(format.names.count) entries, expected an error") }
        } catch {
            if expected["error"] == nil { Issue.record("\(vector.id): \(error)") }
            HistogramFixtures.expectError(error, expected, vector.id)
            // The command fails naming the file (conformance README).
            #expect(String(describing: error).contains(path), "\(vector.id): \(error)")
        }
    }
}
