import Foundation
import Testing
import TelemetryStore
import TelemetryTestSupport

/// Every histogram in the payload JSON of every ping, read independently of the column decoder: SQLite's
/// `json_each` gives each array's text with the numbers as written; (ping_id, name) → the number literals.
func payloadHistograms(_ store: Store) throws -> [String: [String]] {
    var result: [String: [String]] = [:]
    let rows = try store.rows("""
        SELECT p.ping_id, h.key, h.value FROM pings p,
            json_each(p.payload, CASE WHEN json_type(p.payload, '$.histograms') = 'object' THEN '$.histograms'
                                      ELSE '$.payload.histograms' END) h
        WHERE h.type = 'array'
        """)
    for row in rows {
        let numbers = row[2].dropFirst().dropLast().split(separator: ",").map(String.init)
        guard numbers.count >= 6 else { continue }
        let n = numbers.count - 5
        guard numbers[0..<n].allSatisfy({ Int64($0) != nil }), numbers[n...].allSatisfy({ Double($0) != nil }) else { continue }
        result["\(row[0]) \(row[1])"] = numbers
    }
    return result
}

/// Every row of every column: (ping_id, name) → storage array.
func columnHistograms(_ columns: HistogramColumns) throws -> [String: [HistogramStatistic]] {
    var result: [String: [HistogramStatistic]] = [:]
    for name in columns.names {
        for column in columns.column(named: name) {
            let rows = try column.rows()
            #expect(rows.count == column.rowCount)
            for row in 0..<rows.count {
                let key = "\(rows.pingIDs[row]) \(name)"
                #expect(result[key] == nil, "\(key) in two layouts")
                result[key] = rows.storageArray(row: row)
            }
        }
    }
    return result
}

/// Checks that the columns hold exactly the payload JSON's histograms, value for value.
func expectColumnsMatchPayloads(_ store: Store, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = try payloadHistograms(store)
    let actual = try columnHistograms(try HistogramColumns.open(store: store))
    #expect(Set(actual.keys) == Set(expected.keys), sourceLocation: sourceLocation)
    var mismatches = 0
    for (key, numbers) in expected {
        guard let values = actual[key], values.count == numbers.count else { mismatches += 1; continue }
        for (value, number) in zip(values, numbers) {
            switch value {
            case let .integer(i): if Int64(number) != i { mismatches += 1 }
            case let .real(d): if Int64(number) != nil || Double(number) != d { mismatches += 1 }
            }
        }
    }
    #expect(mismatches == 0, sourceLocation: sourceLocation)
}

func columnsDirectory(_ store: Store) -> String { store.path + ".columns" }

/// The file of histogram `name`'s column with `n` buckets, as the store's metadata names it.
func columnFile(_ store: Store, _ name: String, _ n: Int) throws -> String {
    let entry = try #require(try ColumnMaintenance.committedColumns(store: store)?.values.first { $0.histogramName == name && $0.bucketCount == n })
    return columnsDirectory(store) + "/" + entry.fileName
}

