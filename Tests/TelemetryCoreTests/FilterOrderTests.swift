import Foundation
import Testing
import TelemetryCore

/// Issue 17 item 2 (version-aware ranges) and issue 18 item 6 (unknown keys are errors).
struct FilterOrderTests {
    static let versions = ["3.6", "4.0b12", "10.0esr", "29.0", "31.0a1", "31.0a2", "100.0"]

    static func filter(_ allowed: String, field: String = "appVersion", extra: String = "") throws -> DimensionSchema {
        try DimensionSchema(json: Data(#"{"version": 1, "dimensions": [{"field_name": "\#(field)", "allowed_values": \#(allowed)\#(extra)}]}"#.utf8),
                            source: "filter.json")
    }

    @Test func appVersionRangesCompareAsFirefoxVersions() throws {
        let range = try Self.filter(#"{"min": "28", "max": "31"}"#).dimensions[0]
        #expect(range.order == .version)
        #expect(Self.versions.filter(range.allows) == ["29.0", "31.0a1", "31.0a2"])
        let from10 = try Self.filter(#"{"min": "4.0"}"#).dimensions[0]
        #expect(Self.versions.filter(from10.allows) == ["10.0esr", "29.0", "31.0a1", "31.0a2", "100.0"])
        let betas = try Self.filter(#"{"min": "4.0b1", "max": "4.0"}"#).dimensions[0]
        #expect(Self.versions.filter(betas.allows) == ["4.0b12"])
        let all31 = try Self.filter(#"{"min": "31", "max": "31.*"}"#).dimensions[0]
        #expect(["30.0", "31.0a1", "31.0", "31.5.1", "32.0a1"].filter(all31.allows) == ["31.0", "31.5.1"])
        // Sorting by the range rule gives the Firefox release order.
        let sorted = Self.versions.shuffled().sorted { a, b in   // a < b when a is not ≥ b
            !AllowedValues.range(min: .string(b), max: nil).allows(a, as: .version)
        }
        #expect(sorted == ["3.6", "4.0b12", "10.0esr", "29.0", "31.0a1", "31.0a2", "100.0"])
    }

    @Test func buildIDsAndDatesCompareAsFixedWidthNumbers() throws {
        let builds = try Self.filter(#"{"min": "20140228", "max": "20140301"}"#, field: "appBuildID").dimensions[0]
        #expect(builds.order == .digits)
        #expect(["20140227235959", "20140228000000", "20140301235959", "20140302000000", "2014022", "UNKNOWN"].filter(builds.allows)
                == ["20140228000000", "20140301235959"])
        let dates = try Self.filter(#"{"min": "20131101", "max": "20131103"}"#, field: "submission_date").dimensions[0]
        #expect(["20131031", "20131101", "20131103", "20131104", "OTHER"].filter(dates.allows) == ["20131101", "20131103"])
    }

    @Test func numbersCompareNumericallyAndTheSchemaMarksAnOrder() throws {
        let numeric = try Self.filter(#"{"min": "9", "max": "100"}"#, field: "memsize", extra: #", "compare": "number""#)
        #expect(numeric.dimensions[0].order == .number)
        #expect(["8", "9", "10", "99.5", "100", "101", "x"].filter(numeric.dimensions[0].allows) == ["9", "10", "99.5", "100"])
        let marked = try Self.filter(#"{"min": "28"}"#, field: "platformVersion", extra: #", "compare": "version""#)
        #expect(["3.6", "28.0", "100.0"].filter(marked.dimensions[0].allows) == ["28.0", "100.0"])
        // The mark survives the store's copy of the schema.
        #expect(try DimensionSchema(json: marked.jsonData(), source: "copy") == marked)
        let text = try Self.filter(#"{"min": "28"}"#, field: "os").dimensions[0]
        #expect(["3.6", "28.0", "100.0"].filter(text.allows) == ["3.6", "28.0"])   // plain text: byte order
        #expect(throws: CoreError.self) { try Self.filter("\"*\"", extra: #", "compare": "semver""#) }
    }

    @Test(arguments: [
        (#"{"version": 1, "dimensions": [{"field_name": "appVersion", "allowed_values": {"mn": "28"}}]}"#, "mn"),
        (#"{"version": 1, "dimensions": [{"field_name": "appVersion", "allowed_values": {"min": "28", "maxx": "31"}}]}"#, "maxx"),
        (#"{"version": 1, "dimensions": [{"field_name": "appVersion", "allowed_value": "*"}]}"#, "allowed_value"),
        (#"{"version": 1, "dimension": [], "dimensions": []}"#, "dimension"),
    ])
    func unknownKeysAreErrorsNamingThem(_ json: String, _ key: String) throws {
        let error = try #require(throws: CoreError.self) { try DimensionSchema(json: Data(json.utf8), source: "f.json") }
        #expect("\(error)".contains("unknown key '\(key)'"), "\(error)")
        #expect("\(error)".hasPrefix("f.json: "))
    }
}
