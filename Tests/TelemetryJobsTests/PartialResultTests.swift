import Foundation
import TelemetryCore
import TelemetryJobs
import TelemetryStore
import TelemetryTestSupport
import Testing

/// `telemetry job --partial` / `telemetry merge` (docs/jobs.md "Partial results"): partials of shard stores merged
/// equal one run over all the pings; anything that could give a wrong sum is refused.
@Suite struct PartialResultTests {
    /// The sample's files cut into `count` shard stores (contiguous runs of import order) plus one store of them all.
    final class ShardedSample: @unchecked Sendable {   // immutable after init
        let directory = TemporaryDirectory("partials")
        let whole: String
        let shards: [String]

        init(count: Int) throws {
            let root = Fixtures.repoPath("datasets/sample/storage")
            let files = try Importer.selectFiles(roots: [root], schema: .seed, filter: nil).files.map(\.path)
            let directory = directory
            whole = directory.file("whole.db")
            _ = try Importer(store: Store(path: whole, create: true), options: ImportOptions(jobs: 2)).run(roots: files)
            shards = try (0..<count).map { index in
                let path = directory.file("shard\(index).db")
                let part = Array(files[(files.count * index / count)..<(files.count * (index + 1) / count)])
                _ = try Importer(store: Store(path: path, create: true), options: ImportOptions(jobs: 2)).run(roots: part)
                return path
            }
        }

        func partials(_ job: AnyJob, options: JobOptions = JobOptions()) async throws -> [PartialInput] {
            var inputs: [PartialInput] = []
            for (index, path) in shards.enumerated() {
                let (data, _) = try await job.partial(storePath: path, options: options,
                                                      shard: PartialShard(index: index, count: shards.count))
                inputs.append(PartialInput(source: "shard\(index)", data: data))
            }
            return inputs
        }
    }

    static let jobs: [(name: String, arguments: [String])] = [
        ("pings-per-day", []), ("os-distribution", []), ("histogram-distribution", []), ("duplicate-ids", []),
        ("dimensions-dump", []), ("histogram-by-channel", ["--histogram", "SAMPLE_GC_MS"]),
        ("histogram-by-channel", ["--histogram", "SAMPLE_TABS_OPEN", "--by", "info"]),
    ]

    @Test func everyBuiltinMergedFromShardsEqualsOneRun() async throws {
        let sample = try ShardedSample(count: 3)
        let filter = try DimensionSchema(json: Data("""
            {"version": 1, "dimensions": [
              {"field_name": "reason", "allowed_values": "*"}, {"field_name": "appName", "allowed_values": "*"},
              {"field_name": "appUpdateChannel", "allowed_values": ["release", "beta", "nightly"]},
              {"field_name": "appVersion", "allowed_values": "*"}, {"field_name": "appBuildID", "allowed_values": "*"},
              {"field_name": "submission_date", "allowed_values": "*"}]}
            """.utf8), source: "<inline>")
        for options in [JobOptions(), JobOptions(selection: JobSelection(filter: filter, whereSQL: "os <> 'Darwin'")), JobOptions(mappers: 1)] {
            for (name, arguments) in Self.jobs {
                let entry = try JobRegistry.entry(named: name)
                let single = try await entry.make(arguments, sample.whole).run(storePath: sample.whole, options: options)
                let partials = try await sample.partials(try entry.make(arguments, sample.shards[0]), options: options)
                let merged = try entry.make(arguments, nil).merge(partials)
                #expect(merged.records == single.records, "\(name) \(arguments)")
                #expect(!single.records.isEmpty || name == "duplicate-ids", "\(name) gave nothing")
                #expect(merged.pingsMapped == single.pingsMapped, "\(name)")
                #expect(merged.badPings.map(\.documentID).sorted() == single.badPings.map(\.documentID).sorted(), "\(name)")
                // Any order of the files on the command line: the shard index decides.
                let reversed = try entry.make(arguments, nil).merge(partials.reversed())
                #expect(reversed.records == single.records, "\(name) reversed")
            }
        }
    }

