import Foundation
import Testing
import TelemetryCompression
import TelemetryConvert
import TelemetryCore
import TelemetryTestSupport

/// `telemetry convert` on real raw logs and on generated ones with known damage.
struct ConverterTests {
    /// Every storage-format record under `directory`: (document id, payload).
    static func storageRecords(under directory: String) throws -> [(String, JSONValue)] {
        var records: [(String, JSONValue)] = []
        let parser = PingParser(fields: [])
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let name = enumerator?.nextObject() as? String {
            guard name.hasSuffix(".xz") || name.hasSuffix(".lzma") else { continue }
            try LineReader(source: try DecompressingReader(path: directory + "/" + name)).forEachLine { line in
                guard let tab = line.bytes.firstIndex(of: 0x09) else { return }
                let id = String(decoding: line.bytes[..<tab], as: UTF8.self)
                // Damaged lines (the generator's bad records) are left out.
                guard let value = try? JSONValue.parse(UnsafeRawBufferPointer(rebasing: line.bytes[(tab + 1)...]), validatingWith: parser).value
                else { return }
                records.append((id, value))
            }
        }
        return records
    }

    @Test func realIdleDailyPingConvertsFieldByField() throws {
        let directory = TemporaryDirectory("convert-real")
        let cache = try makeHistogramCache([["repo": "releases/mozilla-release", "rev": "a55c55edf302",
                                             "file": "datasets/real/histograms/tags/FIREFOX_AURORA_23_BASE/Histograms.json"]], in: directory)
        let converter = Converter(outputDirectory: directory.path + "/out", options: ConvertOptions(), payloadConverter: payloadConverter(cache: cache))
        let summary = try converter.run(inputs: [Fixtures.sharedPath("datasets/real/raw-logs/telemetry1.log")])
        #expect(summary.processed == 1 && summary.converted == 1 && summary.rejected == 0)
        #expect(summary.skippedBytes == 1)
        #expect(summary.unknownHistograms == ["HTTP_OFFLINE_CACHE_DOCUMENT_LOAD": 1, "MIXED_CONTENT_PAGE_LOAD": 1])
        #expect(summary.mismatchedHistograms == ["GC_REASON_2": 1])
        #expect(summary.filesWritten.count == 1)
        let file = try #require(summary.filesWritten.first)
        let relative = String(file.dropFirst(directory.path.count + 5))
        #expect(relative.hasPrefix("idle_daily/Firefox/release/23.0.1/20130814063812.20130910.v2.log."))
        #expect(relative.hasSuffix(".xz"))

        let records = try Self.storageRecords(under: directory.path + "/out")
        #expect(records.count == 1)
        let (id, ping) = try #require(records.first)
        #expect(id == "17caa68c-25f5-450a-9cce-7d31318846d8")
        #expect(ping["ver"] == .int(2))
        #expect(ping["info"]?["OS"] == .string("WINNT"))
        #expect(ping["info"]?["revision"] == .string("http://hg.mozilla.org/releases/mozilla-release/rev/a55c55edf302"))
        let histograms = try #require(ping["histograms"]?.objectValue)
        #expect(histograms.members.count == 328 - 2)
        #expect(histograms["HTTP_OFFLINE_CACHE_DOCUMENT_LOAD"] == nil)

        // Every converted array against the raw ping's values and the definition's bounds (bucket-format file).
        let raw = try rawPing()
        let bucketFormat = try #require(try Fixtures.sharedJSON("datasets/real/histograms/bucket-format/a55c55edf302.json") as? [String: Any])
        let bounds = try #require(bucketFormat["histograms"] as? [String: Any])
        var checked = 0
        for member in histograms.members where member.key != "GC_REASON_2" {
            guard let spec = bounds[member.key] as? [String: Any], let buckets = spec["buckets"] as? [Int] else { continue }
            var expected = [Int64](repeating: 0, count: buckets.count)
            let rawHistogram = try #require(raw["histograms"]?[member.key])
            for value in rawHistogram["values"]?.objectValue?.members ?? [] {
                let index = try #require(buckets.firstIndex(of: Int(value.key) ?? -1))
                expected[index] = value.value.integerValue ?? -1
            }
            let array = try #require(member.value.arrayValue)
            #expect(array.prefix(buckets.count).map { $0.integerValue ?? -99 } == expected, "\(member.key)")
            for (offset, field) in ["sum", "log_sum", "log_sum_squares", "sum_squares_lo", "sum_squares_hi"].enumerated() {
                let wanted = rawHistogram[field] ?? .int(-1)
                #expect(sameJSON(array[buckets.count + offset], wanted), "\(member.key).\(field)")
            }
            checked += 1
        }
        #expect(checked == 325)
        // GC_REASON_2: the definition (n_values "JS::gcreason::NUM_TELEMETRY_REASONS", unevaluable in the raw tag
        // file) falls back to the ping's 101 buckets.
        #expect(histograms["GC_REASON_2"]?.arrayValue?.count == 101 + 5)
    }

