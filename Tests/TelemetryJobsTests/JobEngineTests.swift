import Foundation
import Testing
import TelemetryCore
@testable import TelemetryJobs
import TelemetryStore
import TelemetryTestSupport

/// Counts every ping under one key, with a combine that records nothing itself (the runner counts calls).
struct AllPingsJob: Job {
    var withCombine = true
    var hasCombine: Bool { withCombine }
    func map(_ ping: JobPing, into context: inout MapContext<String, Int64>) throws {
        context.write("all", 1)
        context.write(ping.dimensions[0], 1)
    }
    func combine(key: String, values: [Int64]) throws -> Int64 { values.reduce(0, +) }
    func reduce(key: String, values: [Int64], into context: inout OutputContext) throws {
        context.write(key, values.reduce(0, +))
    }
}

/// Map-only, no reduce: the default `reduce` is never used.
struct NoReduceJob: Job {
    func map(_ ping: JobPing, into context: inout MapContext<String, Int>) throws {
        context.write(ping.documentID, try ping.payloadText.utf8.count)
    }
    var isMapOnly: Bool { true }
}

/// A job with reduce but no combine; changes separators in setupReduce.
struct SeparatorJob: Job {
    func map(_ ping: JobPing, into context: inout MapContext<String, Int>) throws { context.write(ping.dimensions.last!, 1) }
    func setupReduce(_ context: inout OutputContext) {
        context.fieldSeparator = ";"
        context.recordSeparator = "|"
    }
    func reduce(key: String, values: [Int], into context: inout OutputContext) throws { context.write(key, values.count) }
}

/// Throws on one document id.
struct ThrowingJob: Job {
    let badID: String
    func map(_ ping: JobPing, into context: inout MapContext<String, Int>) throws {
        if ping.documentID == badID { throw PingError("boom") }
        context.write("ok", 1)
    }
    func reduce(key: String, values: [Int], into context: inout OutputContext) throws { context.write(key, values.count) }
}

struct JobEngineTests {
    @Test func combineRunsAtFiftyAndDoesNotChangeResults() async throws {
        let store = try ImportedStore.sample()
        let total = Int(try store.int("SELECT count(*) FROM pings"))
        #expect(total > 50)
        for mappers in [1, 2, 5] {
            let with = try await JobRunner.run(AllPingsJob(), storePath: store.path,
                                               options: JobOptions(mappers: mappers, minimumPartitionPings: 1))
            let without = try await JobRunner.run(AllPingsJob(), storePath: store.path,
                                                  options: JobOptions(mappers: mappers, combineEnabled: false, minimumPartitionPings: 1))
            let noCombine = try await JobRunner.run(AllPingsJob(withCombine: false), storePath: store.path,
                                                    options: JobOptions(mappers: mappers, minimumPartitionPings: 1))
            #expect(with.partitions == mappers)
            #expect(with.combineCalls > 0, "mappers \(mappers)")
            #expect(without.combineCalls == 0)
            #expect(noCombine.combineCalls == 0)
            #expect(with.records == without.records)
            #expect(with.records == noCombine.records)
            #expect(with.records.first { $0.key == "all" }?.value == String(total))
        }
    }

    @Test func reduceIsCalledForEveryKeyEvenWithOneValue() async throws {
        let store = try ImportedStore.real()
        let result = try await JobRunner.run(SeparatorJob(), storePath: store.path)
        let days = try store.int("SELECT count(DISTINCT submission_date) FROM pings")
        #expect(result.records.count == Int(days))
        #expect(result.records.allSatisfy { Int($0.value)! >= 1 })
        #expect(JobOutputFormat.tsv.render(result) == result.records.map { "\($0.key);\($0.value)|" }.joined())
    }

    @Test func mapOnlyJobWritesEveryPairInMapperOrder() async throws {
        let store = try ImportedStore.sample()
        let result = try await JobRunner.run(NoReduceJob(), storePath: store.path, options: JobOptions(mappers: 1))
        let ids = try Store(path: store.path, create: false, readOnly: true).query("SELECT document_id FROM pings")[0].rows
        #expect(result.records.count == ids.count)
        #expect(result.partitions == 1)
        let many = try await JobRunner.run(NoReduceJob(), storePath: store.path, options: JobOptions(mappers: 4, minimumPartitionPings: 1))
        #expect(many.partitions == 4)
        #expect(many.records == result.records)   // partitions are contiguous runs of ping_id order
        #expect(Set(many.records) == Set(result.records))
        #expect(many.records.count == result.records.count)
    }

