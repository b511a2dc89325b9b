import Foundation
import Testing
import TelemetryCompression
import TelemetryConvert
import TelemetryCore
import TelemetryTestSupport

/// `../shared/hazards.md` entries for the convert stage.
struct ConvertHazardTests {
    static let revisionA = "http://hg.mozilla.org/mozilla-central/rev/aaaaaaaaaaaa"
    static let revisionB = "http://hg.mozilla.org/mozilla-central/rev/bbbbbbbbbbbb"
    static let path = "0fdac909-d2ec-454c-b625-261a3e5d5c9b/saved-session/Firefox/31.0/release/20140715214327"

    /// A v1 ping with `histograms` (raw form) at `revision`.
    static func ping(_ histograms: String, revision: String = revisionA) -> String {
        #"{"ver":1,"info":{"reason":"saved-session","appName":"Firefox","appVersion":"31.0","appUpdateChannel":"release","appBuildID":"20140715214327","revision":"\#(revision)"},"histograms":{\#(histograms)}}"#
    }

    /// Runs the converter over records written to a raw log; returns the summary and the converted pings by id.
    func convert(_ records: [(path: String, body: [UInt8])], timestamp: UInt64 = 1_388_631_600_000) throws -> (ConvertSummary, [(String, JSONValue)], TemporaryDirectory) {
        let directory = TemporaryDirectory("convert-hazard")
        let cache = try makeHistogramCache([
            ["repo": "mozilla-central", "rev": "aaaaaaaaaaaa", "inline": [
                "GC_MS": ["kind": "exponential", "high": 10000, "n_buckets": 50, "description": "GC"],
                "FX_TAB_SWITCH_TOTAL_MS": ["kind": "exponential", "high": 1000, "n_buckets": 20, "description": "A"],
                "NEGATIVE_COUNT": ["kind": "linear", "high": 10, "n_buckets": 11, "description": "neg"],
            ]],
            ["repo": "mozilla-central", "rev": "bbbbbbbbbbbb", "inline": [
                "FX_TAB_SWITCH_TOTAL_MS": ["kind": "exponential", "high": 1000, "n_buckets": 50, "description": "B"],
            ]],
        ], in: directory)
        var bytes: [UInt8] = []
        for (index, record) in records.enumerated() {
            bytes += RawRecord(version: .v1, timestamp: timestamp + UInt64(index), path: Array(record.path.utf8), data: record.body).encoded()
        }
        let input = try directory.write("telemetry.log.v1.test.1.1", bytes)
        let summary = try Converter(outputDirectory: directory.path + "/out", options: ConvertOptions(),
                                    payloadConverter: payloadConverter(cache: cache)).run(inputs: [input])
        return (summary, try ConverterTests.storageRecords(under: directory.path + "/out"), directory)
    }