    /// The classic ping inside telemetry1.log, parsed.
    private func rawPing() throws -> JSONValue {
        let reader = try RawLogReader(path: Fixtures.sharedPath("datasets/real/raw-logs/telemetry1.log"))
        var data: [UInt8] = []
        try reader.forEach(record: { data = $0.data })
        let json = try Gzip.inflate(data, limit: 1 << 24)
        return try JSONValue.parse(String(decoding: json, as: UTF8.self))
    }

    @Test func unifiedSavedSessionRecordsConvert() throws {
        let directory = TemporaryDirectory("convert-unicode")
        let cache = try makeHistogramCache([["repo": "mozilla-central", "rev": "eab4a81e4457", "inline": [
            "OSFILE_WRITEATOMIC_JANK_MS": ["kind": "exponential", "low": 1, "high": 5000, "n_buckets": 10, "description": "synthetic"],
        ]]], in: directory)
        let converter = Converter(outputDirectory: directory.path + "/out", options: ConvertOptions(), payloadConverter: payloadConverter(cache: cache))
        let summary = try converter.run(inputs: [Fixtures.sharedPath("datasets/real/raw-logs/unicode.v1.packed")])
        #expect(summary.converted == 2 && summary.rejected == 0)
        let records = try Self.storageRecords(under: directory.path + "/out")
        #expect(records.count == 2)
        for (id, ping) in records {
            #expect(id == "e7916aaf-ab3e-924c-a0bf-47d54359f721")
            #expect(ping["version"] == .int(5) && ping["ver"] == .int(5))
            #expect(ping["payload"] == nil)
            #expect(ping["info"]?["reason"] == .string("saved-session"))
            #expect(ping["info"]?["OS"] == .string("Darwin"))
            #expect(ping["simpleMeasurements"]?["UITelemetry"]?["toolbars"]?["currentSearchEngine"] == .string("Wikip\u{e9}dia (fr)"))
        }
        let files = summary.filesWritten.map { String($0.dropFirst(directory.path.count + 5)) }
        #expect(files.count == 1)
        #expect(files.first?.hasPrefix("saved_session/Firefox/nightly/39.0a1/20150309030224.20150311.v2.log.") == true)
    }

