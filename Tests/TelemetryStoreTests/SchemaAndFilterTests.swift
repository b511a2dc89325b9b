import Foundation
import Testing
import TelemetryConvert
import TelemetryCore
import TelemetryStore
import TelemetryTestSupport

struct SchemaAndFilterTests {
    @Test func filterSkipsExcludedFilesWithoutOpeningThem() throws {
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(channel: "nightly", date: "20131101", id: "1"), text: line("n1", #"{"ver":2}"#))
        try fixture.write(LayoutFixture.layoutPath(channel: "nightly", date: "20131105", id: "2"), text: line("n2", #"{"ver":2}"#))
        try fixture.write(LayoutFixture.layoutPath(channel: "aurora", date: "20131102", id: "3"), text: line("a1", #"{"ver":2}"#))
        // Excluded by the filter: garbage that would be an error if it were opened.
        try fixture.write(LayoutFixture.layoutPath(channel: "release", date: "20131102", id: "4"), bytes: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0, 1, 2], compress: false)
        try fixture.write(LayoutFixture.layoutPath(reason: "idle_daily", channel: "nightly", date: "20131102", id: "5"), bytes: [0x1F, 0x8B, 9], compress: false)
        let filter = try DimensionSchema(contentsOf: Fixtures.sharedPath("datasets/real/schemas/filters/filter_saved_session_Fx_prerelease.json"))
        let summary = try fixture.importAll(options: ImportOptions(filter: filter, jobs: 2))
        #expect(!summary.hadFailures)
        #expect(summary.pings == 2)
        #expect(summary.filesExcluded == 3)
        #expect(try fixture.openStore().rows("SELECT document_id FROM pings ORDER BY 1") == [["a1"], ["n1"]])
    }

    @Test func storeRemembersItsSchemaAndRejectsAnother() throws {
        let fixture = LayoutFixture()
        let custom = DimensionSchema(version: 1, dimensions: [
            Dimension(fieldName: "reason", allowedValues: .any),
            Dimension(fieldName: "appUpdateChannel", allowedValues: .list(["release", "nightly"])),
            Dimension(fieldName: "submission_date", allowedValues: .any),
        ])
        try fixture.write("saved_session/nightly.20131029.v2.log.x.xz", text: line("c1", #"{"ver":2,"info":{"OS":"Linux"}}"#))
        do {
            let store = try Store(path: fixture.storePath, create: true, schema: custom)
            let summary = try Importer(store: store).run(roots: [fixture.root])
            #expect(summary.pings == 1)
            #expect(try store.rows("SELECT reason, appUpdateChannel, submission_date, os FROM pings") == [["saved_session", "nightly", "20131029", "Linux"]])
        }
        let reopened = try Store(path: fixture.storePath, create: false)
        #expect(reopened.schema == custom)
        #expect(throws: StoreError.self) { try Store(path: fixture.storePath, create: false, schema: .seed) }
        #expect(throws: StoreError.missingStore(path: fixture.directory.path + "/none.db")) {
            try Store(path: fixture.directory.path + "/none.db", create: false)
        }
    }

    @Test func aDimensionNamedLikeAnInfoColumnShadowsIt() throws {
        let fixture = LayoutFixture()
        let schema = DimensionSchema(version: 1, dimensions: [
            Dimension(fieldName: "os", allowedValues: .any),
            Dimension(fieldName: "submission_date", allowedValues: .any),
        ])
        let store = try Store(path: fixture.storePath, create: true, schema: schema)
        #expect(!store.activeInfoColumns.contains { $0.name == "os" })
        #expect(store.activeInfoColumns.contains { $0.name == "arch" })
    }

    @Test func singleFileArgumentInfersItsBase() throws {
        let fixture = LayoutFixture()
        let path = try fixture.write(LayoutFixture.layoutPath(), text: line("one", #"{"ver":2}"#))
        let summary = try fixture.importAll(roots: [path])
        #expect(summary.pings == 1)
        #expect(try fixture.openStore().rows("SELECT reason, appName, appUpdateChannel, appVersion, appBuildID, submission_date FROM pings") == [
            ["saved_session", "Firefox", "nightly", "28.0a1", "20131029030201", "20131029"],
        ])
    }

    @Test func missingRootIsThrownBeforeAnythingIsWritten() throws {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        #expect(throws: StoreError.inputNotFound(path: "/no/such/dir")) {
            try Importer(store: store).run(roots: ["/no/such/dir"])
        }
    }
}

/// `telemetry import` on raw submission logs: converted on the fly.
struct RawLogImportTests {
    @Test func realRawLogsImportWithTheirOwnDimensions() throws {
        let fixture = LayoutFixture()
        let cache = fixture.directory.file("cache/releases/mozilla-release/a55c55edf302/Histograms.json")
        try FileManager.default.copyItem(atPath: Fixtures.sharedPath("datasets/real/histograms/tags/FIREFOX_AURORA_23_BASE/Histograms.json"),
                                         toPath: cache)
        let converter = PayloadConverter(compact: HistogramCompactor.compacting(with: RevisionCache(cacheDirectory: fixture.directory.path + "/cache")))
        let store = try fixture.openStore()
        let summary = try Importer(store: store, options: ImportOptions(jobs: 2, payloadConverter: converter))
            .run(roots: [Fixtures.sharedPath("datasets/real/raw-logs/telemetry1.log"), Fixtures.sharedPath("datasets/real/raw-logs/unicode.v1.packed")])
        // telemetry1.log converts; the two unicode records need revision eab4a81e4457, which is not in the cache.
        #expect(summary.pings == 1)
        #expect(summary.badLines == ["unknown_revision": 2])
        #expect(summary.warnings["unknown_histogram"] == 2)
        #expect(summary.warnings["definition_mismatch"] == 1)
        #expect(summary.warnings["skipped_bytes"] == 1)
        #expect(try store.rows("SELECT document_id, reason, appName, appUpdateChannel, appVersion, appBuildID, submission_date, os FROM pings") == [
            ["17caa68c-25f5-450a-9cce-7d31318846d8", "idle_daily", "Firefox", "release", "23.0.1", "20130814063812", "20130910", "WINNT"],
        ])
        #expect(try store.int("SELECT json_extract(payload, '$.ver') FROM pings") == 2)
        #expect(try store.int("SELECT json_array_length(payload, '$.histograms.GC_MS') FROM pings") == 55)
        #expect(try store.rows("SELECT reason, count(*) FROM import_errors WHERE severity = 'error' GROUP BY reason") == [["unknown_revision", "2"]])
    }
}
