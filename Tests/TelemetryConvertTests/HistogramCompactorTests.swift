import Foundation
import Testing
import TelemetryConvert
import TelemetryTestSupport

/// Compaction rules (`spec/histograms.md` §4, `spec/payloads.md` §10.3/§10.4) and the hazards BR-17, BR-18 and
/// BR-21 (`../shared/hazards.md`).
struct HistogramCompactorTests {
    static let revision = "https://hg.mozilla.org/mozilla-central/rev/0123456789ab"

    /// Definitions from an inline `Histograms.json` text.
    private func definitions(_ text: String) throws -> HistogramDefinitions {
        try HistogramDefinitions.parse(Array(text.utf8), source: "inline")
    }

    private func compactor(_ text: String) throws -> HistogramCompactor {
        HistogramCompactor(definitions: try definitions(text), revisionURL: Self.revision)
    }

    /// Compacts one histogram; the rejection when it fails.
    private func outcome(_ compactor: HistogramCompactor, _ name: String, _ raw: String)
        throws -> Result<CompactedHistogram?, PayloadRejection> {
        let value = try JSONValue.parse(raw)
        do throws(PayloadRejection) {
            return .success(try compactor.compact(name: name, histogram: value))
        } catch {
            return .failure(error)
        }
    }

    private func rejection(_ compactor: HistogramCompactor, _ name: String, _ raw: String) throws -> PayloadRejection? {
        if case let .failure(rejection) = try outcome(compactor, name, raw) { return rejection }
        return nil
    }

    private func storage(_ compactor: HistogramCompactor, _ name: String, _ raw: String) throws -> CompactedHistogram? {
        switch try outcome(compactor, name, raw) {
        case let .success(compacted): return compacted
        case let .failure(rejection):
            Issue.record("\(name): \(rejection)")
            return nil
        }
    }

    // MARK: The storage array

