import Foundation
import Testing
import TelemetryConvert
import TelemetryStore
import TelemetryTestSupport

/// Bound-based mean and percentiles (`histogram_summary`, `histogram_percentile`, `histogram_mean` of a summary;
/// docs/sql.md) with bucket lower bounds from each ping's revision via the histogram cache the store remembers.
struct HistogramBoundsTests {
    static let r1 = "https://hg.mozilla.org/mozilla-central/rev/a1a1a1a1a1a1"
    static let r2 = "https://hg.mozilla.org/mozilla-central/rev/b2b2b2b2b2b2"
    static let r3 = "https://hg.mozilla.org/mozilla-central/rev/c3c3c3c3c3c3"   // never cached

    /// R1: EXP_MS exponential 1…100 in 10 buckets (bounds 0 1 2 3 5 9 16 29 54 100, spec/histograms.md §3.2),
    /// LIN linear 1…9 in 10 buckets (bounds 0 1 2 … 9, §3.1).
    static let definitionsR1 = """
        {"EXP_MS": {"kind": "exponential", "low": 1, "high": 100, "n_buckets": 10, "description": "test"},
         "LIN": {"kind": "linear", "low": 1, "high": 9, "n_buckets": 10, "description": "test"}}
        """
    /// R2: the same LIN; EXP_MS redefined as linear 1…100 in 10 buckets (same layout, other bounds).
    static let definitionsR2 = """
        {"EXP_MS": {"kind": "linear", "low": 1, "high": 100, "n_buckets": 10, "description": "test"},
         "LIN": {"kind": "linear", "low": 1, "high": 9, "n_buckets": 10, "description": "test"}}
        """
    static let expBoundsR1: [Int64] = [0, 1, 2, 3, 5, 9, 16, 29, 54, 100]

