import Foundation
import Testing
import TelemetryCore
@testable import TelemetryStore
import TelemetryTestSupport

/// The index's content as text rows: ping_id, document id, every indexed column ("NULL" for null).
private func indexRows(_ index: PingIndex) -> [[String]] {
    (0..<index.count).map { row in
        [String(index.pingIDs[row]), index.documentID(row: row)] + index.columns.indices.map { index.value(row: row, column: $0) ?? "NULL" }
    }
}

/// The same rows straight from the `pings` table.
private func tableRows(_ store: Store, _ index: PingIndex) throws -> [[String]] {
    try store.rows("SELECT ping_id, document_id, \(index.columns.map(Store.quote).joined(separator: ", ")) FROM pings ORDER BY ping_id")
}

private func sampleStore(_ fixture: LayoutFixture) throws -> Store {
    let store = try fixture.openStore()
    _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
    return store
}

struct PingIndexTests {
    @Test func importSavesAnIndexEqualToThePingsTable() throws {
        let fixture = LayoutFixture()
        let store = try sampleStore(fixture)
        #expect(FileManager.default.fileExists(atPath: PingIndex.filePath(storePath: store.path)))
        let loaded = try #require(PingIndex.load(path: PingIndex.filePath(storePath: store.path)))
        #expect(loaded.count == 363)
        #expect(loaded.columns == store.schema.fieldNames + ["os", "os_version", "arch", "locale", "revision", "update_channel"])
        #expect(loaded.infoColumn(field: "OS") == store.schema.fieldNames.count)
        #expect(indexRows(loaded) == (try tableRows(store, loaded)))
        #expect(loaded.generation == (try store.pingGeneration()))
    }

    @Test func changesThroughSQLMakeTheIndexRebuild() throws {
        let fixture = LayoutFixture()
        let store = try sampleStore(fixture)
        let before = try PingIndex.current(store: store)
        #expect(try PingIndex.current(store: store) === before)   // cached while nothing changes
        try store.connection.execute("DELETE FROM pings WHERE os = 'Darwin'")
        let afterDelete = try PingIndex.current(store: store)
        #expect(afterDelete.count == before.count - Int(try #require(try store.int("SELECT \(before.count) - count(*) FROM pings"))))
        #expect(indexRows(afterDelete) == (try tableRows(store, afterDelete)))
        try store.connection.execute("UPDATE pings SET os = 'Plan9' WHERE ping_id = (SELECT min(ping_id) FROM pings)")
        let afterUpdate = try PingIndex.current(store: store)
        #expect(afterUpdate.value(row: 0, column: try #require(afterUpdate.infoColumn(field: "OS"))) == "Plan9")
        // A second reader (another process) sees the saved file, not a stale one.
        let reader = try Store(path: store.path, create: false, readOnly: true)
        #expect(indexRows(try #require(PingIndex.load(path: PingIndex.filePath(storePath: store.path)))) == indexRows(afterUpdate))
        #expect(indexRows(try PingIndex.current(store: reader)) == indexRows(afterUpdate))
    }