    @Test func storageArrayHasBucketsThenTheFiveSummaryFields() throws {
        let c = try compactor(#"{"DOM_TIMERS_FIRED_PER_NATIVE_TIMEOUT":{"kind":"exponential","high":3000,"n_buckets":10},"A11Y_IATABLE_USAGE_FLAG":{"kind":"flag"}}"#)
        let dom = try #require(try storage(c, "DOM_TIMERS_FIRED_PER_NATIVE_TIMEOUT", #"{"range":[1,3000],"bucket_count":10,"histogram_type":0,"values":{"1114":0,"414":1,"8":2,"3":7,"1":1232,"0":0},"sum":1279,"log_sum":873.474196434021,"log_sum_squares":624.027626294358}"#))
        #expect(dom.storage.minimalJSON == "[0,1232,7,2,0,0,0,1,0,0,1279,873.474196434021,624.027626294358,-1,-1]")
        #expect(!dom.definitionMismatch)
        let flag = try #require(try storage(c, "A11Y_IATABLE_USAGE_FLAG", #"{"range":[1,2],"bucket_count":3,"histogram_type":3,"values":{"0":1,"1":0},"sum":4984161763,"sum_squares_lo":1.23415,"sum_squares_hi":1.01}"#))
        #expect(flag.storage.minimalJSON == "[1,0,0,4984161763,-1,-1,1.23415,1.01]")
        #expect(flag.storage.arrayValue?[3] == .int(4984161763), "integers stay exact")
        // Summary fields are copied as sent, even odd ones; only absent ones become -1.
        let odd = try #require(try storage(c, "A11Y_IATABLE_USAGE_FLAG", #"{"values":{},"sum":2.0,"log_sum":null}"#))
        #expect(odd.storage.minimalJSON == "[0,0,0,2.0,null,-1,-1,-1]")
    }

    @Test func unknownNamesAreDroppedAndWholeObjectsCollectWarnings() throws {
        let c = try compactor(#"{"DNS_LOOKUP_TIME":{"kind":"exponential","high":60000,"n_buckets":50},"B":{"kind":"boolean"},"GC":{"kind":"enumerated","n_values":"JS::gcreason::NUM_TELEMETRY_REASONS"}}"#)
        #expect(try outcome(c, "NOPE", #"{"values":{"foo":1}}"#).get() == nil, "unknown before any check")
        let histograms = try #require(try JSONValue.parse(#"""
            {"X":{"values":{}},"STARTUP_DNS_LOOKUP_TIME":{"values":{"62":0,"77":1,"95":0},"sum":77},
             "B":{"range":[1,2],"bucket_count":3,"histogram_type":3,"values":{"1":4}},
             "GC":{"range":[1,100],"bucket_count":101,"histogram_type":1,"values":{"48":3}},
             "B":{"values":{"nonsense":1}},"STARTUP_X":{"values":{}}}
            """#).objectValue)
        let result = try c.compact(histograms)
        #expect(result.histograms.keys == ["STARTUP_DNS_LOOKUP_TIME", "B", "GC"])
        #expect(result.unknownNames == ["X", "STARTUP_X"])
        #expect(result.mismatchedNames == ["B", "GC"], "declared flag type for a boolean; inline parameters for GC")
        #expect(result.histograms["STARTUP_DNS_LOOKUP_TIME"]?.arrayValue?[18] == .int(1))
        #expect(result.histograms["B"]?.minimalJSON == "[0,4,0,-1,-1,-1,-1,-1]")
        #expect(result.histograms["GC"]?.arrayValue?.count == 106)
    }

    @Test func firstRejectionRejectsTheWholeObject() throws {
        let c = try compactor(#"{"A":{"kind":"flag"},"B":{"kind":"flag"}}"#)
        let histograms = try #require(try JSONValue.parse(#"{"A":{"values":{"7":1}},"B":{"values":{"0":1.5}}}"#).objectValue)
        #expect(throws: PayloadRejection(.badPayload, "Found invalid bucket A.values[7]: 7 is not a bucket lower bound")) {
            try c.compact(histograms)
        }
    }

    @Test func missingValuesAndUnevaluableDefinitionsAreConversionErrors() throws {
        let c = try compactor(#"{"F":{"kind":"flag"},"GC":{"kind":"enumerated","n_values":"JS::gcreason::NUM_TELEMETRY_REASONS"}}"#)
        let noValues = PayloadRejection(.conversionError, "Bad Histogram key for revision \(Self.revision): 'values'")
        #expect(try rejection(c, "F", #"{"sum":1}"#) == noValues)
        #expect(try rejection(c, "F", #"[1,0,0,1,-1,-1,-1,-1]"#) == noValues, "an already compacted array")
        #expect(try rejection(c, "F", "null") == noValues)
        #expect(try rejection(c, "F", #"{"values":[1,2]}"#) == PayloadRejection(.badPayload, "Found invalid bucket F.values: not an object"))
        #expect(try rejection(c, "GC", #"{"values":{"1":1}}"#) == PayloadRejection(.conversionError,
            "Bad Histogram definition for revision \(Self.revision): Key: 'GC' n_values 'JS::gcreason::NUM_TELEMETRY_REASONS' is not an integer expression"))
        // With inline parameters the unevaluable definition falls back on them, with a warning.
        let inline = try #require(try storage(c, "GC", #"{"range":[1,100],"bucket_count":101,"histogram_type":1,"values":{"1":1}}"#))
        #expect(inline.definitionMismatch && inline.storage.arrayValue?[1] == .int(1))
    }

    @Test func countsMustBeNonNegativeIntegersAndKeysLowerBounds() throws {
        let c = try compactor(#"{"F":{"kind":"flag"}}"#)
        let cases: [(String, String)] = [
            (#"{"0":1.5}"#, "Found non-integer bucket value: F.values[0] = '1.5'"),
            (#"{"0":"3"}"#, "Found non-integer bucket value: F.values[0] = '3'"),
            (#"{"0":null}"#, "Found non-integer bucket value: F.values[0] = 'null'"),
            (#"{"0":1.0}"#, "Found non-integer bucket value: F.values[0] = '1.0'"),
            (#"{"0":-1}"#, "Found invalid bucket value: F.values[0] = -1: negative count"),
            (#"{"3":1}"#, "Found invalid bucket F.values[3]: 3 is not a bucket lower bound"),
            (#"{"-1":1}"#, "Found invalid bucket F.values[-1]: -1 is not a bucket lower bound"),
            (#"{"99999999999999999999":1}"#, "Found invalid bucket F.values[99999999999999999999]: 99999999999999999999 is not a bucket lower bound"),
            (#"{"":1}"#, "Found invalid bucket F.values[]:  is not an integer"),
            (#"{" 1":1}"#, "Found invalid bucket F.values[ 1]:  1 is not an integer"),
            (#"{"1.0":1}"#, "Found invalid bucket F.values[1.0]: 1.0 is not an integer"),
            (#"{"-":1}"#, "Found invalid bucket F.values[-]: - is not an integer"),
        ]
        for (values, message) in cases {
            #expect(try rejection(c, "F", #"{"values":\#(values)}"#) == PayloadRejection(.badPayload, message), "\(values)")
        }
        let long = String(repeating: "x", count: 500)
        let message = try #require(try rejection(c, "F", #"{"values":{"\#(long)":1}}"#)?.message)
        #expect(message.count < 200, "keys are shortened in messages")
    }

    @Test func aBucketNamedTwiceKeepsItsFirstCount() throws {
        let c = try compactor(#"{"F":{"kind":"flag"}}"#)
        let compacted = try #require(try storage(c, "F", #"{"values":{"1":4,"01":9,"1":7}}"#))
        #expect(compacted.storage.minimalJSON == "[0,4,0,-1,-1,-1,-1,-1]")
    }

    // MARK: Hazards

    /// BR-17: a negative count is `bad_payload`, never summed.
    @Test func hazardBR17NegativeCounts() throws {
        let c = try compactor(#"{"NEGATIVE_COUNT":{"kind":"linear","low":1,"high":10,"n_buckets":11}}"#)
        let rejected = try #require(try rejection(c, "NEGATIVE_COUNT",
            #"{"bucket_count":11,"histogram_type":1,"range":[1,10],"sum":10,"values":{"0":0,"1":10,"2":-1000,"3":0}}"#))
        #expect(rejected.category == .badPayload)
        #expect(rejected.message.contains("NEGATIVE_COUNT.values[2] = -1000: negative count"))
    }

    /// BR-18: keys that are not lower bounds, not integers, or float strings: `bad_payload` naming the histogram
    /// and the key — never a silent zero histogram.
    @Test(arguments: [
        (#"{"0":1,"9":2}"#, "9 is not a bucket lower bound"),
        (#"{"foo":1}"#, "foo is not an integer"),
        (#"{"3.0683611344442837e+257":1}"#, "3.0683611344442837e+257 is not an integer"),
        (#"{"foo":1,"bar":0}"#, "foo is not an integer"),
    ])
    func hazardBR18BadKeys(_ values: String, _ reason: String) throws {
        let c = try compactor(#"{"GC_MS":{"kind":"exponential","high":10000,"n_buckets":50}}"#)
        let rejected = try #require(try rejection(c, "GC_MS", #"{"values":\#(values)}"#))
        #expect(rejected.category == .badPayload)
        #expect(rejected.message.hasPrefix("Found invalid bucket GC_MS.values["))
        #expect(rejected.message.hasSuffix(reason))
    }

    /// BR-21: the definition decides the bounds; a differing declaration is a warning while the keys fit; a key
    /// that is a bound of the declared layout only is `bad_payload`.
    @Test func hazardBR21DefinitionMismatch() throws {
        let revisionA = try compactor(#"{"FX_TAB_SWITCH_TOTAL_MS":{"kind":"exponential","high":1000,"n_buckets":20}}"#)
        let revisionB = try compactor(#"{"FX_TAB_SWITCH_TOTAL_MS":{"kind":"exponential","high":1000,"n_buckets":50}}"#)
        let bounds = try #require(revisionA.definitions.lookup("FX_TAB_SWITCH_TOTAL_MS")?.definition?.bucketBounds)
        #expect(Array(bounds.prefix(10)) == [0, 1, 2, 3, 4, 6, 9, 13, 19, 27])
        #expect(Array(bounds.suffix(2)) == [698, 1000])

        let ping1 = try #require(try storage(revisionA, "FX_TAB_SWITCH_TOTAL_MS",
                                             #"{"bucket_count":20,"histogram_type":0,"values":{"9":3,"13":1}}"#))
        #expect(!ping1.definitionMismatch && ping1.storage.arrayValue?.count == 25)
        let ping2 = try #require(try storage(revisionB, "FX_TAB_SWITCH_TOTAL_MS", #"{"bucket_count":50,"values":{"5":2,"8":1}}"#))
        #expect(!ping2.definitionMismatch && ping2.storage.arrayValue?.count == 55)
        let ping3 = try #require(try storage(revisionA, "FX_TAB_SWITCH_TOTAL_MS",
            #"{"bucket_count":50,"histogram_type":1,"range":[1,1000],"values":{"1":4,"6":1}}"#))
        #expect(ping3.definitionMismatch && ping3.storage.arrayValue?.count == 25, "a 20-bucket array, with a warning")
        #expect(ping3.storage.arrayValue?[1] == .int(4) && ping3.storage.arrayValue?[5] == .int(1))
        let ping4 = try rejection(revisionA, "FX_TAB_SWITCH_TOTAL_MS",
                                  #"{"bucket_count":50,"histogram_type":1,"range":[1,1000],"values":{"22":2}}"#)
        #expect(ping4 == PayloadRejection(.badPayload,
            "Found invalid bucket FX_TAB_SWITCH_TOTAL_MS.values[22]: 22 is not a bucket lower bound"))
    }
}
