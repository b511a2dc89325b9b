import Foundation
import Testing
import TelemetryConvert
import TelemetryTestSupport

/// Definitions, expressions, bucket algorithms and lookup (`spec/histograms.md` §1–§3, `spec/payloads.md` §8).
struct HistogramDefinitionTests {
    /// Parses a one-definition object.
    private func definition(_ json: String) throws -> HistogramDefinition {
        try HistogramDefinition(json: try JSONValue.parse(json))
    }

    struct BoundsExample: Sendable, CustomTestStringConvertible {
        let kind: HistogramKind
        let low: Int64, high: Int64, count: Int
        let prefix: [Int64]
        var testDescription: String { "\(kind) \(low)…\(high)/\(count)" }
    }

    /// The examples written out in §3.
    static let examples: [BoundsExample] = [
        .init(kind: .flag, low: 1, high: 2, count: 3, prefix: [0, 1, 2]),
        .init(kind: .enumerated, low: 1, high: 11, count: 12, prefix: Array(0...11)),
        .init(kind: .linear, low: 1, high: 10, count: 11, prefix: Array(0...10)),
        .init(kind: .linear, low: 1, high: 1000, count: 11, prefix: [0, 1, 112, 223, 334, 445, 556, 667, 778, 889, 1000]),
        .init(kind: .linear, low: 1, high: 1000, count: 50, prefix: [0, 1, 22, 43, 63, 84, 105, 126]),
        .init(kind: .exponential, low: 1, high: 3000, count: 10, prefix: [0, 1, 3, 8, 21, 57, 154, 414, 1114, 3000]),
        .init(kind: .exponential, low: 1, high: 10, count: 10, prefix: [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]),
        .init(kind: .exponential, low: 1, high: 60000, count: 50,
              prefix: [0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 14, 17, 21, 26, 32, 40, 50, 62, 77, 95, 118, 146]),
    ]

    @Test(arguments: examples)
    func boundsMatchTheSpecExamples(_ example: BoundsExample) throws {
        let layout = try HistogramDefinition(kind: example.kind, low: example.low, high: example.high,
                                             bucketCount: example.count)
        #expect(Array(layout.bucketBounds.prefix(example.prefix.count)) == example.prefix)
        #expect(layout.bucketBounds.count == example.count)
        #expect(layout.bucketBounds.first == 0 && layout.bucketBounds[1] == example.low)
        #expect(layout.bucketBounds.last == example.high)
    }