    @Test(arguments: ["truncated", "garbage", "empty"])
    func damagedIndexFileIsRebuilt(damage: String) throws {
        let fixture = LayoutFixture()
        let store = try sampleStore(fixture)
        let path = PingIndex.filePath(storePath: store.path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        switch damage {
        case "truncated": try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: path))
        case "garbage": try Data(good.prefix(48) + Data(repeating: 0xFF, count: good.count - 48)).write(to: URL(fileURLWithPath: path))
        default: try Data().write(to: URL(fileURLWithPath: path))
        }
        #expect(PingIndex.load(path: path) == nil)
        // Drop the process cache by changing nothing but the file: a fresh build must equal the table.
        let rebuilt = try PingIndex.build(store: store, generation: try store.pingGeneration())
        #expect(indexRows(rebuilt) == (try tableRows(store, rebuilt)))
        try store.connection.execute("UPDATE pings SET os = os WHERE 0")   // no row changes: same generation
        let current = try PingIndex.current(store: store)
        #expect(indexRows(current) == indexRows(rebuilt))
    }

    /// A well-formed file with changed codes (a flipped bit that keeps every code in range) is caught by the
    /// CRC-64 and rebuilt, never used.
    @Test func aFlippedCodeIsCaughtByTheChecksum() throws {
        let fixture = LayoutFixture()
        let store = try sampleStore(fixture)
        let path = PingIndex.filePath(storePath: store.path)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let header = 8 + 4 + (try #require(try store.pingGeneration())).utf8.count + 24
        let firstCode = header + 363 * 8                   // codes of the first column (reason) start after the ping ids
        #expect(data[firstCode] == 1 || data[firstCode] == 2)
        data[firstCode] ^= 3                                // 1 <-> 2: still a valid code
        try data.write(to: URL(fileURLWithPath: path))
        #expect(PingIndex.load(path: path) == nil)
    }

    @Test func aRecreatedStoreNeverReusesTheOldIndex() throws {
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(), text: line("a", #"{"ver":2,"info":{"OS":"Linux"}}"#))
        var store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        #expect(try PingIndex.current(store: store).value(row: 0, column: store.schema.fieldNames.count) == "Linux")
        // Same path, same number of changes, different content.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: store.path + suffix) }
        try fixture.write(LayoutFixture.layoutPath(), text: line("b", #"{"ver":2,"info":{"OS":"WINNT"}}"#))
        store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        let index = try PingIndex.current(store: store)
        #expect(index.documentID(row: 0) == "b")
        #expect(index.value(row: 0, column: store.schema.fieldNames.count) == "WINNT")
    }

    /// `--where` is evaluated per distinct combination of the columns it reads when they are all indexed, else per
    /// ping on the store; both must equal SQLite's own answer on `pings`.
    @Test(arguments: [
        "os = 'WINNT'",
        "appUpdateChannel IN ('release', 'beta') AND reason = 'saved_session'",
        "os IS NULL OR update_channel LIKE 'n%'",
        "lower(os) <> 'linux' AND submission_date >= '20131016'",
        "memsize > 4000",
        "json_extract(payload, '$.info.OS') = 'Darwin'",
        "ping_id % 3 = 0",
        "document_id IN (SELECT document_id FROM duplicate_documents)",
        "os IN (SELECT os FROM pings GROUP BY os HAVING count(*) > 30)",
        "os = 'WINNT' AND (SELECT count(*) FROM pings p WHERE p.os = pings.os) > 10",
        "1",
    ])
    func whereSelectionEqualsSQLite(condition: String) throws {
        let fixture = LayoutFixture()
        let store = try sampleStore(fixture)
        let index = try PingIndex.current(store: store)
        let selected = try index.select(filter: nil, whereSQL: condition, store: store).map { String(index.pingIDs[Int($0)]) }
        let expected = try store.rows("SELECT ping_id FROM pings WHERE (\(condition)) ORDER BY ping_id").map { $0[0] }
        #expect(selected == expected)
        #expect(!expected.isEmpty)
    }

    /// Failure 6 of issue 11: a condition calling a non-deterministic function was evaluated once per distinct
    /// combination of the indexed columns it reads, so `random() < 0.1 AND appUpdateChannel = 'beta'` kept all of
    /// the beta pings or none. It is now evaluated per ping, as `query` does: the kept share is binomial.
    /// (`random()` is a signed 64-bit integer: `random() < 0.1` holds for half of the pings, `abs(random()) % 10 = 0`
    /// for a tenth.) Bounds: 6 standard deviations of Binomial(2000, p).
    @Test func nonDeterministicWhereIsEvaluatedPerPing() throws {
        let fixture = LayoutFixture()
        var beta = "", release = ""
        for number in 0..<2000 { beta += line("b\(number)", #"{"ver":2,"info":{"OS":"Linux"},"histograms":{}}"#) }
        for number in 0..<50 { release += line("r\(number)", #"{"ver":2,"info":{"OS":"Linux"},"histograms":{}}"#) }
        try fixture.write(LayoutFixture.layoutPath(channel: "beta"), text: beta)
        try fixture.write(LayoutFixture.layoutPath(channel: "release"), text: release)
        _ = try fixture.importAll()
        let store = try fixture.openStore()
        let index = try PingIndex.current(store: store)
        for (condition, share) in [("random() < 0.1 AND appUpdateChannel = 'beta'", 0.5),
                                   ("abs(random()) % 10 = 0 AND appUpdateChannel = 'beta'", 0.1),
                                   ("appUpdateChannel = 'beta' AND hex(randomblob(1)) < '1A'", 26.0 / 256)] {
            let kept = try index.select(filter: nil, whereSQL: condition, store: store)
            let query = try #require(try store.int("SELECT count(*) FROM pings WHERE \(condition)"))
            let (mean, deviation) = (2000 * share, (2000 * share * (1 - share)).squareRoot())
            for count in [Double(kept.count), Double(query)] {
                #expect(abs(count - mean) < 6 * deviation, "\(condition): kept \(count) of 2000 (query \(query))")
            }
            #expect(kept.allSatisfy { index.value(row: Int($0), column: index.columns.firstIndex(of: "appUpdateChannel")!) == "beta" })
        }
        // Deterministic functions still go per distinct combination, with the same answer as SQLite.
        #expect(try PingIndex.allDeterministic(["lower", "coalesce", "abs"], on: store.connection))
        #expect(try !PingIndex.allDeterministic(["lower", "random"], on: store.connection))
        #expect(try !PingIndex.allDeterministic(["changes"], on: store.connection))
        #expect(try !PingIndex.allDeterministic(["histogram_kind"], on: store.connection))
        #expect(try !PingIndex.allDeterministic(["no_such_function"], on: store.connection))
    }

    @Test func filterSelectionMatchesTheFilterSemantics() throws {
        let fixture = LayoutFixture()
        let store = try sampleStore(fixture)
        let index = try PingIndex.current(store: store)
        let filter = try DimensionSchema(json: Data(#"""
            {"version": 1, "dimensions": [
              {"field_name": "reason", "allowed_values": ["saved-session"]},
              {"field_name": "appName", "allowed_values": "*"},
              {"field_name": "appUpdateChannel", "allowed_values": ["release", "beta"]},
              {"field_name": "appVersion", "allowed_values": "*"},
              {"field_name": "appBuildID", "allowed_values": "*"},
              {"field_name": "submission_date", "allowed_values": {"min": "20131016", "max": "20131020"}}]}
            """#.utf8), source: "filter")
        let selected = try index.select(filter: filter, whereSQL: nil, store: store).map { String(index.pingIDs[Int($0)]) }
        let expected = try store.rows("""
            SELECT ping_id FROM pings WHERE reason = 'saved_session' AND appUpdateChannel IN ('release', 'beta')
              AND submission_date BETWEEN '20131016' AND '20131020' ORDER BY ping_id
            """).map { $0[0] }
        #expect(selected == expected)
        #expect(expected.count > 10)
        let both = try index.select(filter: filter, whereSQL: "os = 'Linux'", store: store).map { String(index.pingIDs[Int($0)]) }
        #expect(both == (try store.rows("""
            SELECT ping_id FROM pings WHERE reason = 'saved_session' AND appUpdateChannel IN ('release', 'beta')
              AND submission_date BETWEEN '20131016' AND '20131020' AND os = 'Linux' ORDER BY ping_id
            """).map { $0[0] }))
    }

    @Test func badWhereIsAnSQLiteErrorAndUnknownFilterDimensionIsNamed() throws {
        let fixture = LayoutFixture()
        let store = try sampleStore(fixture)
        let index = try PingIndex.current(store: store)
        #expect(throws: StoreError.self) { _ = try index.select(filter: nil, whereSQL: "no_such_column = 1", store: store) }
        // One expression only: more SQL after it, or a comment eating the closing parenthesis, is refused.
        for hostile in ["1); DROP TABLE pings; --", "os = 'Linux') -- ", "1; SELECT 2", "memsize > 1); DELETE FROM pings; --"] {
            #expect(throws: StoreError.self, "\(hostile)") { _ = try index.select(filter: nil, whereSQL: hostile, store: store) }
        }
        #expect(try store.int("SELECT count(*) FROM pings") == 363)
        let filter = try DimensionSchema(json: Data(#"{"version": 1, "dimensions": [{"field_name": "colour", "allowed_values": "*"}]}"#.utf8), source: "f")
        #expect(throws: PingIndexError.unknownDimension(name: "colour", known: store.schema.fieldNames)) {
            _ = try index.select(filter: filter, whereSQL: nil, store: store)
        }
    }
}
