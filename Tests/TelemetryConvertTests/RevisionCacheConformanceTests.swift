import Foundation
import Testing
import TelemetryConvert
import TelemetryTestSupport

/// Every case of `../shared/conformance/revision_cache.json` (ops `revision_url`, `revision_lookup`,
/// `find_histograms`; no optional cases). Each case gets a fresh temporary directory holding its `CACHE`; every
/// lookup is offline (`RevisionCache` without a server never touches the network). An unknown op fails.
struct RevisionCacheConformanceTests {
    static let file = "conformance/revision_cache.json"

    @Test func fileHasOnlyKnownOps() throws {
        let cases = try HistogramFixtures.cases(Self.file)
        #expect(cases.count == 19)
        #expect(Set(cases.map(\.op)).isSubset(of: ["revision_url", "revision_lookup", "find_histograms"]))
        #expect(cases.allSatisfy { $0.op == "revision_url" || $0.input["offline"] == .bool(true) },
                "every lookup case is offline")
    }

    @Test(arguments: HistogramFixtures.requiredCases(file))
    func runsCase(_ vector: HistogramConformanceCase) throws {
        switch vector.op {
        case "revision_url": revisionURL(vector)
        case "revision_lookup": try revisionLookup(vector)
        case "find_histograms": try findHistograms(vector)
        default: Issue.record("\(vector.id): unknown op \(vector.op)")
        }
    }

    private func revisionURL(_ vector: HistogramConformanceCase) {
        let expected = vector.expected
        #expect(HistogramFixtures.unknownKeys(expected, known: ["repo", "rev", "cache_path", "fetch_url", "error"]).isEmpty)
        let url = vector.input["url"]?.stringValue ?? ""
        let cacheDirectory = vector.input["cache_dir"]?.stringValue ?? "CACHE"
        do {
            let revision = try RevisionURL(parsing: url)
            if expected["error"] != nil { Issue.record("\(vector.id): parsed \(revision.repository) \(revision.revision)") }
            check(revision, cacheDirectory: cacheDirectory, expected, vector.id)
        } catch {
            if expected["error"] == nil { Issue.record("\(vector.id): \(error)") }
            HistogramFixtures.expectError(error, expected, vector.id)
            #expect(error.description == "Invalid revision URL: \(url)")
            #expect(error.rejection?.category == .missingRevisionRepo)
        }
    }

    private func check(_ revision: RevisionURL, cacheDirectory: String, _ expected: JSONValue, _ id: String) {
        if let repo = expected["repo"] { #expect(repo == .string(revision.repository), "\(id)") }
        if let rev = expected["rev"] { #expect(rev == .string(revision.revision), "\(id)") }
        if let path = expected["cache_path"] { #expect(path == .string(revision.cachePath(in: cacheDirectory)), "\(id)") }
        if let url = expected["fetch_url"] { #expect(url == .string(revision.rawFileURL), "\(id)") }
    }

    private func revisionLookup(_ vector: HistogramConformanceCase) throws {
        let input = vector.input, expected = vector.expected
        #expect(HistogramFixtures.unknownKeys(expected, known: [
            "cache_path", "fetch_url", "found", "cache_file_exists_after", "contains_keys", "definition_count",
            "repeat_identical",
        ]).isEmpty)
        #expect(input["offline"] == .bool(true))
        let directory = TemporaryDirectory("revcache-conformance")
        let cacheName = input["cache_dir"]?.stringValue ?? "CACHE"
        let cacheDirectory = directory.url.appendingPathComponent(cacheName).path
        try HistogramFixtures.seedCache(input["seed"]?.arrayValue ?? [], in: cacheDirectory)
        let revision = try RevisionURL(repository: try #require(input["repo"]?.stringValue),
                                       revision: try #require(input["rev"]?.stringValue))
        check(revision, cacheDirectory: cacheName, expected, vector.id)

        let cache = RevisionCache(cacheDirectory: cacheDirectory)   // no server: offline
        let repeats = max(1, Int(input["repeat"]?.integerValue ?? 1))
        var results: [HistogramDefinitions?] = []
        for _ in 0..<repeats {
            do {
                results.append(try cache.definitions(for: revision))
            } catch let rejection as PayloadRejection {
                #expect(rejection.category == .unknownRevision, "\(vector.id)")
                #expect(rejection.message == "Failed to fetch histograms for URL: \(revision.url)")
                results.append(nil)
            }
        }
        let first = results[0]
        if let found = expected["found"] { #expect(found == .bool(first != nil), "\(vector.id)") }
        if let exists = expected["cache_file_exists_after"] {
            #expect(exists == .bool(FileManager.default.fileExists(atPath: revision.cachePath(in: cacheDirectory))),
                    "\(vector.id)")
        }
        if let keys = expected["contains_keys"]?.arrayValue {
            for key in keys.compactMap(\.stringValue) { #expect(first?[exactly: key] != nil, "\(vector.id): \(key)") }
        }
        if let count = expected["definition_count"] { #expect(count == .int(Int64(first?.count ?? -1)), "\(vector.id)") }
        if expected["repeat_identical"] == .bool(true) {
            #expect(repeats > 1 && results.allSatisfy { $0 == first }, "\(vector.id)")
            #expect(cache.statistics.diskLoads == 1 && cache.statistics.memoryHits == repeats - 1,
                    "\(vector.id): later lookups come from memory")
        }
        #expect(cache.statistics.fetches == 0, "offline: no request")
    }

    private func findHistograms(_ vector: HistogramConformanceCase) throws {
        let input = vector.input, expected = vector.expected
        #expect(HistogramFixtures.unknownKeys(expected, known: ["found"]).isEmpty)
        let directory = TemporaryDirectory("revcache-conformance")
        let cacheDirectory = directory.url.appendingPathComponent("CACHE").path
        try HistogramFixtures.seedCache(input["seed"]?.arrayValue ?? [], in: cacheDirectory)
        let cache = RevisionCache(cacheDirectory: cacheDirectory)
        let url = try #require(input["url"]?.stringValue)
        var found = false
        do {
            found = try cache.definitions(forRevisionURL: url).count > 0
        } catch let rejection as PayloadRejection {
            #expect([.missingRevisionRepo, .unknownRevision].contains(rejection.category), "\(vector.id)")
        }
        #expect(expected["found"] == .bool(found), "\(vector.id)")
    }
}