struct ColumnFileTests {
    @Test func realPingsColumnsMatchPayloadJSON() throws {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        let summary = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.sharedPath("datasets/real/storage")])
        #expect(summary.pings == 5)
        try expectColumnsMatchPayloads(store)
        #expect(try HistogramColumns.open(store: store).names.count > 100)
    }

    @Test func sampleColumnsMatchPayloadJSON() throws {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
        try expectColumnsMatchPayloads(store)
    }

    @Test func reindexEqualsImport() throws {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
        let imported = try columnHistograms(try HistogramColumns.open(store: store))
        let files = try FileManager.default.contentsOfDirectory(atPath: columnsDirectory(store)).sorted()
        var bytes: [String: Data] = [:]
        for file in files { bytes[file] = try Data(contentsOf: URL(fileURLWithPath: columnsDirectory(store) + "/" + file)) }
        try ColumnMaintenance.rebuild(store: store)
        #expect(try columnHistograms(try HistogramColumns.open(store: store)) == imported)
        #expect(try FileManager.default.contentsOfDirectory(atPath: columnsDirectory(store)).sorted() == files)
        for file in files {
            #expect(try Data(contentsOf: URL(fileURLWithPath: columnsDirectory(store) + "/" + file)) == bytes[file], "\(file)")
        }
    }

    @Test(arguments: ["truncated", "garbage header", "deleted"])
    func damagedColumnFileIsDetectedAndRebuilt(damage: String) throws {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
        let path = try columnFile(store, "SAMPLE_GC_MS", 50)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        switch damage {
        case "truncated": #expect(truncate(path, off_t(size - 100)) == 0)
        case "garbage header":
            let handle = try #require(FileHandle(forWritingAtPath: path))
            try handle.write(contentsOf: Data(repeating: 0x5A, count: 16)); try handle.close()
        default: try FileManager.default.removeItem(atPath: path)
        }
        // A reader that must not repair reports it; opening for repair rebuilds.
        #expect(throws: HistogramColumnError.self) { _ = try HistogramColumns.open(store: store, repair: false) }
        #expect(try ColumnMaintenance.ensureConsistent(store: store).rebuilt)
        try expectColumnsMatchPayloads(store)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == size)
    }

    /// Damage inside the rows (same size, valid header) is found when the rows are indexed: SQL and readers get an
    /// error naming the file and `telemetry reindex`, never wrong numbers; a rebuild restores the columns.
    @Test func damagedRowsAreReportedAndReindexRestoresThem() throws {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
        let good = try store.rows("SELECT histogram_sum(ping_id, 'SAMPLE_GC_MS') FROM pings")
        let path = try columnFile(store, "SAMPLE_GC_MS", 50)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        // Any single flipped bit in the rows is caught (CRC-64), not only structural damage.
        for (position, bit) in [(original.count / 2, 0), (original.count / 3, 3), (original.count - 1, 7), (40, 1)] {
            var damaged = original
            damaged[position] ^= UInt8(1 << bit)
            try damaged.write(to: URL(fileURLWithPath: path))
            store.histogramColumnsChanged()
            let column = try #require(try HistogramColumns.open(store: store, repair: false).column(named: "SAMPLE_GC_MS").first)
            #expect(throws: HistogramColumnError.self, "bit \(bit) of byte \(position)") { _ = try column.rows() }
        }
        let size = original.count
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seek(toOffset: UInt64(size / 2))
        try handle.write(contentsOf: Data(repeating: 0xFF, count: 64)); try handle.close()
        store.histogramColumnsChanged()
        let column = try #require(try HistogramColumns.open(store: store, repair: false).column(named: "SAMPLE_GC_MS").first)
        #expect(throws: HistogramColumnError.self) { _ = try column.rows() }
        do {
            _ = try store.rows("SELECT histogram_sum(ping_id, 'SAMPLE_GC_MS') FROM pings")
            Issue.record("a damaged column gave a result")
        } catch {
            #expect("\(error)".contains(path))
            #expect("\(error)".contains("reindex"))
        }
        try ColumnMaintenance.rebuild(store: store)
        #expect(try store.rows("SELECT histogram_sum(ping_id, 'SAMPLE_GC_MS') FROM pings") == good)
        try expectColumnsMatchPayloads(store)
    }

    /// A reader keeps a consistent view while an import drops rows of a file it has mapped (re-import of a changed
    /// file whose pings had the highest ping_ids): the kept rows go to a new file, the old one is never cut.
    @Test func mappedColumnsSurviveAReimportThatDropsRows() throws {
        let fixture = LayoutFixture()
        let relative = LayoutFixture.layoutPath()
        let lines = (0..<40).map { line("r\($0)", #"{"ver":2,"histograms":{"H":[\#($0),1,2,\#($0 + 3),-1,-1,-1,-1]}}"#) }
        try fixture.write(relative, text: lines.joined())
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        let reader = try Store(path: store.path, create: false, readOnly: true)
        let mapped = try #require(try HistogramColumns.open(store: reader, repair: false).column(named: "H").first)
        let rows = try mapped.rows()
        let before = (0..<rows.count).map { rows.counts(row: $0) }
        #expect(before.count == 40)
        try fixture.write(relative, text: lines.prefix(10).joined())   // fewer pings: their ids are reused
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        #expect((0..<rows.count).map { rows.counts(row: $0) } == before)   // the old mapping still reads, no SIGBUS
        try expectColumnsMatchPayloads(store)
        #expect(try HistogramColumns.open(store: store).column(named: "H").first?.rowCount == 10)
    }

    /// Changing payloads in place makes the columns out of date: the SQL functions say so, and the next import
    /// rebuilds them from the changed payloads.
    @Test func updatingPayloadsMarksTheColumnsOutOfDate() throws {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
        try store.connection.execute("UPDATE pings SET payload = json_remove(payload, '$.histograms.SAMPLE_GC_MS') WHERE appUpdateChannel = 'nightly'")
        do {
            _ = try store.rows("SELECT histogram_count(ping_id, 'SAMPLE_GC_MS') FROM pings")
            Issue.record("columns out of date were used")
        } catch {
            #expect("\(error)".contains("out of date"))
        }
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
        try expectColumnsMatchPayloads(store)
        #expect(try store.rows("SELECT histogram_count(ping_id, 'SAMPLE_GC_MS') FROM pings WHERE appUpdateChannel = 'nightly'") == [["0"]])
    }

    /// A connection's SQL functions see another connection's import (the REPL beside a `telemetry import`).
    @Test func sqlFunctionsSeeAnotherConnectionsImport() throws {
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(), text: line("a", #"{"ver":2,"histograms":{"H":[1,2,3,-1,-1,-1,-1]}}"#))
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        let session = try Store(path: store.path, create: false)
        #expect(try session.rows("SELECT histogram_count(ping_id, 'H'), histogram_sum(ping_id, 'H') FROM pings") == [["1", "[1,2,3,-1,-1,-1,-1]"]])
        try fixture.write(LayoutFixture.layoutPath(id: "1ab8723b6fb3455bb34b04d97482fda2"),
                          text: line("b", #"{"ver":2,"histograms":{"H":[4,5,6,-1,-1,-1,-1]}}"#))
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        #expect(try session.rows("SELECT histogram_count(ping_id, 'H'), histogram_sum(ping_id, 'H') FROM pings") == [["2", "[5,7,9,-1,-1,-1,-1]"]])
    }

    @Test func importRebuildsColumnsOfAStoreWithoutThem() throws {
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(), text: line("a", #"{"ver":2,"histograms":{"H":[1,2,3,6,-1,-1,-1,-1]}}"#))
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        // Simulate an old store: no column state, no files.
        try store.connection.execute("DELETE FROM store_meta WHERE key = 'histogram_columns'")
        try FileManager.default.removeItem(atPath: columnsDirectory(store))
        try fixture.write(LayoutFixture.layoutPath(id: "1ab8723b6fb3455bb34b04d97482fda2"),
                          text: line("b", #"{"ver":2,"histograms":{"H":[1,1,1,3,-1,-1,-1,-1]}}"#))
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        try expectColumnsMatchPayloads(store)
        #expect(try HistogramColumns.open(store: store).column(named: "H").first?.rowCount == 2)
    }

    /// An import stopped between files (isCancelled) keeps columns equal to the committed pings; rows written
    /// for a file that was rolled back (simulated by appending a stale tail past the committed rows) are cut off.
    @Test func interruptedImportLeavesColumnsMatchingCommittedPings() throws {
        let fixture = LayoutFixture()
        for index in 0..<6 {
            let id = String(format: "%032x", index + 1)
            let lines = (0..<5).map { n in line("d\(index)-\(n)", #"{"ver":2,"histograms":{"H":[\#(n),\#(index),0,\#(n + index),-1,-1,-1,-1],"G":[1,1,2,-1,-1,-1,-1]}}"#) }
            try fixture.write(LayoutFixture.layoutPath(id: id), text: lines.joined())
        }
        let store = try fixture.openStore()
        let calls = Counter()
        let summary = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root], isCancelled: { calls.next() > 12 })
        #expect(summary.interrupted)
        let committed = try #require(try store.int("SELECT count(*) FROM pings"))
        #expect(committed > 0 && committed < 30)
        try expectColumnsMatchPayloads(store)
        // A killed import after writing rows but before COMMIT: extra rows past the committed count.
        let path = try columnFile(store, "H", 3)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 7, count: 240)); try handle.close()
        #expect(try !ColumnMaintenance.ensureConsistent(store: store).rebuilt)
        try expectColumnsMatchPayloads(store)
        // The re-run completes the store and the columns.
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        #expect(try store.int("SELECT count(*) FROM pings") == 30)
        try expectColumnsMatchPayloads(store)
        #expect(try HistogramColumns.open(store: store).column(named: "H").first?.rowCount == 30)
    }

    /// Replacing a changed file deletes its pings; SQLite may reuse their ping_ids, so stale rows must go.
    @Test func replacedFileDoesNotLeaveStaleRows() throws {
        let fixture = LayoutFixture()
        let relative = LayoutFixture.layoutPath()
        try fixture.write(relative, text: line("a", #"{"ver":2,"histograms":{"H":[5,0,5,-1,-1,-1,-1]}}"#)
                          + line("b", #"{"ver":2,"histograms":{"H":[0,5,5,-1,-1,-1,-1]}}"#))
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        try fixture.write(relative, text: line("a", #"{"ver":2}"#) + line("b", #"{"ver":2}"#) + line("c", #"{"ver":2,"histograms":{"H":[1,0,0,-1,-1,-1,-1]}}"#))
        let summary = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        #expect(summary.filesReplaced == 1)
        try expectColumnsMatchPayloads(store)
        #expect(try store.rows("SELECT histogram_count(ping_id, 'H'), histogram_sum(ping_id, 'H') FROM pings") == [["1", "[1,0,0,-1,-1,-1,-1]"]])
    }
}

/// A thread-safe call counter for `isCancelled` closures.
final class Counter: @unchecked Sendable {   // `lock` guards `value`
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}

