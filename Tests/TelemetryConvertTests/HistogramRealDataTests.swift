import Foundation
import Testing
import TelemetryConvert
import TelemetryTestSupport

/// `spec/histograms.md` §8 on the real data: the three seed-era `Histograms.json` files against the histogram
/// server's bucket-format files, and the real Firefox 23 ping of `raw-logs/telemetry1.log`.
struct HistogramRealDataTests {
    struct Revision: Sendable, CustomTestStringConvertible {
        let tag: String
        let revision: String
        let definitionCount: Int
        let evaluableCount: Int
        var testDescription: String { "\(tag) (\(revision))" }
        var histogramsPath: String { Fixtures.sharedPath("datasets/real/histograms/tags/\(tag)/Histograms.json") }
        var bucketFormatPath: String { Fixtures.sharedPath("datasets/real/histograms/bucket-format/\(revision).json") }
    }

    static let revisions: [Revision] = [
        Revision(tag: "FIREFOX_AURORA_23_BASE", revision: "a55c55edf302", definitionCount: 524, evaluableCount: 522),
        Revision(tag: "FIREFOX_AURORA_24_BASE", revision: "8d3810543edc", definitionCount: 590, evaluableCount: 588),
        Revision(tag: "FIREFOX_AURORA_25_BASE", revision: "ad0ae007aa9e", definitionCount: 624, evaluableCount: 622),
    ]

    /// Every evaluable definition's bounds, kind, min, max and bucket count equal the server's entry; the two
    /// named-constant definitions are unevaluable and absent from the server's file.
    @Test(arguments: revisions)
    func boundsEqualTheHistogramServersBucketFormat(_ revision: Revision) throws {
        let definitions = try HistogramDefinitions.load(path: revision.histogramsPath)
        let server = try BucketFormat.load(path: revision.bucketFormatPath)
        #expect(definitions.count == revision.definitionCount)
        var evaluable = 0
        for name in definitions.names {
            switch definitions[exactly: name] {
            case let .defined(definition)?:
                evaluable += 1
                let entry = try #require(server[name], "\(name) missing from the bucket format")
                #expect(entry.buckets == definition.bucketBounds, "\(name)")
                #expect(entry.bucketCount == definition.bucketCount, "\(name)")
                #expect(entry.histogramType == definition.kind.histogramType, "\(name)")
                #expect(entry.min == (definition.low == 0 ? 1 : definition.low), "\(name)")
                #expect(entry.max == definition.bucketBounds.last, "\(name)")
            case let .unevaluable(reason)?:
                #expect(["GC_REASON_2", "STARTUP_MEASUREMENT_ERRORS"].contains(name), "\(name): \(reason)")
                #expect(server[name] == nil, "\(name)")
            case nil:
                Issue.record("\(name) listed but not found")
            }
        }
        #expect(evaluable == revision.evaluableCount)
    }

    /// Producing the bucket format from the tag file gives the server's file: same names (with the `STARTUP_`
    /// aliases), same order, same entries.
    @Test(arguments: revisions)
    func producingTheBucketFormatReproducesTheServersFile(_ revision: Revision) throws {
        let produced = BucketFormat(definitions: try HistogramDefinitions.load(path: revision.histogramsPath))
        let server = try BucketFormat.load(path: revision.bucketFormatPath)
        #expect(Set(produced.names) == Set(server.names))
        #expect(produced.names == server.names)
        #expect(produced == server)
        let aliases = produced.names.filter { $0.hasPrefix("STARTUP_") && produced.names.contains(String($0.dropFirst(8))) }
        #expect(aliases.count == produced.names.count - revision.evaluableCount)
        #expect(aliases.allSatisfy { BucketFormat.hasStartupAlias(String($0.dropFirst(8))) })
    }

    /// The project's own sample definitions (`datasets/histograms/`) reproduce its committed bucket format
    /// byte for byte (including the `count` kind, reported as "4").
    @Test func projectSampleBucketFormatIsReproducedByteForByte() throws {
        let definitions = try HistogramDefinitions.load(path: Fixtures.repoPath("datasets/histograms/Histograms.json"))
        let committed = try String(contentsOfFile: Fixtures.repoPath("datasets/histograms/bucket-format.json"), encoding: .utf8)
        #expect(BucketFormat(definitions: definitions).minimalJSON + "\n" == committed)
    }

