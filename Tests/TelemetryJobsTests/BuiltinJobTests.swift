import Foundation
import Testing
import TelemetryCore
@testable import TelemetryJobs
import TelemetryStore
import TelemetryTestSupport

/// Each built-in job against its `queries/job_*.sql` twin, on the real pings and on the committed sample.
struct BuiltinJobTests {
    enum DataSet: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case real, sample
        var testDescription: String { rawValue }
        func store() throws -> ImportedStore { self == .real ? try .real() : try .sample() }
    }

    static let twins: [(job: String, args: [String], script: String, parameters: [String: SQLValue], sorted: Bool)] = [
        ("pings-per-day", [], "job_pings_per_day.sql", [:], false),
        ("os-distribution", [], "job_os_distribution.sql", [:], false),
        ("histogram-distribution", [], "job_histogram_distribution.sql", [:], false),
        ("duplicate-ids", [], "job_duplicate_ids.sql", [:], false),
        ("dimensions-dump", [], "job_dimensions_dump.sql", [:], true),
    ]

    @Test(arguments: DataSet.allCases)
    func everyBuiltinEqualsItsSQLTwin(_ dataSet: DataSet) async throws {
        let store = try dataSet.store()
        for twin in Self.twins {
            let entry = try JobRegistry.entry(named: twin.job)
            let result = try await entry.run(twin.args, store.path, JobOptions(mappers: 3))
            var sql = try store.twin(twin.script, parameters: twin.parameters)
            var records = result.records
            if twin.sorted {
                records.sort { ($0.key, $0.value) < ($1.key, $1.value) }
                sql.sort { ($0.key, $0.value) < ($1.key, $1.value) }
            }
            #expect(records == sql, "\(twin.job) on \(dataSet)")
            #expect(!records.isEmpty || twin.job == "duplicate-ids", "\(twin.job) on \(dataSet) gave nothing")
        }
    }

    @Test(arguments: DataSet.allCases)
    func histogramByChannelEqualsItsSQLTwin(_ dataSet: DataSet) async throws {
        let store = try dataSet.store()
        let names = dataSet == .sample ? ["SAMPLE_GC_MS", "SAMPLE_TABS_OPEN"] : ["GC_MS", "CYCLE_COLLECTOR"]
        for name in names {
            let result = try await JobRegistry.entry(named: "histogram-by-channel").run(["--histogram", name], store.path, JobOptions())
            let sql = try store.twin("job_histogram_by_channel.sql", parameters: ["histogram": .text(name)])
            #expect(result.records == sql, "\(name) on \(dataSet)")
        }
    }

    @Test(arguments: DataSet.allCases)
    func histogramByInfoChannelEqualsItsSQLTwin(_ dataSet: DataSet) async throws {
        let store = try dataSet.store()
        for name in dataSet == .sample ? ["SAMPLE_GC_MS", "SAMPLE_TABS_OPEN"] : ["GC_MS", "CYCLE_COLLECTOR"] {
            let result = try await JobRegistry.entry(named: "histogram-by-channel")
                .run(["--histogram", name, "--by", "info"], store.path, JobOptions(mappers: 2, minimumPartitionPings: 1))
            let sql = try store.twin("job_histogram_by_info_channel.sql", parameters: ["histogram": .text(name)])
            #expect(result.records == sql, "\(name) on \(dataSet)")
            #expect(!sql.isEmpty)
        }
    }

    /// Jobs read histograms from the column files when they are current and from the payload JSON otherwise;
    /// both give the same records (and the columns path reads no payload).
    @Test(arguments: DataSet.allCases)
    func histogramJobsGiveTheSameFromColumnsAndFromPayloads(_ dataSet: DataSet) async throws {
        let withColumns = try dataSet.store()
        let root = dataSet == .sample ? Fixtures.repoPath("datasets/sample/storage") : Fixtures.sharedPath("datasets/real/storage")
        let withoutColumns = try ImportedStore(root: root, histogramColumns: false)
        #expect(throws: HistogramColumnError.self) {
            _ = try HistogramColumns.open(store: try Store(path: withoutColumns.path, create: false, readOnly: true), repair: false)
        }
        let name = dataSet == .sample ? "SAMPLE_GC_MS" : "GC_MS"
        for (job, args) in [("histogram-by-channel", ["--histogram", name]), ("histogram-by-channel", ["--histogram", name, "--by", "info"]),
                            ("histogram-distribution", [])] {
            let entry = try JobRegistry.entry(named: job)
            let fromColumns = try await entry.run(args, withColumns.path, JobOptions())
            let fromPayloads = try await entry.run(args, withoutColumns.path, JobOptions())
            #expect(fromColumns.records == fromPayloads.records, "\(job) \(args) on \(dataSet)")
            #expect(!fromColumns.records.isEmpty)
        }
    }

    /// With a histogram cache remembered by the store, histogram-distribution takes the kinds from each ping's
    /// revision: only enumerated, boolean and flag histograms, not the linear or count ones the statistics rule
    /// would let in; its SQL twin (histogram_kind) agrees.
    @Test func histogramDistributionUsesTheRevisionsKinds() async throws {
        let store = try ImportedStore.sample()
        let heuristic = try await JobRegistry.entry(named: "histogram-distribution").run([], store.path, JobOptions())
        try Store(path: store.path, create: false).rememberHistogramCache(
            directory: Fixtures.repoPath("datasets/sample/histogram-cache"), server: nil)
        let byKind = try await JobRegistry.entry(named: "histogram-distribution").run([], store.path, JobOptions())
        #expect(byKind.records.map(\.key) == ["SAMPLE_GC_REASON", "SAMPLE_IMAGE_DECODE_TYPE", "SAMPLE_SAFE_MODE_USED",
                                               "SAMPLE_SESSION_RESTORED_OK", "SAMPLE_SHUTDOWN_OK"])
        #expect(Set(heuristic.records.map(\.key)).isSuperset(of: byKind.records.map(\.key)))
        #expect(heuristic.records.contains { $0.key == "SAMPLE_TABS_OPEN" })
        #expect(byKind.records == (try store.twin("job_histogram_distribution.sql")))
        for record in byKind.records { #expect(heuristic.records.contains(record)) }   // same sums where both count
    }

    /// A store whose histogram H comes in two layouts (3 and 4 buckets; hazard BR-21), one channel with both.
    static func mixedLayoutStore() throws -> ImportedStore {
        let tree = TemporaryDirectory("jobs-mixed-layouts")
        let histograms = [
            ("nightly", #"{"H":[1,2,3,0.5,-1,-1,0,0],"E":[4,0,1,-1,-1,0,0]}"#),
            ("nightly", #"{"H":[1,1,1,5,2.25,-1,-1,0,0],"E":[0,0,0,1,-1,-1,0,0]}"#),
            ("nightly", #"{"H":[0,0,7,0.25,-1,-1,0,0]}"#),
            ("beta", #"{"H":[2,0,0,9,3,-1,-1,1,0]}"#),
            ("beta", #"{"H":[1,0,0,1,1,-1,-1,1,0]}"#),
        ]
        for (index, (channel, json)) in histograms.enumerated() {
            let ping = "doc-\(index)\t{\"ver\":2,\"info\":{\"OS\":\"Linux\",\"appUpdateChannel\":\"\(channel)\"},\"histograms\":\(json)}\n"
            try tree.write("saved_session/Firefox/\(channel)/22.0a1/20130226031002.2013101\(index).v2.log", text: ping)
        }
        return try ImportedStore(root: tree.path)
    }

    /// Failure 7 of issue 11: the jobs zero-padded mixed layouts while SQL refused them. Every built-in job and its
    /// twin give the same answer on a store with mixed layouts, grouped by layout with the statistics summed.
    @Test func everyBuiltinEqualsItsSQLTwinOnMixedLayouts() async throws {
        let store = try Self.mixedLayoutStore()
        let runs = Self.twins + [
            ("histogram-by-channel", ["--histogram", "H"], "job_histogram_by_channel.sql", ["histogram": .text("H")], false),
            ("histogram-by-channel", ["--histogram", "H", "--by", "info"], "job_histogram_by_info_channel.sql", ["histogram": .text("H")], false),
        ]
        #expect(Set(runs.map(\.job)) == Set(JobRegistry.entries.map(\.name)), "every built-in job has its twin here")
        for twin in runs {
            let result = try await JobRegistry.entry(named: twin.job).run(twin.args, store.path, JobOptions(mappers: 2, minimumPartitionPings: 1))
            var sql = try store.twin(twin.script, parameters: twin.parameters)
            var records = result.records
            if twin.sorted {
                records.sort { ($0.key, $0.value) < ($1.key, $1.value) }
                sql.sort { ($0.key, $0.value) < ($1.key, $1.value) }
            }
            #expect(records == sql, "\(twin.job) \(twin.args)")
        }
        let byChannel = try await JobRegistry.entry(named: "histogram-by-channel").run(["--histogram", "H"], store.path, JobOptions())
        #expect(byChannel.records.map { "\($0.key)=\($0.value)" } == [
            "beta=[3,0,0,10,4,-1,-1,2,0]",
            "nightly [3 buckets]=[1,2,10,0.75,-1,-1,0,0]",
            "nightly [4 buckets]=[1,1,1,5,2.25,-1,-1,0,0]",
        ])
        let distribution = try await JobRegistry.entry(named: "histogram-distribution").run([], store.path, JobOptions())
        #expect(distribution.records.map { "\($0.key)=\($0.value)" } == [
            "E [2 buckets]=[4,0,1,-1,-1,0,0]", "E [3 buckets]=[0,0,0,1,-1,-1,0,0]",
            "H [3 buckets]=[1,2,10,0.75,-1,-1,0,0]", "H [4 buckets]=[4,1,1,15,6.25,-1,-1,2,0]",
        ])
    }

    /// Issue 11 item 8: `--histogram` with a misspelt name summed nothing and exited 0; now it is an error naming
    /// the closest names of the store.
    @Test func unknownHistogramNameIsAnErrorNamingTheClosest() async throws {
        let store = try ImportedStore.sample()
        await #expect {
            _ = try await JobRegistry.entry(named: "histogram-by-channel").run(["--histogram", "SAMPLE_GC_MSS"], store.path, JobOptions())
        } throws: { error in
            "\(error)".contains("histogram-by-channel: --histogram: no histogram named SAMPLE_GC_MSS in the store; closest: SAMPLE_GC_MS")
        }
        #expect { _ = try store.twin("job_histogram_by_channel.sql", parameters: ["histogram": .text("SAMPLE_GC_MSS")]) } throws: { error in
            "\(error)".contains("closest: SAMPLE_GC_MS")
        }
    }

    @Test func sampleNumbersMatchExpectedJSON() async throws {
        let store = try ImportedStore.sample()
        let expected = try SampleExpectations.load()
        func asCounts(_ result: JobResult) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: result.records.map { ($0.key, Int($0.value) ?? -1) })
        }
        let days = try await JobRunner.run(PingsPerDayJob(), storePath: store.path)
        #expect(asCounts(days) == SampleExpectations.counts(expected, "by_submission_date"))
        let os = try await JobRunner.run(OSDistributionJob(), storePath: store.path)
        #expect(asCounts(os) == SampleExpectations.counts(expected, "by_OS"))
        let duplicates = try await JobRunner.run(DuplicateIDsJob(), storePath: store.path)
        // One true duplicate (the resubmission); the two ids shared across ping types are not duplicates.
        #expect(duplicates.records.map(\.key) == ["7c81698e-6a65-420b-a458-025708a5adf3/saved_session"])
        #expect(duplicates.records.map(\.value) == ["2"])
        #expect(days.pingsMapped == (expected["good_pings"] as? NSNumber)?.intValue)

        let totals = try #require(expected["histogram_totals"] as? [String: Any])
        let name = try #require(totals["name"] as? String)
        let bucketSums = try #require(totals["bucket_sums"] as? [NSNumber]).map(\.int64Value)
        let byChannel = try await JobRunner.run(HistogramByChannelJob(histogram: name, channelIndex: 2), storePath: store.path)
        var overall = HistogramAccumulator()
        for record in byChannel.records {   // storage-format sums: buckets, then 5 statistics
            let array = try #require(try JSONSerialization.jsonObject(with: Data(record.value.utf8)) as? [NSNumber])
            try overall.add(buckets: array.dropLast(5).map(\.int64Value), statistics: array.suffix(5).map { .integer($0.int64Value) })
        }
        #expect(overall.buckets == bucketSums)
    }

    @Test func realOSDistributionReportsPingsWithoutInfoOS() async throws {
        let store = try ImportedStore.real()
        let result = try await JobRunner.run(OSDistributionJob(), storePath: store.path)
        let withoutOS = try store.int("SELECT count(*) FROM pings WHERE os IS NULL")
        #expect(result.badPings.count == Int(withoutOS))
        #expect(result.pingsMapped == Int(try store.int("SELECT count(*) FROM pings")))
    }

    @Test func filterIsSanitisedAndAppliedBeforeMapping() async throws {
        let store = try ImportedStore.sample()
        let directory = TemporaryDirectory("jobs-filter")
        let filterPath = try directory.write("filter.json", text: """
        {"version": 1, "dimensions": [
          {"field_name": "reason", "allowed_values": ["saved-session"]},
          {"field_name": "appName", "allowed_values": "*"},
          {"field_name": "appUpdateChannel", "allowed_values": ["nightly", "aurora"]},
          {"field_name": "appVersion", "allowed_values": "*"},
          {"field_name": "appBuildID", "allowed_values": "*"},
          {"field_name": "submission_date", "allowed_values": {"min": "20131016", "max": "20131231"}}
        ]}
        """)
        let filter = try DimensionSchema(contentsOf: filterPath)
        let result = try await JobRunner.run(DimensionsDumpJob(), storePath: store.path,
                                             options: JobOptions(selection: JobSelection(filter: filter)))
        let expected = try store.int("""
            SELECT count(*) FROM pings WHERE reason = 'saved_session' AND appUpdateChannel IN ('nightly', 'aurora')
            AND submission_date >= '20131016'
            """)
        #expect(expected > 0)
        #expect(result.records.count == Int(expected))
        #expect(result.pingsMapped == Int(expected))

        let viaWhere = try await JobRunner.run(DimensionsDumpJob(), storePath: store.path, options: JobOptions(selection:
            JobSelection(whereSQL: "reason = 'saved_session' AND appUpdateChannel IN ('nightly', 'aurora') AND submission_date >= '20131016'")))
        #expect(Set(viaWhere.records) == Set(result.records))
    }
}