    func errors(_ directory: TemporaryDirectory) throws -> [JSONValue] {
        let text = (try? String(contentsOfFile: directory.path + "/out/errors/telemetry.log.v1.test.1.1.errors.jsonl", encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    @Test("BR-04: empty document ids and id-only paths")
    func emptyAndIdOnlyPaths() throws {
        let body = Array(#"{"ver":2,"info":{"reason":"saved-session"}}"#.utf8)
        let (summary, converted, directory) = try convert([
            ("/saved-session/Firefox/31.0/release/20140715214327", body),
            ("0fdac909-d2ec-454c-b625-261a3e5d5c9b", Array(#"{"ver":2}"#.utf8)),
            (Self.path, body),
        ])
        #expect(summary.failures == [.invalidPath: 1, .uuidOnlyPath: 1])
        #expect(converted.map(\.0) == ["0fdac909-d2ec-454c-b625-261a3e5d5c9b"])
        let rows = try errors(directory)
        #expect(rows.map { $0["category"]?.stringValue } == ["invalid_path", "uuid_only_path"])
        #expect(rows[0]["data_base64"]?.stringValue == Data(body).base64EncodedString())
        #expect(rows[0]["path"]?.stringValue == "/saved-session/Firefox/31.0/release/20140715214327")
        #expect(summary.filesWritten.allSatisfy { !$0.contains("//") })
    }

    @Test("BR-06: a gzip bomb stops at the inflate limit")
    func gzipBomb() throws {
        let bomb = Gzip.compress([UInt8](repeating: 0, count: 100_000_000), level: 9)
        #expect(bomb.count < 204_800)
        let (summary, converted, directory) = try convert([(Self.path, bomb), (Self.path, Array(#"{"ver":2,"info":{}}"#.utf8))])
        #expect(summary.failures == [.corruptedData: 1])
        #expect(converted.count == 1)
        #expect(try errors(directory).first?["reason"]?.stringValue == "uncompressed size exceeds 1048576")
    }

    @Test("BR-10, BR-15, BR-11: NaN, deep nesting and integers over int64 are conversion errors")
    func invalidJSON() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let (summary, converted, directory) = try convert([
            (Self.path, Array(#"{"ver":2,"simpleMeasurements":{"firstPaint":NaN,"uptime":Infinity}}"#.utf8)),
            (Self.path, Array(deep.utf8)),
            (Self.path, Array(Self.ping(#""GC_MS":{"values":{"0":1},"sum":18446744073709551616}"#).utf8)),
            (Self.path, Array(#"{"ver":2,"ok":true}"#.utf8)),
        ])
        #expect(summary.failures == [.conversionError: 3])
        #expect(converted.count == 1)
        let reasons = try errors(directory).compactMap { $0["reason"]?.stringValue }
        #expect(reasons[0].contains("invalid token NaN at byte 44"))
        #expect(reasons[1].contains("nesting deeper than 1024"))
        #expect(reasons[2].contains("integer out of int64 range"))
    }

    @Test("BR-11: big counts and sums stay exact through compaction")
    func bigIntegersStayExact() throws {
        let (summary, converted, _) = try convert([
            (Self.path, Array(Self.ping(#""GC_MS":{"range":[1,10000],"bucket_count":50,"histogram_type":0,"values":{"0":3000000000},"sum":9007199254740993}"#).utf8)),
        ])
        #expect(summary.converted == 1)
        let array = try #require(converted.first?.1["histograms"]?["GC_MS"]?.arrayValue)
        #expect(array.count == 55)
        #expect(array[0] == .int(3_000_000_000))
        #expect(array[50] == .int(9_007_199_254_740_993))
        #expect(Array(array[51...]) == [.int(-1), .int(-1), .int(-1), .int(-1)])
    }

    @Test("BR-12: duplicate keys convert with a warning, first occurrence wins")
    func duplicateKeys() throws {
        let (summary, converted, _) = try convert([
            (Self.path, Array(#"{"ver":2,"info":{"reason":"saved-session","OS":"WINNT","OS":"Darwin"}}"#.utf8)),
        ])
        #expect(summary.converted == 1)
        #expect(summary.warnings["duplicate_key"] == 1)
        #expect(converted.first?.1["info"]?["OS"] == .string("WINNT"))
    }

    @Test("BR-17, BR-18: negative counts and keys that are not lower bounds are bad payloads")
    func badBuckets() throws {
        let (summary, converted, directory) = try convert([
            (Self.path, Array(Self.ping(#""NEGATIVE_COUNT":{"bucket_count":11,"histogram_type":1,"range":[1,10],"sum":10,"values":{"0":0,"1":10,"2":-1000,"3":0}}"#).utf8)),
            (Self.path, Array(Self.ping(#""GC_MS":{"values":{"0":1,"9":2}}"#).utf8)),
            (Self.path, Array(Self.ping(#""GC_MS":{"values":{"foo":1}}"#).utf8)),
            (Self.path, Array(Self.ping(#""GC_MS":{"values":{"3.0683611344442837e+257":1}}"#).utf8)),
            (Self.path, Array(Self.ping(#""GC_MS":{"values":{"0":"12"}}"#).utf8)),
            (Self.path, Array(Self.ping(#""GC_MS":{"values":{"0":1.5}}"#).utf8)),
        ])
        #expect(summary.failures == [.badPayload: 6])
        #expect(converted.isEmpty)
        let reasons = try errors(directory).compactMap { $0["reason"]?.stringValue }
        #expect(reasons[0].contains("NEGATIVE_COUNT") && reasons[0].contains("-1000") && reasons[0].contains("negative"))
        #expect(reasons[1].hasPrefix("Found invalid bucket GC_MS.values[9]"))
        #expect(reasons[2].hasPrefix("Found invalid bucket GC_MS.values[foo]"))
        #expect(reasons[3].contains("3.0683611344442837e+257"))
        #expect(reasons[4].hasPrefix("Found non-integer bucket value: GC_MS.values[0]"))
        #expect(reasons[5].hasPrefix("Found non-integer bucket value: GC_MS.values[0]"))
    }

    @Test("BR-21: the definition decides the layout; a differing declaration is a warning")
    func definitionMismatch() throws {
        let (summary, converted, directory) = try convert([
            (Self.path, Array(Self.ping(#""FX_TAB_SWITCH_TOTAL_MS":{"bucket_count":20,"histogram_type":0,"range":[1,1000],"values":{"9":3,"13":1}}"#).utf8)),
            (Self.path, Array(Self.ping(#""FX_TAB_SWITCH_TOTAL_MS":{"bucket_count":50,"histogram_type":0,"range":[1,1000],"values":{"5":2,"8":1}}"#, revision: Self.revisionB).utf8)),
            (Self.path, Array(Self.ping(#""FX_TAB_SWITCH_TOTAL_MS":{"bucket_count":50,"histogram_type":1,"range":[1,1000],"values":{"1":4,"6":1}}"#).utf8)),
            (Self.path, Array(Self.ping(#""FX_TAB_SWITCH_TOTAL_MS":{"bucket_count":50,"histogram_type":1,"range":[1,1000],"values":{"22":2}}"#).utf8)),
        ])
        #expect(summary.converted == 3)
        #expect(summary.failures == [.badPayload: 1])
        #expect(summary.mismatchedHistograms == ["FX_TAB_SWITCH_TOTAL_MS": 1])
        let lengths = converted.compactMap { $0.1["histograms"]?["FX_TAB_SWITCH_TOTAL_MS"]?.arrayValue?.count }.sorted()
        #expect(lengths == [25, 25, 55])
        #expect(try errors(directory).first?["reason"]?.stringValue?.contains("FX_TAB_SWITCH_TOTAL_MS.values[22]") == true)
    }

    @Test("BR-23: pings are partitioned by the server's receive time, not the client's clock")
    func clientClockIsNotTheSubmissionDate() throws {
        let future = #"{"version":4,"type":"crash","id":"x","creationDate":"2030-01-01T00:00:00.000Z","application":{"name":"Firefox","version":"40.0","channel":"release","buildId":"20150801000000"},"payload":{}}"#
        let past = future.replacingOccurrences(of: "2030-01-01", with: "1970-01-01")
        let (summary, converted, _) = try convert([(Self.path, Array(future.utf8)), (Self.path, Array(past.utf8))],
                                                  timestamp: 1_438_387_200_000)   // 2015-08-01T00:00:00Z
        #expect(summary.converted == 2, "\(summary.failures) \(summary.inputErrors)")
        #expect(summary.filesWritten.count == 1)
        // `crash` is not an allowed reason of the seed schema: OTHER.
        #expect(summary.filesWritten.first?.contains("/OTHER/Firefox/release/40.0/20150801000000.20150801.v2.log.") == true)
        #expect(Set(converted.compactMap { $0.1["creationDate"]?.stringValue }) == ["2030-01-01T00:00:00.000Z", "1970-01-01T00:00:00.000Z"])
    }
}