    /// The seed worker's invalid spec files (`datasets/real/invalid/`) fail with the worker's texts, naming the file.
    @Test(arguments: [
        ("invalid.json", nil),
        ("invalid_schema.json", "histograms element must be an object"),
        ("invalid_kind.json", "Key: 'MY_HISTOGRAM' invalid kind element: 'bogus'"),
        ("missing_kind.json", "Key: 'MY_HISTOGRAM' missing kind element"),
    ] as [(String, String?)])
    func workerFixturesFailWithTheWorkersTexts(_ file: String, _ reason: String?) throws {
        let path = Fixtures.sharedPath("datasets/real/invalid/\(file)")
        do {
            let format = try BucketFormat.load(path: path)
            Issue.record("\(file) loaded \(format.names)")
        } catch {
            switch (error, reason) {
            case let (.invalidStructure(errorPath, errorReason), reason?):
                #expect(errorPath == path && errorReason == reason)
                #expect(error.description == "\(path): \(reason)")
            case (.notJSON(path, _), nil):
                #expect(error.description.hasPrefix("\(path): not a JSON document: "))
            default:
                Issue.record("\(file): \(error)")
            }
        }
    }

    @Test func bucketFormatEntriesAreCheckedLikeTheWorkerDid() throws {
        let cases: [(String, String)] = [
            (#"{"histograms":{"H":{"kind":"1","min":1,"max":2,"bucket_count":4,"buckets":[0,1,2]}}}"#,
             "Key: 'H' buckets array should contain: 4 elements;  3 were specified"),
            (#"{"histograms":{"H":{"kind":"1","max":2,"bucket_count":3,"buckets":[0,1,2]}}}"#, "Key: 'H' missing min element"),
            (#"{"histograms":{"H":{"kind":1,"min":1,"max":2,"bucket_count":3,"buckets":[0,1,2]}}}"#,
             "Key: 'H' invalid kind element: '1'"),
            (#"{"histograms":{"H":{"kind":"9","min":1,"max":2,"bucket_count":3,"buckets":[0,1,2]}}}"#,
             "Key: 'H' invalid kind element: '9'"),
            (#"{"histograms":{"H":{"kind":"1","min":1,"max":2,"bucket_count":3,"buckets":[0,1,"2"]}}}"#,
             "Key: 'H' buckets array must contain integers"),
            (#"{"histograms":[]}"#, "histograms element must be an object"),
        ]
        for (text, reason) in cases {
            #expect(throws: HistogramError.invalidStructure(path: "t", reason: reason)) {
                try BucketFormat.parse(Array(text.utf8), source: "t")
            }
        }
        let ok = try BucketFormat.parse(Array(#"{"histograms":{"H":{"kind":"4","min":1,"max":2,"bucket_count":3,"buckets":[0,1,2]}}}"#.utf8), source: "t")
        #expect(ok["H"] == BucketFormat.Entry(histogramType: 4, min: 1, max: 2, buckets: [0, 1, 2]))
        #expect(ok.minimalJSON == #"{"histograms":{"H":{"kind":"4","min":1,"buckets":[0,1,2],"max":2,"bucket_count":3}}}"#)
    }

    /// The seed's substitutions make the two named-constant definitions evaluable (with 101, one more than
    /// Firefox 23 used: `spec/histograms.md` §1.1).
    @Test func serverSubstitutionsResolveTheNamedConstants() throws {
        let text = try String(contentsOfFile: Self.revisions[0].histogramsPath, encoding: .utf8)
        let substituted = HistogramDefinitions.applyingServerSubstitutions(to: text)
        #expect(!substituted.contains("JS::gcreason::NUM_TELEMETRY_REASONS"))
        let definitions = try HistogramDefinitions.parse(Array(substituted.utf8), source: "substituted")
        #expect(try definitions.definition(named: "GC_REASON_2").bucketCount == 102)
        #expect(try definitions.definition(named: "STARTUP_MEASUREMENT_ERRORS").bucketCount == 13)
        #expect(definitions.names.allSatisfy { definitions[exactly: $0]?.definition != nil })
    }

    // MARK: telemetry1.log against FIREFOX_AURORA_23_BASE

    static let pingRevision = "http://hg.mozilla.org/releases/mozilla-release/rev/a55c55edf302"

    /// §8: 325 declarations identical to the definitions, `GC_REASON_2` a `definition_mismatch` (its definition
    /// is unevaluable in the raw file, so the ping's 101 inline buckets are used), two names unknown.
    @Test func realPingCompactsWithTheDocumentedOutcomes() throws {
        let ping = try HistogramFixtures.telemetry1Ping()
        let histograms = try #require(ping["histograms"]?.objectValue)
        let definitions = try HistogramDefinitions.load(path: Self.revisions[0].histogramsPath)
        let compactor = HistogramCompactor(definitions: definitions, revisionURL: Self.pingRevision)
        let result = try compactor.compact(histograms)

        #expect(Set(result.unknownNames) == ["HTTP_OFFLINE_CACHE_DOCUMENT_LOAD", "MIXED_CONTENT_PAGE_LOAD"])
        #expect(result.mismatchedNames == ["GC_REASON_2"])
        #expect(result.histograms.members.count == 326)
        var identical = 0
        for member in result.histograms.members {
            let raw = try #require(histograms[member.key]?.objectValue)
            let storage = try #require(member.value.arrayValue)
            let layout = definitions.lookup(member.key)?.definition ?? HistogramDefinition(inlineParametersOf: raw)
            let bucketCount = try #require(layout?.bucketCount, "\(member.key)")
            #expect(storage.count == bucketCount + 5, "\(member.key)")
            if let definition = definitions.lookup(member.key)?.definition, definition.agrees(withDeclarationOf: raw) {
                identical += 1
            }
            // Nothing lost: the counts are the raw counts, the summary fields are copied or -1.
            let rawTotal = raw["values"]?.objectValue?.members.reduce(Int64(0)) { $0 + ($1.value.integerValue ?? 0) }
            let total = storage[..<bucketCount].reduce(Int64(0)) { $0 + ($1.integerValue ?? 0) }
            #expect(total == rawTotal, "\(member.key)")
            for (offset, field) in HistogramCompactor.summaryFields.enumerated() {
                #expect(storage[bucketCount + offset] == raw[field] ?? .int(-1), "\(member.key).\(field)")
            }
        }
        #expect(identical == 325)
        let gcReason = try #require(result.histograms["GC_REASON_2"]?.arrayValue)
        #expect(gcReason.count == 101 + 5)
        #expect(gcReason[48] == .int(1187) && gcReason[49] == .int(1398))
    }

    /// With the substituted definitions (as fetched from a histogram server) `GC_REASON_2` uses the definition's
    /// 102 buckets — its keys are lower bounds of it — still with a warning.
    @Test func realPingAgainstSubstitutedDefinitions() throws {
        let ping = try HistogramFixtures.telemetry1Ping()
        let text = try String(contentsOfFile: Self.revisions[0].histogramsPath, encoding: .utf8)
        let definitions = try HistogramDefinitions.parse(
            Array(HistogramDefinitions.applyingServerSubstitutions(to: text).utf8), source: "substituted")
        let result = try HistogramCompactor(definitions: definitions, revisionURL: Self.pingRevision)
            .compact(try #require(ping["histograms"]?.objectValue))
        #expect(result.mismatchedNames == ["GC_REASON_2"])
        #expect(result.histograms["GC_REASON_2"]?.arrayValue?.count == 102 + 5)
    }

    /// The whole path a converter takes: revision cache (seeded directory, offline) → compaction hook.
    @Test func realPingThroughTheRevisionCacheHook() throws {
        let directory = TemporaryDirectory("histogram-real")
        let cacheDirectory = directory.url.appendingPathComponent("cache").path
        try HistogramFixtures.seedCache([
            .object(JSONObject([
                JSONMember(key: "repo", value: .string("releases/mozilla-release")),
                JSONMember(key: "rev", value: .string("a55c55edf302")),
                JSONMember(key: "file", value: .string("datasets/real/histograms/tags/FIREFOX_AURORA_23_BASE/Histograms.json")),
            ])),
        ], in: cacheDirectory)
        let cache = RevisionCache(cacheDirectory: cacheDirectory)
        let compacting = HistogramCompactor.compacting(with: cache)
        let histograms = try #require(try HistogramFixtures.telemetry1Ping()["histograms"]?.objectValue)
        let first = try compacting(histograms, Self.pingRevision)
        let second = try compacting(histograms, Self.pingRevision.replacingOccurrences(of: "http:", with: "https:"))
        #expect(first.histograms == second.histograms)
        #expect(first.unknown.count == 2 && first.mismatched == ["GC_REASON_2"])
        #expect(cache.statistics.diskLoads == 1 && cache.statistics.memoryHits == 1)
    }
}
