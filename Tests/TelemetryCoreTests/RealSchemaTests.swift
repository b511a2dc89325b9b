import Foundation
import Testing
import TelemetryCore
import TelemetryTestSupport

/// A real schema or filter file (`../shared/datasets/real/schemas/`) and what it must parse to.
struct RealSchemaVector: Sendable, CustomTestStringConvertible {
    let file: String
    let expected: DimensionSchema
    var testDescription: String { file }
}

/// The real schemas and job filters of the seed, and the malformed files of its C++ tests
/// (`datasets/real/PROVENANCE.md`, `spec/storage.md` §2 and §4).
struct RealSchemaTests {
    static let schemasDirectory = "datasets/real/schemas"

    /// The five non-date dimensions every real filter has, with the given allowed values.
    private static func filter(reason: AllowedValues, appName: AllowedValues, channel: AllowedValues,
                               buildID: AllowedValues, date: AllowedValues) -> DimensionSchema {
        DimensionSchema(version: 1, dimensions: [
            Dimension(fieldName: "reason", allowedValues: reason),
            Dimension(fieldName: "appName", allowedValues: appName),
            Dimension(fieldName: "appUpdateChannel", allowedValues: channel),
            Dimension(fieldName: "appVersion", allowedValues: .any),
            Dimension(fieldName: "appBuildID", allowedValues: buildID),
            Dimension(fieldName: "submission_date", allowedValues: date),
        ])
    }

    static let vectors: [RealSchemaVector] = [
        .init(file: "telemetry_schema.json", expected: .seed),
        .init(file: "worker-test-schema.json", expected: DimensionSchema(version: 1, dimensions: [
            Dimension(fieldName: "submission_date", allowedValues: .any),
            Dimension(fieldName: "reason", allowedValues: .list(["idle-daily", "saved-session"])),
            Dimension(fieldName: "appName", allowedValues: .list(["Firefox", "Fennec", "Thunderbird"])),
            Dimension(fieldName: "appUpdateChannel", allowedValues: .list(["release", "beta", "nightly", "aurora"])),
            Dimension(fieldName: "appVersion", allowedValues: .any),
            Dimension(fieldName: "appBuildID", allowedValues: .any),
            Dimension(fieldName: "memsize", allowedValues: .range(min: .number(448), max: .number(500))),
        ])),
        .init(file: "filters/filter-nightly-buildid.json", expected: filter(
            reason: .list(["saved-session", "idle-daily"]), appName: .list(["Firefox"]), channel: .list(["nightly"]),
            buildID: .range(min: .string("20140228"), max: nil),
            date: .range(min: .string("20140308"), max: .string("20140309")))),
        .init(file: "filters/filter_include_all.json", expected: filter(
            reason: .any, appName: .any, channel: .any, buildID: .any, date: .any)),
        .init(file: "filters/filter_max_buildid.json", expected: filter(
            reason: .list(["saved-session"]), appName: .list(["Firefox", "Fennec"]), channel: .list(["nightly", "aurora"]),
            buildID: .range(min: nil, max: .string("20130607")), date: .any)),
        .init(file: "filters/filter_min_buildid.json", expected: filter(
            reason: .list(["saved-session"]), appName: .list(["Firefox", "Fennec"]), channel: .list(["nightly", "aurora"]),
            buildID: .range(min: .string("20130600"), max: nil), date: .any)),
        .init(file: "filters/filter_min_max_buildid.json", expected: filter(
            reason: .list(["saved-session"]), appName: .list(["Firefox", "Fennec"]), channel: .list(["nightly", "aurora"]),
            buildID: .range(min: .string("20130600"), max: .string("20130607")), date: .any)),
        .init(file: "filters/filter_saved_session_Fx_prerelease.json", expected: filter(
            reason: .list(["saved-session"]), appName: .list(["Firefox", "Fennec"]), channel: .list(["nightly", "aurora"]),
            buildID: .any, date: .range(min: .string("20131101"), max: .string("20131103")))),
    ]

