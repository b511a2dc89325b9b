import Foundation
import Testing
import TelemetryConvert
import TelemetryTestSupport

/// The cases of `../shared/conformance/convert.json` that exercise histogram compaction alone: ops
/// `rewrite_histograms` and `convert_histograms_only`. The other ops of that file (`convert_payload`,
/// `convert_payload_multi`, `convert_record_file`, `serialize`, and the optional `geo_country`) belong to the
/// payload-converter tests. Before each case a fresh cache holds `fixtures.revisions`; lookups are offline.
struct HistogramCompactionConformanceTests {
    static let file = "conformance/convert.json"
    static let ops: Set<String> = ["rewrite_histograms", "convert_histograms_only"]

    @Test func fileHasTheCompactionCases() throws {
        let cases = try HistogramFixtures.cases(Self.file).filter { Self.ops.contains($0.op) }
        #expect(cases.count == 5)
        #expect(cases.allSatisfy { !$0.optional })
    }

    /// A revision cache seeded with the file's `fixtures.revisions`, in `directory`.
    private func seededCache(in directory: TemporaryDirectory) throws -> RevisionCache {
        let root = try HistogramFixtures.document(Self.file)
        let cacheDirectory = directory.url.appendingPathComponent("CACHE").path
        try HistogramFixtures.seedCache(root["fixtures"]?["revisions"]?.arrayValue ?? [], in: cacheDirectory)
        return RevisionCache(cacheDirectory: cacheDirectory)
    }

    /// Looks the revision up and compacts `histograms` against it.
    private func compact(_ histograms: JSONObject, revision: String, cache: RevisionCache) throws -> HistogramsCompaction {
        let definitions = try cache.definitions(forRevisionURL: revision)
        return try HistogramCompactor(definitions: definitions, revisionURL: revision).compact(histograms)
    }

    @Test(arguments: HistogramFixtures.requiredCases(file, ops: ops))
    func runsCase(_ vector: HistogramConformanceCase) throws {
        let directory = TemporaryDirectory("compaction-conformance")
        let cache = try seededCache(in: directory)
        switch vector.op {
        case "rewrite_histograms": try rewriteHistograms(vector, cache: cache)
        case "convert_histograms_only": try convertHistogramsOnly(vector, cache: cache)
        default: Issue.record("\(vector.id): unknown op \(vector.op)")
        }
        #expect(cache.statistics.fetches == 0)
    }

    private func rewriteHistograms(_ vector: HistogramConformanceCase, cache: RevisionCache) throws {
        let expected = vector.expected
        #expect(HistogramFixtures.unknownKeys(expected, known: [
            "result", "absent_keys", "error", "message", "message_prefix", "message_contains",
        ]).isEmpty)
        let revision = try #require(vector.input["revision"]?.stringValue)
        let histograms = try #require(vector.input["histograms"]?.objectValue)
        do {
            let result = try compact(histograms, revision: revision, cache: cache)
            if expected["error"] != nil { Issue.record("\(vector.id): converted, expected \(expected["error"]!)") }
            if let object = expected["result"] {
                #expect(HistogramFixtures.jsonEqual(.object(result.histograms), object),
                        "\(vector.id): \(JSONValue.object(result.histograms).minimalJSON)")
            }
            for key in expected["absent_keys"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                #expect(!result.histograms.contains(key), "\(vector.id): \(key)")
                #expect(result.unknownNames.contains(key), "\(vector.id): \(key) is reported unknown")
            }
        } catch {
            if expected["error"] == nil { Issue.record("\(vector.id): \(error)") }
            HistogramFixtures.expectError(error, expected, vector.id)
        }
    }

    /// Compacts the document's `histograms` against its `info.revision` and sets `ver` to 2 (no routing).
    private func convertHistogramsOnly(_ vector: HistogramConformanceCase, cache: RevisionCache) throws {
        let expected = vector.expected
        #expect(HistogramFixtures.unknownKeys(expected, known: ["document", "serialized_exact"]).isEmpty)
        var document = try #require(vector.input["document"]?.objectValue)
        let revision = try #require(document["info"]?["revision"]?.stringValue)
        let result = try compact(try #require(document["histograms"]?.objectValue), revision: revision, cache: cache)
        document["histograms"] = .object(result.histograms)
        document["ver"] = .int(2)
        if let expectedDocument = expected["document"] {
            #expect(HistogramFixtures.jsonEqual(.object(document), expectedDocument), "\(vector.id)")
        }
        if let exact = expected["serialized_exact"]?.stringValue {
            #expect(JSONValue.object(document).minimalJSON == exact, "\(vector.id)")
        }
    }
}