    @Test func duplicateIDsAcrossShardsAreCounted() async throws {
        // The same file in two shards: a single store holding both copies reports every id twice; so must the merge.
        let directory = TemporaryDirectory("partials-dup")
        let root = Fixtures.repoPath("datasets/sample/storage")
        let file = try #require(try Importer.selectFiles(roots: [root], schema: .seed, filter: nil).files.first).path
        let copy = directory.file("copy/" + String(file.dropFirst(root.count + 1)))
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: copy).deletingLastPathComponent().path, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: file, toPath: copy)
        let whole = directory.file("whole.db")
        _ = try Importer(store: Store(path: whole, create: true)).run(roots: [file, copy])
        var inputs: [PartialInput] = []
        let job = try JobRegistry.entry(named: "duplicate-ids").make([], nil)
        for (index, path) in [file, copy].enumerated() {
            let store = directory.file("s\(index).db")
            _ = try Importer(store: Store(path: store, create: true)).run(roots: [path])
            inputs.append(PartialInput(source: "s\(index)", data: try await job.partial(storePath: store, options: JobOptions(),
                                                                                      shard: PartialShard(index: index, count: 2)).data))
        }
        let single = try await job.run(storePath: whole, options: JobOptions())
        #expect(!single.records.isEmpty && single.records.allSatisfy { $0.value == "2" })
        #expect(try job.merge(inputs).records == single.records)
    }

    @Test func hostilePartialsAreRefusedWithTheFileNamed() async throws {
        let sample = try ShardedSample(count: 2)
        let entry = try JobRegistry.entry(named: "os-distribution")
        let job = try entry.make([], nil)
        let good = try await sample.partials(try entry.make([], sample.shards[0]))
        let text = String(decoding: good[0].data, as: UTF8.self)

        func refusal(_ inputs: [PartialInput], using merging: AnyJob? = nil) -> PartialError? {
            do { _ = try (merging ?? job).merge(inputs); return nil } catch let error as PartialError { return error } catch { return nil }
        }
        // Truncated anywhere: before the end line, mid-record, mid-header.
        for cut in [good[0].data.count - 1, good[0].data.count / 2, 10] {
            let error = refusal([PartialInput(source: "cut.partial", data: good[0].data.prefix(cut)), good[1]])
            guard case let .truncated(source, _)? = error else { Issue.record("cut at \(cut): \(String(describing: error))"); continue }
            #expect(source == "cut.partial")
        }
        // Whole lines dropped (the file still ends with a line feed and an end line): the count or checksum says so.
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.remove(at: 1)
        #expect(refusal([PartialInput(source: "short", data: Data(lines.joined(separator: "\n").utf8)), good[1]])
                == .truncated(source: "short", reason: "\(lines.count - 3) record(s), the end line says \(lines.count - 2)"))
        // A count changed: the checksum no longer matches.
        let altered = text.replacingOccurrences(of: "\"values\":[", with: "\"values\":[1")
        guard case .truncated? = refusal([PartialInput(source: "altered", data: Data(altered.utf8)), good[1]]) else {
            Issue.record("altered partial accepted"); return
        }
        // Another format version, another job, another job version.
        let v2 = text.replacingOccurrences(of: "\"format_version\":1", with: "\"format_version\":2")
        #expect(refusal([PartialInput(source: "v2", data: Data(v2.utf8))]) == .unsupportedFormatVersion(source: "v2", found: 2))
        let other = try JobRegistry.entry(named: "pings-per-day").make([], nil)
        guard case let .otherJob(source, found, _)? = refusal(good, using: other) else { Issue.record("other job accepted"); return }
        #expect(source == "shard0" && found.name == "os-distribution")
        let newer = AnyJob(OSDistributionJob(), identity: JobIdentity(name: "os-distribution", version: "2", arguments: []))
        guard case .otherJob? = refusal(good, using: newer) else { Issue.record("other version accepted"); return }
        // Duplicated shard (also a second attempt of it), missing shard, nothing at all, not a partial.
        #expect(refusal([good[0], good[1], PartialInput(source: "again", data: good[0].data)])
                == .duplicateShard(index: 0, count: 2, sources: ["shard0", "again"]))
        let retried = try await job.partial(storePath: sample.shards[0], options: JobOptions(), shard: PartialShard(index: 0, count: 2, attempt: 1))
        #expect(refusal([good[0], good[1], PartialInput(source: "attempt1", data: retried.data)])
                == .duplicateShard(index: 0, count: 2, sources: ["shard0", "attempt1"]))
        #expect(refusal([good[1]]) == .missingShards(indexes: [0], count: 2))
        #expect(refusal([]) == .noPartials)
        #expect(refusal(JobPartialFormat.split(Data(), source: "<stdin>")) == .noPartials)
        #expect(refusal([PartialInput(source: "empty", data: Data())]) == .empty(source: "empty"))
        guard case .notAPartial? = refusal([PartialInput(source: "csv", data: Data("Darwin,59\n".utf8))]) else { Issue.record("csv accepted"); return }
        // Partials of different runs: another filter.
        let filtered = try await job.partial(storePath: sample.shards[1], options: JobOptions(selection: JobSelection(whereSQL: "os = 'Linux'")),
                                             shard: PartialShard(index: 1, count: 2))
        #expect(refusal([good[0], PartialInput(source: "where", data: filtered.data)])
                == .mismatch(source: "where", field: "--where", reference: "shard0"))
        // Concatenated on standard input: split and merged.
        let merged = try job.merge(JobPartialFormat.split(good[0].data + good[1].data, source: "<stdin>"))
        #expect(merged.records == (try await job.run(storePath: sample.whole, options: JobOptions())).records)
    }
}
