import Foundation
import Testing
import TelemetryStore
import TelemetryTestSupport

/// Histogram names a client can send that cannot be file names (issue 18 item 2): column files get bounded names,
/// the real name lives in the metadata, and import, reindex and the SQL functions go by the real name.
struct HostileHistogramNameTests {
    static let long = String(repeating: "LONG_NAME_", count: 30)          // 300 bytes: past NAME_MAX (255)
    static let slashed = "../../etc/a/b"                                   // path separators and dot-dot
    static let quoted = "Q\"uote\\d\u{1}"                                   // JSON escapes and a control character

    /// Storage lines: ping `p<i>` carries `GOOD` and one hostile histogram; `raw` has a key with bytes that are not
    /// UTF-8 (a line a broken client could send), `surrogate` a key with a JSON escape of a lone surrogate.
    static func tree(_ fixture: LayoutFixture) throws {
        var bytes: [UInt8] = []
        for (index, name) in [long, slashed, quoted].enumerated() {
            let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\u{1}", with: "\\u0001")
            bytes += Array(line("p\(index)", #"{"ver":2,"histograms":{"GOOD":[1,2,3,-1,-1,-1,-1],"\#(escaped)":[\#(index + 1),0,\#(index + 1),-1,-1,-1,-1]}}"#).utf8)
        }
        bytes += Array(#"raw\#t{"ver":2,"histograms":{"GOOD":[1,2,3,-1,-1,-1,-1],"BAD"#.utf8) + [0xFF, 0xC0, 0x2F]
            + Array(#"":[9,0,9,-1,-1,-1,-1]}}"#.utf8) + [0x0A]
        bytes += Array(line("surrogate", #"{"ver":2,"histograms":{"GOOD":[1,2,3,-1,-1,-1,-1],"S\udc80":[4,0,4,-1,-1,-1,-1]}}"#).utf8)
        bytes += Array(line("after", #"{"ver":2,"histograms":{"GOOD":[1,2,3,-1,-1,-1,-1]}}"#).utf8)
        try fixture.write(LayoutFixture.layoutPath(), bytes: bytes)
    }

    static func expectBoundedFiles(_ store: Store, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let directory = columnsDirectory(store)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        for file in files {
            var isDirectory: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: directory + "/" + file, isDirectory: &isDirectory) && !isDirectory.boolValue,
                    sourceLocation: sourceLocation)
            #expect(file.utf8.count <= 84, "\(file)", sourceLocation: sourceLocation)
        }
        let entries = try #require(try ColumnMaintenance.committedColumns(store: store), sourceLocation: sourceLocation)
        #expect(Set(entries.keys) == Set(files), sourceLocation: sourceLocation)
        #expect(Set(entries.values.map(\.histogramName)).isSuperset(of: ["GOOD", long, slashed, quoted]), sourceLocation: sourceLocation)
    }

    static func expectFoundByRealName(_ store: Store, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let columns = try HistogramColumns.open(store: store)
        #expect(columns.column(named: "GOOD").first?.rowCount == (try store.int("SELECT count(*) FROM pings")).map(Int.init),
                sourceLocation: sourceLocation)
        for (index, name) in [long, slashed, quoted].enumerated() {
            #expect(columns.column(named: name).first?.rowCount == 1, "\(name)", sourceLocation: sourceLocation)
            let literal = "'" + name.replacingOccurrences(of: "'", with: "''") + "'"
            #expect(try store.rows("SELECT histogram_sum(ping_id, \(literal)) FROM pings") == [["[\(index + 1),0,\(index + 1),-1,-1,-1,-1]"]],
                    sourceLocation: sourceLocation)
        }
        try expectColumnsMatchPayloads(store, sourceLocation: sourceLocation)
    }

    @Test func hostileNamesImportAndReindex() throws {
        let fixture = LayoutFixture()
        try Self.tree(fixture)
        let store = try fixture.openStore()
        let summary = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        // A name that is not UTF-8 makes its line a counted bad line (a store holds text): the lines around it stay.
        #expect(summary.pings == 4)
        #expect(summary.badLines == ["invalid_utf8": 1, "invalid_json": 1])
        #expect(try store.int("SELECT count(*) FROM pings WHERE document_id IN ('p0','p1','p2','after')") == 4)
        try Self.expectBoundedFiles(store)
        try Self.expectFoundByRealName(store)
        // reindex rebuilds the same columns, under the same names
        let imported = try #require(try ColumnMaintenance.committedColumns(store: store))
        try ColumnMaintenance.rebuild(store: store)
        #expect(try ColumnMaintenance.committedColumns(store: store) == imported)
        try Self.expectBoundedFiles(store)
        try Self.expectFoundByRealName(store)
    }

    /// `--no-histogram-columns`, then `reindex` (it failed store-wide with ENAMETOOLONG).
    @Test func reindexAfterAnImportWithoutColumns() throws {
        let fixture = LayoutFixture()
        try Self.tree(fixture)
        let store = try fixture.openStore()
        var options = ImportOptions(jobs: 1)
        options.histogramColumns = false
        _ = try Importer(store: store, options: options).run(roots: [fixture.root])
        let (files, rows) = try ColumnMaintenance.rebuildAll(store: store)
        #expect(files >= 4 && rows >= 7)
        try Self.expectBoundedFiles(store)
        try Self.expectFoundByRealName(store)
    }

    /// A store written before bounded names (`<NAME>.<n>.col`, state arrays) is still read.
    @Test func legacyColumnStateIsRead() throws {
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(), text: line("a", #"{"ver":2,"histograms":{"A.B":[1,2,3,-1,-1,-1,-1]}}"#))
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 1)).run(roots: [fixture.root])
        let entry = try #require(try ColumnMaintenance.committedColumns(store: store)?.values.first)
        let directory = columnsDirectory(store)
        try FileManager.default.moveItem(atPath: directory + "/" + entry.fileName, toPath: directory + "/A%2EB.2.col")
        let crc = String(entry.state.crc, radix: 16)
        try store.connection.execute("""
            UPDATE store_meta SET value = '{"A%2EB.2.col":[\(entry.state.rows),\(entry.state.bytes),\(entry.state.lastPingID),"\(crc)"]}'
            WHERE key = 'histogram_columns'
            """)
        #expect(try !ColumnMaintenance.ensureConsistent(store: store).rebuilt)
        #expect(try store.rows("SELECT histogram_sum(ping_id, 'A.B') FROM pings") == [["[1,2,3,-1,-1,-1,-1]"]])
    }
}