    @Test func throwingPingIsReportedAndSkippedOrStopsTheJob() async throws {
        let store = try ImportedStore.sample()
        let badID = try #require(try Store(path: store.path, create: false, readOnly: true)
            .connection.scalarText("SELECT document_id FROM pings ORDER BY ping_id LIMIT 1 OFFSET 17"))
        let copies = Int(try store.int("SELECT count(*) FROM pings WHERE document_id = '\(badID)'"))
        let total = Int(try store.int("SELECT count(*) FROM pings"))
        let result = try await JobRunner.run(ThrowingJob(badID: badID), storePath: store.path)
        #expect(result.badPings.map(\.documentID) == Array(repeating: badID, count: copies))
        #expect(result.badPings.first?.message == "boom")
        #expect(result.records == [OutputRecord(key: "ok", value: String(total - copies))])
        #expect(result.summary.contains("\(copies) bad"))
        await #expect(throws: JobError.mapFailed(documentID: badID, message: "boom")) {
            try await JobRunner.run(ThrowingJob(badID: badID), storePath: store.path, options: JobOptions(failFast: true))
        }
    }

    @Test func outputFormats() {
        let result = JobResult(records: [OutputRecord(key: "a,b", value: "say \"hi\""), OutputRecord(key: "x", value: "1")],
                               fieldSeparator: "\t", recordSeparator: "\n", pingsMapped: 2, badPings: [],
                               combineCalls: 0, partitions: 1)
        #expect(JobOutputFormat.tsv.render(result) == "a,b\tsay \"hi\"\nx\t1\n")
        #expect(JobOutputFormat.csv.render(result) == "\"a,b\",\"say \"\"hi\"\"\"\nx,1\n")
        let json = JobOutputFormat.json.render(result)
        #expect(json == "[{\"key\":\"a,b\",\"value\":\"say \\\"hi\\\"\"},\n {\"key\":\"x\",\"value\":\"1\"}]\n")
        let parsed = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: String]]
        #expect(parsed?.count == 2)
        #expect(parsed?.first?["value"] == "say \"hi\"")
    }

    @Test func unknownFilterDimensionAndUnknownJobAreErrors() async throws {
        let store = try ImportedStore.real()
        let filter = DimensionSchema(dimensions: [Dimension(fieldName: "nope", allowedValues: .any)])
        await #expect(throws: JobError.self) {
            try await JobRunner.run(PingsPerDayJob(), storePath: store.path, options: JobOptions(selection: JobSelection(filter: filter)))
        }
        #expect(throws: JobError.self) { try JobRegistry.entry(named: "no-such-job") }
        await #expect(throws: JobError.self) { try await JobRegistry.entry(named: "pings-per-day").run(["x"], store.path, JobOptions()) }
    }

    @Test func histogramsFromTopLevelOrUnifiedPayload() throws {
        let top = JobPing(documentID: "a", dimensions: [], payloadText: #"{"histograms":{"H":[1,2,3,-1,-1,0,0]}}"#)
        #expect(try top.histograms()["H"] == StoredHistogram(buckets: [1, 2], statistics: [3, -1, -1, 0, 0]))
        #expect(try top.histograms()["H"]?.isLinearFamily == true)
        let unified = JobPing(documentID: "b", dimensions: [], payloadText: #"{"payload":{"histograms":{"E":[4,9,1.5,2.5,-1,-1]}}}"#)
        #expect(try unified.histograms()["E"]?.buckets == [4])
        #expect(try unified.histograms()["E"]?.isLinearFamily == false)
        let broken = JobPing(documentID: "c", dimensions: [], payloadText: "{")
        #expect(throws: (any Error).self) { try broken.payload() }
    }
}

/// Failures that are not one ping's fault.
struct JobStoreFailureTests {
    /// A store whose BIG histogram sums past Int64.max in bucket 0.
    static func overflowingStore() throws -> ImportedStore {
        let tree = TemporaryDirectory("jobs-overflow")
        let pings = (1...2).map { n in
            "doc-\(n)\t{\"ver\":2,\"info\":{\"OS\":\"Linux\",\"appUpdateChannel\":\"nightly\"},\"histograms\":{\"BIG\":[9223372036854775807,1,0,5,-1,-1,0,0]}}"
        }
        try tree.write("saved_session/Firefox/nightly/22.0a1/20130226031002.20131011.v2.log", text: pings.joined(separator: "\n") + "\n")
        return try ImportedStore(root: tree.path)
    }

    /// Exact sums: a bucket sum past Int64.max ends the job with an error naming the key and bucket, never a crash
    /// or a wrapped number (the SQL functions do the same).
    @Test func bucketOverflowIsAnErrorNotACrash() async throws {
        let store = try Self.overflowingStore()
        for (job, args) in [("histogram-distribution", [String]()), ("histogram-by-channel", ["--histogram", "BIG"])] {
            do {
                _ = try await JobRegistry.entry(named: job).run(args, store.path, JobOptions())
                Issue.record("\(job) summed past Int64.max")
            } catch let error as JobError {
                #expect("\(error)".contains("bucket 0 overflows int64"), "\(job): \(error)")
            }
        }
    }

    /// A damaged column file ends the job once with the file and `reindex` named, instead of marking every ping bad.
    @Test func damagedColumnFileEndsTheJobOnce() async throws {
        let store = try ImportedStore.sample()
        let entries = try ColumnMaintenance.committedColumns(store: try Store(path: store.path, create: false, readOnly: true))
        let entry = try #require(entries?.values.first { $0.histogramName == "SAMPLE_GC_MS" && $0.bucketCount == 50 })
        let path = store.path + ".columns/" + entry.fileName
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 2] ^= 0x10
        try data.write(to: URL(fileURLWithPath: path))
        do {
            _ = try await JobRegistry.entry(named: "histogram-by-channel").run(["--histogram", "SAMPLE_GC_MS"], store.path, JobOptions())
            Issue.record("a damaged column gave a result")
        } catch let error as HistogramColumnError {
            #expect("\(error)".contains(path))
            #expect("\(error)".contains("reindex"))
        }
    }
}