    @Test func everyRealSchemaFileHasAVector() throws {
        let root = Fixtures.sharedPath(Self.schemasDirectory)
        let top = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasSuffix(".json") }
        let filters = try FileManager.default.contentsOfDirectory(atPath: root + "/filters").filter { $0.hasSuffix(".json") }
        let onDisk = Set(top + filters.map { "filters/" + $0 })
        #expect(onDisk == Set(Self.vectors.map(\.file)))
        #expect(filters.count == 6)
    }

    @Test(arguments: vectors)
    func loadsRealSchema(_ vector: RealSchemaVector) throws {
        let path = Fixtures.sharedPath("\(Self.schemasDirectory)/\(vector.file)")
        let schema = try DimensionSchema(contentsOf: path)
        #expect(schema == vector.expected)
        // What the store keeps (`jsonData()`) reads back to the same schema.
        #expect(try DimensionSchema(json: schema.jsonData(), source: "<round trip>") == schema)
        // The same bytes through `init(json:source:)` give the same result as the file reader.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(try DimensionSchema(json: data, source: path) == schema)
    }

    /// A malformed file and the error its loading must throw.
    struct InvalidVector: Sendable, CustomTestStringConvertible {
        let file: String
        let expected: @Sendable (String) -> CoreError
        var testDescription: String { file }
    }

    static let invalidVectors: [InvalidVector] = [
        // `["a"]`: the C++ worker's "version element is missing" (PROVENANCE.md, spec/storage.md §2).
        .init(file: "invalid_schema.json") { .invalidSchema(path: $0, reason: "version element is missing") },
        // Histogram-spec documents: JSON objects, but without the schema's required `version`.
        .init(file: "invalid_kind.json") { .invalidSchema(path: $0, reason: "version element is missing") },
        .init(file: "missing_kind.json") { .invalidSchema(path: $0, reason: "version element is missing") },
    ]

    @Test(arguments: invalidVectors)
    func rejectsInvalidFile(_ vector: InvalidVector) throws {
        let path = Fixtures.sharedPath("datasets/real/invalid/\(vector.file)")
        #expect(throws: vector.expected(path)) { try DimensionSchema(contentsOf: path) }
    }

    @Test func rejectsTextThatIsNotJSON() throws {
        let path = Fixtures.sharedPath("datasets/real/invalid/invalid.json")
        let error = try #require(throws: CoreError.self) { try DimensionSchema(contentsOf: path) }
        guard case let .schemaNotJSON(errorPath, detail) = error else {
            Issue.record("expected schemaNotJSON, got \(error)")
            return
        }
        #expect(errorPath == path)
        #expect(!detail.isEmpty)
        #expect("\(error)".hasPrefix("\(path): not a JSON document"))
    }

    @Test func missingFileIsNotFound() throws {
        let path = Fixtures.sharedPath("datasets/real/schemas/missing.json")
        #expect(throws: CoreError.fileNotFound(path: path)) { try DimensionSchema(contentsOf: path) }
    }

    /// Structural errors of inline documents, each with the reason the schema reader gives.
    @Test(arguments: [
        (#"{"dimensions": []}"#, "version element is missing"),
        (#"[]"#, "version element is missing"),
        (#""text""#, "version element is missing"),
        (#"{"version": "1", "dimensions": []}"#, "version must be an integer"),
        (#"{"version": true, "dimensions": []}"#, "version must be an integer"),
        (#"{"version": 1}"#, "dimensions must be a list"),
        (#"{"version": 1, "dimensions": {}}"#, "dimensions must be a list"),
        (#"{"version": 1, "dimensions": [{"allowed_values": "*"}]}"#, "dimensions[0] needs a string field_name"),
        (#"{"version": 1, "dimensions": [{"field_name": "", "allowed_values": "*"}]}"#, "dimensions[0] needs a string field_name"),
        (#"{"version": 1, "dimensions": [{"field_name": "a", "allowed_values": "*"}, 3]}"#, "dimensions[1] needs a string field_name"),
        (#"{"version": 1, "dimensions": [{"field_name": "a"}]}"#, #"a: allowed_values must be "*", a string, a list or {min, max}"#),
        (#"{"version": 1, "dimensions": [{"field_name": "a", "allowed_values": 5}]}"#, #"a: allowed_values must be "*", a string, a list or {min, max}"#),
        (#"{"version": 1, "dimensions": [{"field_name": "a", "allowed_values": ["x", {}]}]}"#, "a: allowed_values list holds a non-string"),
        (#"{"version": 1, "dimensions": [{"field_name": "a", "allowed_values": {"min": [1]}}]}"#, "a: min must be a string or number"),
        (#"{"version": 1, "dimensions": [{"field_name": "a", "allowed_values": {"max": true}}]}"#, "a: max must be a string or number"),
    ])
    func rejectsWrongStructure(_ document: String, _ reason: String) throws {
        #expect(throws: CoreError.invalidSchema(path: "<inline>", reason: reason)) {
            try DimensionSchema(json: Data(document.utf8), source: "<inline>")
        }
    }

    @Test func acceptsEveryAllowedValuesForm() throws {
        let document = #"""
        {"version": 2, "dimensions": [
          {"field_name": "a", "allowed_values": "*"},
          {"field_name": "b", "allowed_values": "exactly"},
          {"field_name": "c", "allowed_values": ["x", "y", 12]},
          {"field_name": "d", "allowed_values": {"min": 1, "max": 2.5}},
          {"field_name": "e", "allowed_values": {"min": "k"}},
          {"field_name": "f", "allowed_values": {"max": "m", "min": null}},
          {"field_name": "g", "allowed_values": {}}
        ]}
        """#
        let schema = try DimensionSchema(json: Data(document.utf8), source: "<inline>")
        #expect(schema.version == 2)
        #expect(schema.fieldNames == ["a", "b", "c", "d", "e", "f", "g"])
        #expect(schema.dimensions.map(\.allowedValues) == [
            .any, .exact("exactly"), .list(["x", "y", "12"]), .range(min: .number(1), max: .number(2.5)),
            .range(min: .string("k"), max: nil), .range(min: nil, max: .string("m")), .range(min: nil, max: nil),
        ])
    }

    /// The real storage files against every real filter (`spec/storage.md` §4: list values sanitised first,
    /// range bounds compared as strings).
    @Test(arguments: [
        ("filter_include_all.json", ["22.0a1", "28.0a1"]),
        ("filter_saved_session_Fx_prerelease.json", []),          // dates 20131011, 20131029 are before 20131101
        ("filter_min_buildid.json", ["28.0a1"]),                   // "20130226031002" < "20130600"
        ("filter_max_buildid.json", ["22.0a1"]),                   // "20131029030201" > "20130607"
        ("filter_min_max_buildid.json", []),
        ("filter-nightly-buildid.json", []),                      // both builds are before "20140228"
    ])
    func selectsRealStorageFiles(_ filterFile: String, _ expectedVersions: [String]) throws {
        let base = Fixtures.sharedPath("datasets/real/storage")
        let files = try FileManager.default.subpathsOfDirectory(atPath: base)
            .filter { $0.hasSuffix(".lzma") }.sorted().map { base + "/" + $0 }
        #expect(files.count == 2)
        let filter = try DimensionSchema(contentsOf: Fixtures.sharedPath("\(Self.schemasDirectory)/filters/\(filterFile)"))
        let selection = StorageLayout.filterFiles(files, base: base, filter: filter)
        #expect(selection.errors == [])
        #expect(selection.included.map { $0.split(separator: "/").dropLast().last.map(String.init) } == expectedVersions)
        #expect(selection.included.count + selection.excluded.count == files.count)
    }

    @Test func realStoragePathsGiveTheirDimensions() throws {
        let base = Fixtures.sharedPath("datasets/real/storage")
        let path = base + "/saved_session/Firefox/nightly/28.0a1/20131029030201.20131029.v2.log.0ab8723b6fb3455bb34b04d97482fda2.lzma"
        #expect(try StorageLayout.dimensions(ofFile: path, base: base)
            == ["saved_session", "Firefox", "nightly", "28.0a1", "20131029030201", "20131029"])
        #expect(try StorageLayout.dimensions(ofFile: path, base: base + "/") == ["saved_session", "Firefox", "nightly", "28.0a1", "20131029030201", "20131029"])
        #expect(try StorageLayout.dimensions(ofFile: path, base: base, dirsOnly: true) == ["saved_session", "Firefox", "nightly", "28.0a1"])
        #expect(throws: CoreError.notUnderBase(path: path, base: base + "/saved_session/Fennec")) {
            try StorageLayout.dimensions(ofFile: path, base: base + "/saved_session/Fennec")
        }
        // A sibling directory whose name starts with the base's name is not under the base.
        #expect(throws: CoreError.notUnderBase(path: base + "2/a/b.c.log", base: base)) {
            try StorageLayout.dimensions(ofFile: base + "2/a/b.c.log", base: base)
        }
        #expect(throws: CoreError.unparsableStoragePath(path: base + "/a/nodots", reason: "file name has no '.<submission_date>' part")) {
            try StorageLayout.dimensions(ofFile: base + "/a/nodots", base: base)
        }
    }

    /// A layout path written with `filename` reads back (`dimensions(ofFile:)`) as the sanitised, filtered values.
    @Test func layoutPathRoundTrips() throws {
        let dims = ["saved-session", "Firefox", "release", "28.0", "20140401001122", "20140101"]
        let path = StorageLayout.filename(schema: .seed, base: "/data/store", dimensions: dims, version: 2)
        #expect(path == "/data/store/saved_session/Firefox/release/28.0/20140401001122.20140101.v2.log")
        #expect(try StorageLayout.dimensions(ofFile: path, base: "/data/store")
            == ["saved_session", "Firefox", "release", "28.0", "20140401001122", "20140101"])
        let other = StorageLayout.filename(schema: .seed, base: "b", dimensions: ["x", "Firefox"], version: 1)
        #expect(other == "b/OTHER/Firefox/OTHER/OTHER/OTHER.OTHER.v1.log")
    }
}