    /// A storage line whose ping has `revision` (nil: no `info`) and the given histograms (bucket counts; the
    /// five statistics are appended: sum 7, the others absent).
    static func ping(_ id: String, revision: String?, _ histograms: [String: [Int64]]) -> String {
        let info = revision.map { #""info":{"revision":"\#($0)"},"# } ?? ""
        let entries = histograms.sorted { $0.key < $1.key }.map { name, counts in
            "\"\(name)\":[" + counts.map(String.init).joined(separator: ",") + ",7,-1,-1,-1,-1]"
        }
        return line(id, #"{"ver":2,"# + info + #""histograms":{"# + entries.joined(separator: ",") + "}}")
    }

    /// A store with `lines` imported and a cache directory holding R1's and R2's definitions (not remembered).
    final class Fixture {
        let layout = LayoutFixture()
        let store: Store
        var cacheDirectory: String { layout.directory.path + "/cache" }

        init(_ lines: [String]) throws {
            try layout.directory.write("cache/mozilla-central/a1a1a1a1a1a1/Histograms.json", text: HistogramBoundsTests.definitionsR1)
            try layout.directory.write("cache/mozilla-central/b2b2b2b2b2b2/Histograms.json", text: HistogramBoundsTests.definitionsR2)
            try layout.write(LayoutFixture.layoutPath(), text: lines.joined())
            _ = try layout.importAll()
            store = try layout.openStore()
        }

        /// The first row's first cell parsed as a JSON object (a `histogram_summary` result).
        func summary(_ sql: String) throws -> [String: Any] {
            let text = try #require(try store.rows(sql).first?.first)
            return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        }

        func double(_ sql: String) throws -> Double? {
            let cell = try #require(try store.rows(sql).first?.first)
            if cell == "NULL" { return nil }
            let value: Double? = Double(cell)
            return try #require(value, "\(cell) is a number")
        }
    }

    static func ints(_ value: Any?) -> [Int64]? { (value as? [NSNumber])?.map(\.int64Value) }
    static func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

    // MARK: Exact values

    @Test func exactPercentilesAndMeanFromHandMadeDefinitions() throws {
        let fixture = try Fixture([
            Self.ping("a", revision: Self.r1, ["EXP_MS": [0, 0, 1, 2, 3, 4, 0, 0, 0, 0], "LIN": [0, 2, 1, 0, 3, 0, 0, 0, 0, 0]]),
            Self.ping("b", revision: Self.r1, ["EXP_MS": [0, 0, 0, 0, 1, 2, 3, 1, 0, 1], "LIN": [0, 0, 2, 0, 2, 0, 0, 0, 0, 0]]),
        ])
        try fixture.store.rememberHistogramCache(directory: fixture.cacheDirectory, server: nil)

        // EXP_MS summed: [0,0,1,2,4,6,3,1,0,1], 18 values; bounds 0 1 2 3 5 9 16 29 54 100.
        let exp = try fixture.summary("SELECT histogram_summary(ping_id, 'EXP_MS', revision) FROM pings")
        #expect(exp["name"] as? String == "EXP_MS")
        #expect(Self.ints(exp["buckets"]) == [0, 0, 1, 2, 4, 6, 3, 1, 0, 1])
        #expect(Self.number(exp["pings"]) == 2)
        #expect(exp["kind"] as? String == "exponential")
        #expect(Self.ints(exp["lower_bounds"]) == Self.expBoundsR1)
        #expect(exp["reason"] is NSNull)
        // Mean: midpoints 2.5, 4, 7, 12.5, 22.5, 41.5 and the last bucket's lower bound 100:
        // (1·2.5 + 2·4 + 4·7 + 6·12.5 + 3·22.5 + 1·41.5 + 1·100) / 18 = 322.5 / 18.
        #expect(Self.number(exp["mean"]) == 322.5 / 18)
        // p50: 9 values to count; buckets 2…4 take 1+2+4 = 7, 2 left of bucket 5's 6 → 9 + (16−9)·2/6.
        #expect(Self.number(exp["p50"]) == 9.0 + 7.0 * 2.0 / 6.0)
        // p95: 17.1 to count; 17 values lie below the last bucket → the last bucket's lower bound.
        #expect(Self.number(exp["p95"]) == 100)
        let summaryExpression = "(SELECT histogram_summary(ping_id, 'EXP_MS', revision) FROM pings)"
        // p25: 4.5 to count; buckets 2 and 3 take 3, 1.5 left of bucket 4's 4 → 5 + (9−5)·1.5/4 = 6.5.
        #expect(try fixture.double("SELECT histogram_percentile(\(summaryExpression), 25)") == 6.5)
        #expect(try fixture.double("SELECT histogram_percentile(\(summaryExpression), 0)") == 0)     // empty bucket 0
        #expect(try fixture.double("SELECT histogram_percentile(\(summaryExpression), 100)") == 100)
        #expect(try fixture.double("SELECT histogram_percentile(\(summaryExpression), 50)") == 9.0 + 7.0 * 2.0 / 6.0)
        #expect(try fixture.double("SELECT histogram_mean(\(summaryExpression))") == 322.5 / 18)

        // LIN summed: [0,2,3,0,5,0,0,0,0,0], bounds 0…9.
        let lin = try fixture.summary("SELECT histogram_summary(ping_id, 'LIN', revision) FROM pings")
        #expect(lin["kind"] as? String == "linear")
        #expect(Self.ints(lin["lower_bounds"]) == Array(0...9))
        #expect(abs(try #require(Self.number(lin["mean"])) - 3.3) < 1e-12)        // (2·1.5 + 3·2.5 + 5·4.5) / 10
        #expect(Self.number(lin["p50"]) == 3)                                       // 5 → 2 + 1·3/3
        #expect(abs(try #require(Self.number(lin["p95"])) - 4.9) < 1e-12)         // 9.5 → 4 + 1·4.5/5

        // histogram_mean of a histogram_sum array keeps the sum-statistic rule: 2 pings × sum 7 / 18 values.
        #expect(try fixture.double("SELECT histogram_mean(histogram_sum(ping_id, 'EXP_MS')) FROM pings") == 14.0 / 18)
        #expect(fixture.store.takeHistogramBoundsWarnings() == [])
    }

    @Test func percentileArgumentsAreChecked() throws {
        let fixture = try Fixture([Self.ping("a", revision: Self.r1, ["LIN": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]])])
        try fixture.store.rememberHistogramCache(directory: fixture.cacheDirectory, server: nil)
        let summary = "(SELECT histogram_summary(ping_id, 'LIN', revision) FROM pings)"
        #expect(throws: (any Error).self) { try fixture.store.query("SELECT histogram_percentile(\(summary), 101)") }
        #expect(throws: (any Error).self) { try fixture.store.query("SELECT histogram_percentile(\(summary), -1)") }
        #expect(throws: (any Error).self) { try fixture.store.query("SELECT histogram_percentile(\(summary), 'x')") }
        #expect {
            try fixture.store.query("SELECT histogram_percentile(histogram_sum(ping_id, 'LIN'), 50) FROM pings")
        } throws: { "\($0)".contains("must be a histogram_summary result") }
        #expect(try fixture.double("SELECT histogram_percentile(NULL, 50)") == nil)
        #expect(try fixture.double("SELECT histogram_percentile(\(summary), NULL)") == nil)
        #expect(try fixture.double("SELECT histogram_percentile(\(summary), 50)") == 1.5)   // 0.5 of bucket 1's one value
        // No ping of the store carries the name: an error naming it, like histogram_sum (issue 11 item 8).
        #expect {
            try fixture.store.query("SELECT histogram_summary(ping_id, 'NOPE', revision) FROM pings")
        } throws: { "\($0)".contains("histogram_summary: no histogram named NOPE in the store") }
    }

    // MARK: Reasons

    @Test func withoutARememberedCacheBoundsAreNullWithTheReason() throws {
        let fixture = try Fixture([
            Self.ping("a", revision: Self.r1, ["LIN": [0, 2, 1, 0, 3, 0, 0, 0, 0, 0]]),
            Self.ping("b", revision: Self.r1, ["LIN": [0, 0, 2, 0, 2, 0, 0, 0, 0, 0]]),
        ])
        #expect(try fixture.store.histogramCacheSetting() == HistogramCacheSetting(directory: nil, server: nil))
        let summary = try fixture.summary("SELECT histogram_summary(ping_id, 'LIN', revision) FROM pings")
        #expect(summary["reason"] as? String == "the store remembers no histogram cache (import with --histogram-cache DIR)")
        #expect(summary["lower_bounds"] is NSNull && summary["kind"] is NSNull)
        #expect(summary["mean"] is NSNull && summary["p50"] is NSNull && summary["p95"] is NSNull)
        #expect(Self.ints(summary["buckets"]) == [0, 2, 3, 0, 5, 0, 0, 0, 0, 0])   // the sums are still there
        #expect(try fixture.double("SELECT histogram_percentile(histogram_summary(ping_id, 'LIN', revision), 50) FROM pings") == nil)
        #expect(try fixture.double("SELECT histogram_mean(histogram_summary(ping_id, 'LIN', revision)) FROM pings") == nil)
        // One warning per distinct reason, however many groups and statements reported it; taking clears.
        _ = try fixture.store.rows("SELECT document_id, histogram_summary(ping_id, 'LIN', revision) FROM pings GROUP BY 1")
        #expect(fixture.store.takeHistogramBoundsWarnings()
                == ["histogram_summary(LIN): the store remembers no histogram cache (import with --histogram-cache DIR)"])
        #expect(fixture.store.takeHistogramBoundsWarnings() == [])

        // Remembering a cache takes effect from the next statement on the same connection, and survives reopening.
        try fixture.store.rememberHistogramCache(directory: fixture.cacheDirectory, server: nil)
        #expect(try fixture.double("SELECT histogram_percentile(histogram_summary(ping_id, 'LIN', revision), 50) FROM pings") == 3)
        let reopened = try Store(path: fixture.layout.storePath, create: false)
        let setting = try reopened.histogramCacheSetting()
        #expect(setting.directory == URL(fileURLWithPath: fixture.cacheDirectory).standardizedFileURL.path)
        #expect(setting.directory?.hasPrefix("/") == true && setting.server == nil)
        #expect(try reopened.query("SELECT histogram_percentile(histogram_summary(ping_id, 'LIN', revision), 50) FROM pings")
                    .first?.rows == [[.real(3)]])
        // A server alone keeps the remembered directory; a new directory replaces it.
        try reopened.rememberHistogramCache(directory: nil, server: "http://127.0.0.1:9")
        #expect(try reopened.histogramCacheSetting() == HistogramCacheSetting(directory: setting.directory, server: "http://127.0.0.1:9"))
        try reopened.rememberHistogramCache(directory: fixture.layout.directory.path + "/other/../cache2", server: nil)
        #expect(try reopened.histogramCacheSetting().directory == URL(fileURLWithPath: fixture.layout.directory.path + "/cache2").standardizedFileURL.path)
    }

    @Test func unknownRevisionGivesNullAndNamesRevisionAndCache() throws {
        let fixture = try Fixture([Self.ping("a", revision: Self.r3, ["LIN": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]])])
        try fixture.store.rememberHistogramCache(directory: fixture.cacheDirectory, server: nil)
        let summary = try fixture.summary("SELECT histogram_summary(ping_id, 'LIN', revision) FROM pings")
        let directory = URL(fileURLWithPath: fixture.cacheDirectory).standardizedFileURL.path
        #expect(summary["reason"] as? String == "revision \(Self.r3) not in the histogram cache \(directory)")
        #expect(summary["lower_bounds"] is NSNull && summary["p50"] is NSNull)
        #expect(fixture.store.takeHistogramBoundsWarnings() == ["histogram_summary(LIN): revision \(Self.r3) not in the histogram cache \(directory)"])
    }

    @Test func revisionsWithDifferentBoundsGiveNullAndSameBoundsAgree() throws {
        let fixture = try Fixture([
            Self.ping("a", revision: Self.r1, ["EXP_MS": [0, 0, 1, 0, 0, 0, 0, 0, 0, 0], "LIN": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]]),
            Self.ping("b", revision: Self.r1, ["EXP_MS": [0, 0, 0, 1, 0, 0, 0, 0, 0, 0], "LIN": [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]]),
            Self.ping("c", revision: Self.r2, ["EXP_MS": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0], "LIN": [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]]),
        ])
        try fixture.store.rememberHistogramCache(directory: fixture.cacheDirectory, server: nil)
        let exp = try fixture.summary("SELECT histogram_summary(ping_id, 'EXP_MS', revision) FROM pings")
        #expect(exp["reason"] as? String == "revisions \(Self.r1) and \(Self.r2) give different lower bounds for EXP_MS (10 buckets)")
        #expect(exp["lower_bounds"] is NSNull && exp["mean"] is NSNull)
        #expect(Self.ints(exp["buckets"]) == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0] && Self.number(exp["pings"]) == 3)
        // LIN has the same definition in both revisions: bounds kept. Values 1, 2, 3 → p50 at 1.5 of 3: 2 + 0.5.
        let lin = try fixture.summary("SELECT histogram_summary(ping_id, 'LIN', revision) FROM pings")
        #expect(lin["reason"] is NSNull)
        #expect(Self.ints(lin["lower_bounds"]) == Array(0...9))
        #expect(Self.number(lin["p50"]) == 2.5)
        #expect(Self.number(lin["mean"]) == 2.5)   // midpoints 1.5, 2.5, 3.5
        // Grouped by revision, each group has its own bounds.
        let rows = try fixture.store.rows("""
            SELECT revision, histogram_percentile(histogram_summary(ping_id, 'EXP_MS', revision), 50) FROM pings GROUP BY 1 ORDER BY 1
            """)
        // R1: values in buckets 2 [2,3) and 3 [3,5): 1 to count → 2 + 1·1/1 = 3.
        // R2 (linear 1…100: 0 1 13 26 38 51 …): one value in bucket 4 [38,51): 38 + 13·0.5/1.
        #expect(rows == [[Self.r1, "3.0"], [Self.r2, "44.5"]])
    }

    @Test func missingRevisionUndefinedHistogramAndLayoutMismatchAreReported() throws {
        let twelve: [Int64] = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        let fixture = try Fixture([
            Self.ping("a", revision: nil, ["LIN": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]]),
            Self.ping("b", revision: Self.r1, ["UNDEFINED_MS": [0, 1, 0], "EXP_MS": twelve]),
            Self.ping("c", revision: Self.r1, ["EXP_MS": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]]),
        ])
        try fixture.store.rememberHistogramCache(directory: fixture.cacheDirectory, server: nil)
        func reason(_ sql: String) throws -> String? { try fixture.summary(sql)["reason"] as? String }
        #expect(try reason("SELECT histogram_summary(ping_id, 'LIN', revision) FROM pings") == "ping has no revision (info.revision)")
        #expect(try reason("SELECT histogram_summary(ping_id, 'UNDEFINED_MS', revision) FROM pings")
                == "histogram UNDEFINED_MS is not defined in revision \(Self.r1)")
        #expect(try reason("SELECT histogram_summary(ping_id, 'EXP_MS', revision, 12) FROM pings")
                == "layout differs: the definition of EXP_MS in revision \(Self.r1) has 10 buckets, the column 12")
        #expect(try reason("SELECT histogram_summary(ping_id, 'EXP_MS', revision, 10) FROM pings") == nil)
        #expect {
            try fixture.store.query("SELECT histogram_summary(ping_id, 'EXP_MS', revision) FROM pings")
        } throws: { error in
            let text = "\(error)"
            return text.contains("histogram_summary: EXP_MS has several layouts (bucket counts 10 and 12)")
                && text.contains("histogram_summary(ping_id, 'EXP_MS', revision, n)")
        }
        // An empty revision text counts as none.
        #expect(StoreHistogramDefinitions(setting: .init(directory: fixture.cacheDirectory, server: nil))
                    .bounds(forHistogram: "LIN", revisionURL: "", bucketCount: 10) == .unavailable(.noRevision))
    }

    // MARK: Swift API

    @Test func definitionsLookupMemoisesAndAppliesTheStartupRule() throws {
        let fixture = try Fixture([])
        let definitions = StoreHistogramDefinitions(setting: .init(directory: fixture.cacheDirectory, server: nil))
        guard case let .bounds(exp) = definitions.bounds(forHistogram: "EXP_MS", revisionURL: Self.r1, bucketCount: 10) else {
            Issue.record("EXP_MS has bounds in R1"); return
        }
        #expect(exp.kind == .exponential && exp.bucketBounds == Self.expBoundsR1)
        #expect(definitions.bounds(forHistogram: "STARTUP_EXP_MS", revisionURL: Self.r1, bucketCount: 10) == .bounds(exp))
        // Memoised: deleting the file changes nothing for a revision already read.
        try FileManager.default.removeItem(atPath: fixture.cacheDirectory + "/mozilla-central/a1a1a1a1a1a1/Histograms.json")
        #expect(definitions.bounds(forHistogram: "LIN", revisionURL: Self.r1, bucketCount: 10)
                == .bounds(try HistogramDefinition(kind: .linear, low: 1, high: 9, bucketCount: 10)))
        #expect(definitions.bounds(forHistogram: "EXP_MS", revisionURL: Self.r1, bucketCount: 10) == .bounds(exp))
        #expect(definitions.bounds(forHistogram: "EXP_MS", revisionURL: "not a url", bucketCount: 10)
                == .unavailable(.invalidRevision(url: "not a url")))
        #expect(StoreHistogramDefinitions(setting: .init(directory: nil, server: nil))
                    .bounds(forHistogram: "EXP_MS", revisionURL: Self.r1, bucketCount: 10) == .unavailable(.noHistogramCache))
    }

    @Test func groupBoundsMergeOfAnySplitEqualsOnePass() throws {
        let a = try HistogramDefinition(kind: .linear, low: 1, high: 9, bucketCount: 10)
        let b = try HistogramDefinition(kind: .exponential, low: 1, high: 100, bucketCount: 10)
        let inputs: [(HistogramBoundsLookup, String?)] = [(.bounds(a), Self.r1), (.bounds(a), Self.r2), (.bounds(a), Self.r1)]
        var whole = GroupBounds()
        for (lookup, url) in inputs { whole.add(lookup, name: "H", revisionURL: url) }
        #expect(whole.definition == a && whole.reason == nil)
        for split in 0...inputs.count {
            var left = GroupBounds(), right = GroupBounds()
            for (lookup, url) in inputs[..<split] { left.add(lookup, name: "H", revisionURL: url) }
            for (lookup, url) in inputs[split...] { right.add(lookup, name: "H", revisionURL: url) }
            right.merge(left, name: "H")
            #expect(right.definition == whole.definition && right.reason == nil, "split at \(split)")
        }
        var mixed = whole
        mixed.add(.bounds(b), name: "H", revisionURL: Self.r3)
        #expect(mixed.definition == nil)
        #expect(mixed.reason == .revisionsDisagree(name: "H", bucketCount: 10, firstURL: Self.r1, otherURL: Self.r3))
        mixed.add(.unavailable(.noRevision), name: "H", revisionURL: nil)   // the first reason stays
        #expect(mixed.reason == .revisionsDisagree(name: "H", bucketCount: 10, firstURL: Self.r1, otherURL: Self.r3))
    }

    // MARK: Real and sample data

    /// The real v1 ping of `raw-logs/telemetry1.log`, converted at import with the seed's definitions for its
    /// revision `releases/mozilla-release/a55c55edf302` (FIREFOX_AURORA_23_BASE, PROVENANCE.md). The bounds are
    /// checked against Mozilla's own histogram-server output for that file (`bucket-format/a55c55edf302.json`);
    /// the expected statistics were computed with python_moztelemetry's `Histogram.percentile` code on the ping's
    /// `values` and those bounds.
    @Test func realPingWithItsRevision() throws {
        let fixture = LayoutFixture()
        let cache = fixture.directory.path + "/cache"
        try FileManager.default.copyItem(atPath: Fixtures.sharedPath("datasets/real/histograms/tags/FIREFOX_AURORA_23_BASE/Histograms.json"),
                                         toPath: fixture.directory.file("cache/releases/mozilla-release/a55c55edf302/Histograms.json"))
        let store = try fixture.openStore()
        let converter = PayloadConverter(compact: HistogramCompactor.compacting(with: RevisionCache(cacheDirectory: cache)))
        let summary = try Importer(store: store, options: ImportOptions(jobs: 2, payloadConverter: converter))
            .run(roots: [Fixtures.sharedPath("datasets/real/raw-logs/telemetry1.log")])
        #expect(summary.pings == 1)
        try store.rememberHistogramCache(directory: cache, server: nil)
        #expect(try store.rows("SELECT revision FROM pings") == [["http://hg.mozilla.org/releases/mozilla-release/rev/a55c55edf302"]])

        let serverData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedPath("datasets/real/histograms/bucket-format/a55c55edf302.json")))
        let server = try #require((try JSONSerialization.jsonObject(with: serverData) as? [String: Any])?["histograms"] as? [String: Any])
        func check(_ name: String, kind: String, mean: Double, p50: Double, p95: Double, p5: Double) throws {
            let text = try #require(try store.rows("SELECT histogram_summary(ping_id, '\(name)', revision) FROM pings").first?.first)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(object["reason"] is NSNull, "\(name)")
            #expect(object["kind"] as? String == kind, "\(name)")
            #expect(Self.ints(object["lower_bounds"]) == Self.ints((server[name] as? [String: Any])?["buckets"]), "\(name)")
            #expect(abs(try #require(Self.number(object["mean"])) - mean) < 1e-9, "\(name)")
            #expect(abs(try #require(Self.number(object["p50"])) - p50) < 1e-9, "\(name)")
            #expect(abs(try #require(Self.number(object["p95"])) - p95) < 1e-9, "\(name)")
            let p5Row = try store.rows("SELECT histogram_percentile(histogram_summary(ping_id, '\(name)', revision), 5) FROM pings")
            let p5Cell = try #require(p5Row.first?.first)
            let p5Value: Double? = Double(p5Cell)
            #expect(abs(try #require(p5Value) - p5) < 1e-9, "\(name)")
        }
        // GC_MS (exponential 1…10000, 50 buckets): 192 values, 63 in [378, 449); sum statistic / count = 418.85.
        try check("GC_MS", kind: "exponential", mean: 419.9947916666667, p50: 409.55555555555554, p95: 608.9999999999999, p5: 275.27272727272725)
        // GC_MAX_PAUSE_MS (linear 1…1000, 50 buckets); sum statistic / count = 84.24.
        try check("GC_MAX_PAUSE_MS", kind: "linear", mean: 84.13020833333333, p50: 73.85, p95: 149.79999999999984, p5: 43.56140350877193)
        // CYCLE_COLLECTOR: 139 of 278 values in the underflow bucket [0, 1).
        try check("CYCLE_COLLECTOR", kind: "exponential", mean: 55.61875, p50: 0.8633093525179856, p95: 190, p5: 0.08633093525179857)
    }

    /// The real converted pings of `storage/` name mozilla-central revisions whose Histograms.json is not
    /// available (PROVENANCE.md): with a cache that lacks them, bounds are null and the reason names each.
    @Test func realStoragePingsWithUncachedRevisions() throws {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.sharedPath("datasets/real/storage")])
        try fixture.directory.write("cache/releases/mozilla-release/a55c55edf302/Histograms.json", text: "{}")
        try store.rememberHistogramCache(directory: fixture.directory.path + "/cache", server: nil)
        let directory = URL(fileURLWithPath: fixture.directory.path + "/cache").standardizedFileURL.path
        let rows = try store.rows("""
            SELECT revision, histogram_count(ping_id, 'GC_MS'), histogram_summary(ping_id, 'GC_MS', revision) FROM pings GROUP BY 1 ORDER BY 1
            """)
        #expect(rows.map { [$0[0], $0[1]] } == [
            ["http://hg.mozilla.org/mozilla-central/rev/518f5bff0ae4", "4"],
            ["http://hg.mozilla.org/mozilla-central/rev/73f0c5b00572", "1"],
        ])
        for row in rows {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(row[2].utf8)) as? [String: Any])
            #expect(object["reason"] as? String == "revision \(row[0]) not in the histogram cache \(directory)")
            #expect(object["lower_bounds"] is NSNull && object["p95"] is NSNull)
            #expect((object["buckets"] as? [NSNumber])?.count == 50)
        }
    }

    /// The committed sample: four channels, four revisions, one copy of `datasets/histograms/Histograms.json`
    /// each; the bounds agree and equal EXPECTED.json's. Expected statistics computed (python_moztelemetry's
    /// percentile code) from EXPECTED.json's `bucket_sums` and `bounds`.
    @Test func sampleDatasetAcrossFourRevisions() throws {
        let expectedData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.repoPath("datasets/sample/EXPECTED.json")))
        let expected = try #require(try JSONSerialization.jsonObject(with: expectedData) as? [String: Any])
        let totals = try #require(expected["histogram_totals"] as? [String: Any])
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
        try store.rememberHistogramCache(directory: Fixtures.repoPath("datasets/sample/histogram-cache"), server: nil)
        #expect(try store.int("SELECT count(DISTINCT revision) FROM pings") == 4)
        let text = try #require(try store.rows("SELECT histogram_summary(ping_id, 'SAMPLE_GC_MS', revision) FROM pings").first?.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["reason"] is NSNull)
        #expect(Self.ints(object["lower_bounds"]) == Self.ints(totals["bounds"]))
        #expect(Self.ints(object["buckets"]) == Self.ints(totals["bucket_sums"]))
        #expect(abs(try #require(Self.number(object["mean"])) - 41.10846236394297) < 1e-9)
        #expect(abs(try #require(Self.number(object["p50"])) - 25.031664964249234) < 1e-9)
        #expect(abs(try #require(Self.number(object["p95"])) - 128.2977011494252) < 1e-9)
        let byChannel = try store.rows("""
            SELECT appUpdateChannel, histogram_percentile(histogram_summary(ping_id, 'SAMPLE_GC_MS', revision), 50)
            FROM pings WHERE appUpdateChannel IN ('aurora', 'beta', 'nightly', 'release') GROUP BY 1 ORDER BY 1
            """)
        let want: [(String, Double)] = [("aurora", 24.988372093023255), ("beta", 24.82437275985663),
                                        ("nightly", 24.97772277227723), ("release", 25.233062330623305)]
        #expect(byChannel.count == want.count)
        for (row, (channel, p50)) in zip(byChannel, want) {
            #expect(row[0] == channel)
            #expect(abs(try #require(Double(row[1])) - p50) < 1e-9, "\(channel)")
        }
    }
}