    @Test func generatedRawLogMatchesItsManifest() throws {
        let directory = TemporaryDirectory("convert-generated")
        let out = directory.path + "/gen"
        let generator = try runProcess("/usr/bin/env", ["python3", Fixtures.sharedPath("tools/gen_pings.py"), "--pings", "400",
                                                        "--format", "storage,rawlog", "--seed", "11", "--bad-fraction", "0.1",
                                                        "--duplicate-fraction", "0.05", "--log-version", "v2", "--out", out, "--procs", "1"])
        #expect(generator.status == 0, "\(generator.stderr)")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/MANIFEST.json"))) as? [String: Any])
        let rawlog = try #require((manifest["outputs"] as? [String: Any])?["rawlog"] as? [String: Any])
        let expectedCounts = (rawlog["expected_convert_counts"] as? [String: Int]) ?? [:]
        let expectedWarnings = (rawlog["expected_warning_counts"] as? [String: Int]) ?? [:]

        var options = ConvertOptions()
        options.jobs = 2
        let converter = Converter(outputDirectory: directory.path + "/converted", options: options,
                                  payloadConverter: payloadConverter(cache: out + "/histogram-cache"))
        let summary = try converter.run(inputs: [out + "/rawlog"])
        var counts = Dictionary(uniqueKeysWithValues: summary.failures.map { ($0.key.rawValue, $0.value) })
        counts["none"] = summary.converted
        #expect(counts == expectedCounts)
        #expect(summary.skippedBytes == rawlog["expected_skipped_bytes"] as? Int)
        for (warning, count) in expectedWarnings { #expect(summary.warnings[warning] == count, "\(warning)") }
        #expect(summary.processed == rawlog["records"] as? Int)

        // Every converted document equals (as parsed JSON) a storage line of the generator with the same id.
        var storage: [String: [JSONValue]] = [:]
        for (id, value) in try Self.storageRecords(under: out + "/storage") { storage[id, default: []].append(value) }
        let converted = try Self.storageRecords(under: directory.path + "/converted")
        #expect(converted.count == summary.converted)
        let damaged = Set(((manifest["bad_records"] as? [[String: Any]]) ?? (rawlog["bad_records"] as? [[String: Any]]) ?? [])
            .compactMap { $0["uuid"] as? String })
        var compared = 0
        for (id, value) in converted where !damaged.contains(id) {
            let candidates = storage[id] ?? []
            #expect(candidates.contains { sameJSON($0, value) }, "\(id) differs from the generator's storage line")
            compared += 1
        }
        #expect(compared > 300)

        // The errors file holds every rejected record with its category.
        let errorsDirectory = directory.path + "/converted/errors"
        var errorLines = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: errorsDirectory)) ?? [] {
            let text = try String(contentsOfFile: errorsDirectory + "/" + name, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let object = try JSONValue.parse(String(line))
                #expect(object["category"]?.stringValue.flatMap(RecordCategory.init(rawValue:)) != nil)
                #expect(object["offset"]?.integerValue != nil)
                errorLines += 1
            }
        }
        #expect(errorLines == summary.rejected)
        // Finished files only: no work files or partial files are left behind.
        let leftovers = FileManager.default.enumerator(atPath: directory.path + "/converted")?.allObjects.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".partial") || $0.hasPrefix(".work/") } ?? []
        #expect(leftovers.isEmpty)
    }

    @Test func rotationSplitsOutputAtMaxFileSize() throws {
        let directory = TemporaryDirectory("convert-rotate")
        var text = ""
        for i in 0..<200 {
            text += String(format: "00000000-0000-4000-8000-%012d\t", i) + #"{"ver":2,"info":{"reason":"saved-session","appName":"Firefox","appUpdateChannel":"nightly","appVersion":"28.0a1","appBuildID":"20131029030201"},"pad":"\#(String(repeating: "x", count: 400))"}"# + "\n"
        }
        let input = try directory.write("input.20131029.v2.log", text: text)
        var options = ConvertOptions()
        options.maxFileBytes = 10_000
        let summary = try Converter(outputDirectory: directory.path + "/out", options: options,
                                    payloadConverter: payloadConverter(cache: directory.path)).run(inputs: [input])
        #expect(summary.converted == 200)
        #expect(summary.filesWritten.count >= 9)
        #expect(try Self.storageRecords(under: directory.path + "/out").count == 200)
        #expect(summary.filesWritten.allSatisfy { $0.contains("/saved_session/Firefox/nightly/28.0a1/20131029030201.20131029.v2.log.") })
    }
}
