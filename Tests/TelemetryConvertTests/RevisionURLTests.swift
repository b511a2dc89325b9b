import Foundation
import Testing
import TelemetryConvert
import TelemetryTestSupport

/// Revision URLs (`spec/payloads.md` §5) and the offline revision cache (`spec/histograms.md` §6).
struct RevisionURLTests {
    @Test(arguments: [
        ("http://hg.mozilla.org/releases/mozilla-release/rev/a55c55edf302", "releases/mozilla-release", "a55c55edf302"),
        ("http://hg.mozilla.org/mozilla-central/rev/73f0c5b00572", "mozilla-central", "73f0c5b00572"),
        ("https://hg.mozilla.org/mozilla-central/rev/eab4a81e4457/", "mozilla-central", "eab4a81e4457"),
        ("https://hg.mozilla.org/mozilla-central/rev/71224049c0b52ab190564d3ea0eab089a159a4cf", "mozilla-central",
         "71224049c0b52ab190564d3ea0eab089a159a4cf"),
        ("https://hg.mozilla.org/releases/mozilla-aurora/rev/089956e907ed", "releases/mozilla-aurora", "089956e907ed"),
        ("https://example.org:8080/a/rev/b/rev/0", "a/rev/b", "0"),   // (.+) is greedy
    ])
    func parsesRevisionURLs(_ url: String, _ repository: String, _ revision: String) throws {
        let parsed = try RevisionURL(parsing: url)
        #expect(parsed.repository == repository && parsed.revision == revision && parsed.url == url)
        #expect(parsed.cachePath(in: "/c") == "/c/\(repository)/\(revision)/Histograms.json")
    }

    @Test(arguments: [
        "/rev/", "", "arglebargle", "tip", "ftp://hg.mozilla.org/mozilla-central/rev/ad0ae007aa9e",
        "https://hg.mozilla.org/mozilla-central/rev/tip", "https://hg.mozilla.org/mozilla-central/rev/AD0AE007AA9E",
        "https://hg.mozilla.org/mozilla-central/ad0ae007aa9e", "https://hg.mozilla.org/rev/ad0ae007aa9e",
        "https:///mozilla-central/rev/ad0ae007aa9e", "https://hg.mozilla.org/mozilla-central/rev/",
        "https://hg.mozilla.org/mozilla-central/rev/ad0ae007aa9e//", "https://hg.mozilla.org/mozilla-central/rev/ad0ae007aa9e\n",
        "https://hg.mozilla.org//rev/ad0ae007aa9e", " https://hg.mozilla.org/mozilla-central/rev/ad0ae007aa9e",
        // Stricter than the pattern: the repository must not leave the cache directory.
        "https://h/../../etc/rev/ad0ae007aa9e", "https://h/a/./b/rev/ad0ae007aa9e", "https://h/a//b/rev/ad0ae007aa9e",
        "https://h///rev/ad0ae007aa9e",
    ])
    func rejectsMalformedRevisionURLs(_ url: String) {
        #expect(throws: HistogramError.invalidRevisionURL(url: url)) { try RevisionURL(parsing: url) }
        #expect(HistogramError.invalidRevisionURL(url: url).rejection
                == PayloadRejection(.missingRevisionRepo, "Invalid revision URL: \(url)"))
    }

    @Test func histogramServerQueryIsPercentEncoded() throws {
        let revision = try RevisionURL(parsing: "https://hg.mozilla.org/releases/mozilla-release/rev/a55c55edf302")
        #expect(revision.histogramServerURL(server: "http://127.0.0.1:9898/")?.absoluteString
                == "http://127.0.0.1:9898/histograms?revision=https%3A%2F%2Fhg.mozilla.org%2Freleases%2Fmozilla-release%2Frev%2Fa55c55edf302")
        #expect(revision.rawFileURL
                == "https://hg.mozilla.org/releases/mozilla-release/raw-file/a55c55edf302/toolkit/components/telemetry/Histograms.json")
        let explicit = try RevisionURL(repository: "releases/mozilla-release", revision: "a55c55edf302")
        #expect(explicit.url == "https://hg.mozilla.org/releases/mozilla-release/rev/a55c55edf302")
    }

    @Test func offlineCacheRejectsMalformedAndUnknownRevisionsWithoutNetwork() throws {
        let directory = TemporaryDirectory("revcache")
        let cache = RevisionCache(cacheDirectory: directory.path)
        #expect(throws: PayloadRejection(.missingRevisionRepo, "Invalid revision URL: /rev/")) {
            try cache.definitions(forRevisionURL: "/rev/")
        }
        let url = "https://hg.mozilla.org/mozilla-central/rev/26cb30a00000"
        for _ in 0..<3 {
            #expect(throws: PayloadRejection(.unknownRevision, "Failed to fetch histograms for URL: \(url)")) {
                try cache.definitions(forRevisionURL: url)
            }
        }
        #expect(cache.statistics.unavailableLookups == 3, "every affected record is counted")
        #expect(cache.statistics.fetches == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty, "nothing created")
        // No cache directory at all: everything is unknown.
        #expect(throws: PayloadRejection.self) { try RevisionCache(cacheDirectory: nil).definitions(forRevisionURL: url) }
    }

    @Test func brokenCacheFilesAreEnvironmentErrorsNamingTheFile() throws {
        let directory = TemporaryDirectory("revcache")
        let path = try directory.write("mozilla-central/0123456789ab/Histograms.json", text: "invalid json data")
        let cache = RevisionCache(cacheDirectory: directory.path)
        for _ in 0..<2 {
            do {
                _ = try cache.definitions(forRevisionURL: "https://hg.mozilla.org/mozilla-central/rev/0123456789ab")
                Issue.record("a broken cache file loaded")
            } catch let error as HistogramError {
                guard case .notJSON(path, _) = error else { Issue.record("\(error)"); continue }
            }
        }
    }

    @Test func concurrentLookupsOfOneRevisionLoadItOnce() throws {
        let directory = TemporaryDirectory("revcache")
        try HistogramFixtures.seedCache([
            .object(JSONObject([
                JSONMember(key: "repo", value: .string("mozilla-central")),
                JSONMember(key: "rev", value: .string("ad0ae007aa9e")),
                JSONMember(key: "file", value: .string("datasets/real/histograms/tags/FIREFOX_AURORA_25_BASE/Histograms.json")),
            ])),
        ], in: directory.path)
        let cache = RevisionCache(cacheDirectory: directory.path)
        let counts = ConcurrentCounts()
        DispatchQueue.concurrentPerform(iterations: 32) { iteration in
            let url = iteration % 2 == 0 ? "https://hg.mozilla.org/mozilla-central/rev/ad0ae007aa9e"
                                         : "https://hg.mozilla.org/mozilla-central/rev/0000000000" + String(iteration % 4)
            do {
                counts.add(found: try cache.definitions(forRevisionURL: url).count == 624)
            } catch {
                counts.add(found: false)
            }
        }
        #expect(counts.snapshot == (16, 16))
        let statistics = cache.statistics
        #expect(statistics.diskLoads == 1 && statistics.memoryHits == 15 && statistics.unavailableLookups == 16)
    }

    private final class ConcurrentCounts: @unchecked Sendable {   // `lock` guards the counts
        private let lock = NSLock()
        private var found = 0, missing = 0
        func add(found isFound: Bool) { lock.withLock { if isFound { found += 1 } else { missing += 1 } } }
        var snapshot: (Int, Int) { lock.withLock { (found, missing) } }
    }
}