    @Test func lastLinearBoundIsHighAndInteriorEvenlySpaced() throws {
        let layout = try definition(#"{"kind":"linear","high":"1000","n_buckets":50,"description":"x"}"#)
        #expect(Array(layout.bucketBounds.suffix(3)) == [958, 979, 1000])
    }

    @Test func kindsReduceToTheirTriples() throws {
        for kind in ["boolean", "flag", "count"] {
            let layout = try definition(#"{"kind":"\#(kind)","description":"x","n_buckets":7}"#)
            #expect(layout.bucketBounds == [0, 1, 2] && layout.low == 1 && layout.high == 2, "\(kind)")
        }
        #expect(try definition(#"{"kind":"boolean"}"#).kind.histogramType == 2)
        #expect(try definition(#"{"kind":"flag"}"#).kind.histogramType == 3)
        #expect(try definition(#"{"kind":"count"}"#).kind.histogramType == 4)
        let enumerated = try definition(#"{"kind":"enumerated","n_values":"20"}"#)
        #expect(enumerated.bucketBounds == Array(0...20) && enumerated.kind.histogramType == 1)
        let categorical = try definition(#"{"kind":"categorical","labels":["a","b","c"]}"#)   // (unverified)
        #expect(categorical.bucketBounds == [0, 1, 2, 3] && categorical.kind.histogramType == 5)
        let exponential = try definition(#"{"kind":"exponential","low":"32 * 1024","high":"16 * 1024 * 1024","n_buckets":"80 + 1"}"#)
        #expect(exponential.low == 32768 && exponential.high == 16_777_216 && exponential.bucketCount == 81)
        #expect(exponential.kind.histogramType == 0)
    }

    @Test(arguments: [
        ("10 * 1000", 10000), ("1024 * 1024", 1_048_576), ("16 * 1024 * 1024", 16_777_216), ("80 + 1", 81),
        ("80 * 25", 2000), ("10000", 10000), ("(1 + 2) * 3", 9), (" 7 ", 7), ("-3 + 10", 7), ("7 / 2", 3),
        ("-7 / 2", -4), ("2 * (3 + (4 - 1)) / 3", 4),
    ] as [(String, Int64)])
    func numericFieldsEvaluateIntegerExpressions(_ text: String, _ value: Int64) throws {
        let layout = try definition(#"{"kind":"linear","low":1,"high":"1000 + (\#(text)) - (\#(text))","n_buckets":"\#(text) - (\#(text)) + 10"}"#)
        #expect(layout.high == 1000 && layout.bucketCount == 10)
        let enumerated = try? definition(#"{"kind":"enumerated","n_values":"\#(text)"}"#)
        #expect(enumerated?.high == ((2...99_999).contains(value) ? value : nil))
    }

    @Test(arguments: [
        "JS::gcreason::NUM_TELEMETRY_REASONS", "mozilla::StartupTimeline::MAX_EVENT_ID", "", "1 +", "(1", "1)",
        "2 ** 3", "0x10", "1 / 0", "99999999999999999999", "9223372036854775807 * 2", "__import__('os')", "1.5",
        String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500),
    ])
    func unevaluableExpressionsAreKeptAsUnevaluable(_ text: String) throws {
        let json = #"{"kind":"enumerated","n_values":\#(JSONValue.string(text).minimalJSON)}"#
        let entry = HistogramEntry(json: try JSONValue.parse(json))
        guard case let .unevaluable(reason) = entry else {
            Issue.record("\(text): evaluated to \(entry)")
            return
        }
        #expect(reason.hasPrefix("n_values"), "\(reason)")
    }

    @Test(arguments: [
        (#"{"description":"no kind"}"#, "missing kind element"),
        (#"{"kind":"bogus","description":"x"}"#, "invalid kind element: 'bogus'"),
        (#"{"kind":7}"#, "invalid kind element: '7'"),
        (#"["kind","flag"]"#, "definition is not an object"),
        (#"{"kind":"linear","n_buckets":10}"#, "missing high element"),
        (#"{"kind":"exponential","high":100}"#, "missing n_buckets element"),
        (#"{"kind":"enumerated"}"#, "missing n_values element"),
        (#"{"kind":"categorical"}"#, "missing labels element"),
        (#"{"kind":"linear","high":true,"n_buckets":10}"#, "high true is not a number"),
        (#"{"kind":"linear","high":10.5,"n_buckets":10}"#, "high 10.5 is not an integer"),
        (#"{"kind":"linear","high":100,"n_buckets":2}"#, "bucket count 2 is not between 3 and 100000"),
        (#"{"kind":"linear","high":100,"n_buckets":1000001}"#, "bucket count 1000001 is not between 3 and 100000"),
        (#"{"kind":"enumerated","n_values":1}"#, "value count 1 is not between 2 and 99999"),
        (#"{"kind":"enumerated","n_values":9223372036854775807}"#, "value count 9223372036854775807 is not between 2 and 99999"),
        (#"{"kind":"exponential","low":0,"high":100,"n_buckets":10}"#, "low 0 is less than 1"),
        (#"{"kind":"linear","low":-1,"high":100,"n_buckets":10}"#, "low -1 is less than 0"),
        (#"{"kind":"linear","low":100,"high":100,"n_buckets":10}"#, "high 100 is not greater than low 100"),
        (#"{"kind":"exponential","high":9223372036854775807,"n_buckets":10}"#, "high 9223372036854775807 is too large"),
    ])
    func badDefinitionsSayWhy(_ json: String, _ reason: String) throws {
        #expect(HistogramEntry(json: try JSONValue.parse(json)) == .unevaluable(reason: reason))
        #expect(throws: HistogramError.invalidDefinition(name: nil, reason: reason)) { try definition(json) }
    }

    @Test func linearLowZeroIsAllowedAndExtremeParametersDoNotTrap() throws {
        let zeroLow = try HistogramDefinition(kind: .linear, low: 0, high: 10, bucketCount: 12)
        #expect(zeroLow.bucketBounds.prefix(3) == [0, 0, 1])
        #expect(zeroLow.bucketIndex(ofLowerBound: 0) == 1, "repeated bound: the last index wins")
        let huge = try HistogramDefinition(kind: .exponential, low: 1, high: HistogramDefinition.maxHigh, bucketCount: 100_000)
        let last = Double(try #require(huge.bucketBounds.last)), high = Double(HistogramDefinition.maxHigh)
        #expect(abs(last - high) / high < 1e-9)
        #expect(zip(huge.bucketBounds, huge.bucketBounds.dropFirst()).allSatisfy { $0 < $1 })
        let narrow = try HistogramDefinition(kind: .exponential, low: 1, high: 5, bucketCount: 20)   // +1 rule past high
        #expect(narrow.bucketBounds.last == 19)
    }

    @Test func bucketIndexByLowerBoundAndByValue() throws {
        let dns = try HistogramDefinition(kind: .exponential, low: 1, high: 60000, bucketCount: 50)
        #expect(dns.bucketIndex(ofLowerBound: 77) == 18)
        #expect(dns.bucketIndex(ofLowerBound: 78) == nil)
        #expect(dns.bucketIndex(ofLowerBound: -1) == nil)
        #expect(dns.bucketIndex(ofLowerBound: 60001) == nil)
        #expect(dns.bucketIndex(containing: 77) == 18)
        #expect(dns.bucketIndex(containing: 94) == 18)
        #expect(dns.bucketIndex(containing: 95) == 19)
        #expect(dns.bucketIndex(containing: 0) == 0)
        #expect(dns.bucketIndex(containing: -5) == 0)
        #expect(dns.bucketIndex(containing: 1_000_000) == 49)
        for (bucketIndex, bound) in dns.bucketBounds.enumerated() {
            #expect(dns.bucketIndex(ofLowerBound: bound) == bucketIndex)
        }
    }

    @Test func startupPrefixRule() throws {
        let definitions = try HistogramDefinitions.load(
            path: Fixtures.sharedPath("datasets/real/histograms/tags/FIREFOX_AURORA_25_BASE/Histograms.json"))
        // Own definition first (a real histogram whose name starts with STARTUP_).
        #expect(definitions.lookup("STARTUP_CRASH_DETECTED") == definitions[exactly: "STARTUP_CRASH_DETECTED"])
        #expect(definitions.lookup("STARTUP_CRASH_DETECTED")?.definition?.kind == .flag)
        // Else the rest of the name.
        #expect(definitions[exactly: "STARTUP_DNS_LOOKUP_TIME"] == nil)
        #expect(definitions.lookup("STARTUP_DNS_LOOKUP_TIME") == definitions[exactly: "DNS_LOOKUP_TIME"])
        #expect(definitions.lookup("STARTUP_") == nil)
        #expect(definitions.lookup("STARTUP_STARTUP_DNS_LOOKUP_TIME") == nil, "the prefix is stripped once")
        #expect(definitions.lookup("DNS_LOOKUP_TIMEX") == nil)
        #expect(throws: HistogramError.unknownHistogram(name: "NOT_FOUND")) { try definitions.definition(named: "NOT_FOUND") }
    }

    @Test func definitionFilesParseInOrderAndKeepUnevaluableEntries() throws {
        let text = #"{"B":{"kind":"flag"},"A":{"kind":"enumerated","n_values":"JS::gcreason::NUM_TELEMETRY_REASONS"},"B":{"kind":"boolean"},"C":{"kind":"nope"}}"#
        let definitions = try HistogramDefinitions.parse(Array(text.utf8), source: "inline")
        #expect(definitions.names == ["B", "A", "C"])
        #expect(definitions.count == 3)
        #expect(definitions[exactly: "B"]?.definition?.kind == .flag, "first occurrence wins")
        #expect(definitions[exactly: "A"] == .unevaluable(reason: "n_values 'JS::gcreason::NUM_TELEMETRY_REASONS' is not an integer expression"))
        #expect(throws: HistogramError.invalidDefinition(name: "C", reason: "invalid kind element: 'nope'")) {
            try definitions.definition(named: "C")
        }
        #expect(String(describing: HistogramError.invalidDefinition(name: "MY_HISTOGRAM", reason: "missing kind element"))
                == "Key: 'MY_HISTOGRAM' missing kind element")
    }

    @Test func substitutionsRewriteOnlyTheQuotedConstants() {
        let text = #"{"A":{"n_values":"JS::gcreason::NUM_TELEMETRY_REASONS"},"B":{"n_values": "mozilla::StartupTimeline::MAX_EVENT_ID"},"C":{"n_buckets":"80 + 1"},"D":{"description":"80 + 1 and JS::gcreason::NUM_TELEMETRY_REASONS"}}"#
        #expect(HistogramDefinitions.applyingServerSubstitutions(to: text)
                == #"{"A":{"n_values":101},"B":{"n_values": 12},"C":{"n_buckets":81},"D":{"description":"80 + 1 and JS::gcreason::NUM_TELEMETRY_REASONS"}}"#)
    }

    @Test func definitionFilesThatAreNotJSONOrNotObjectsFailNamingTheFile() throws {
        let directory = TemporaryDirectory("histogram-defs")
        let notJSON = try directory.write("bad/Histograms.json", text: "invalid json data\n")
        #expect(throws: HistogramError.self) { try HistogramDefinitions.load(path: notJSON) }
        do {
            _ = try HistogramDefinitions.load(path: notJSON)
        } catch {
            guard case .notJSON(notJSON, _) = error else { Issue.record("\(error)"); return }
            #expect(error.description.hasPrefix("\(notJSON): not a JSON document"))
        }
        let array = try directory.write("array/Histograms.json", text: #"["a"]"#)
        #expect(throws: HistogramError.invalidStructure(path: array, reason: "Histograms.json top level must be an object")) {
            try HistogramDefinitions.load(path: array)
        }
        let missing = directory.url.appendingPathComponent("none/Histograms.json").path
        #expect(throws: HistogramError.fileNotFound(path: missing)) { try HistogramDefinitions.load(path: missing) }
        // The seed's worker fixtures parse as definition files too: JSON objects whose entries are not definitions.
        let workerFile = try HistogramDefinitions.load(path: Fixtures.sharedPath("datasets/real/invalid/missing_kind.json"))
        #expect(workerFile[exactly: "histograms"] == .unevaluable(reason: "missing kind element"))
    }

    @Test func inlineParametersAndDeclarationAgreement() throws {
        let raw = try #require(try JSONValue.parse(#"{"range":[1,3000],"bucket_count":10,"histogram_type":0,"values":{}}"#).objectValue)
        let inline = try #require(HistogramDefinition(inlineParametersOf: raw))
        #expect(inline.bucketBounds == [0, 1, 3, 8, 21, 57, 154, 414, 1114, 3000])
        #expect(inline.agrees(withDeclarationOf: raw))
        let linearRaw = try #require(try JSONValue.parse(#"{"range":[1,100],"bucket_count":101,"histogram_type":1}"#).objectValue)
        let linear = try #require(HistogramDefinition(inlineParametersOf: linearRaw))
        #expect(linear.bucketBounds == Array(0...100))
        for bad in [#"{"range":[1],"bucket_count":10,"histogram_type":0}"#, #"{"range":[1,3000],"histogram_type":0}"#,
                    #"{"range":[1,3000],"bucket_count":"10","histogram_type":0}"#,
                    #"{"range":[1,3000],"bucket_count":10}"#, #"{"range":[0,3000],"bucket_count":10,"histogram_type":0}"#,
                    #"{"range":[1,3000],"bucket_count":1000000000000,"histogram_type":1}"#] {
            let raw = try #require(try JSONValue.parse(bad).objectValue)
            #expect(HistogramDefinition(inlineParametersOf: raw) == nil, "\(bad)")
        }
        let flag = try HistogramDefinition(kind: .flag, low: 1, high: 2, bucketCount: 3)
        for (declaration, agrees) in [
            (#"{"values":{}}"#, true), (#"{"range":[1,2],"bucket_count":3,"histogram_type":3}"#, true),
            (#"{"bucket_count":4}"#, false), (#"{"histogram_type":2}"#, false), (#"{"range":[0,2]}"#, false),
            (#"{"range":"1,2"}"#, false),
        ] {
            let raw = try #require(try JSONValue.parse(declaration).objectValue)
            #expect(flag.agrees(withDeclarationOf: raw) == agrees, "\(declaration)")
        }
    }
}
