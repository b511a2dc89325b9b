import Foundation
import Testing
import TelemetryCompression
import TelemetryCore
import TelemetryStore
import TelemetryTestSupport

/// Damaged inputs: each gives the right counts and messages, keeps the good records, and never crashes.
struct DamageTests {
    private static func pings(_ range: ClosedRange<Int>) -> String {
        range.map { line(String(format: "00000000-0000-4000-8000-%012d", $0), #"{"ver":2,"info":{"OS":"Linux","n":\#($0)}}"#) }.joined()
    }

    @Test func truncatedXZKeepsTheRecordsBeforeTheCut() throws {
        let fixture = LayoutFixture()
        // 3000 lines × ~80 bytes, compressed, then cut in half.
        let path = try fixture.write(LayoutFixture.layoutPath(), text: Self.pings(1...3000))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        let summary = try fixture.importAll()
        #expect(summary.fileErrors.count == 1)
        #expect(summary.fileErrors.first?.reason == "truncated")
        #expect(summary.fileErrors.first?.message.contains(path) == true)
        #expect(summary.pings > 0 && summary.pings < 3000)
        #expect(summary.hadFailures)
        let store = try fixture.openStore()
        // Every kept record is complete and in order: ids 1…pings.
        #expect(try store.int("SELECT max(json_extract(payload, '$.info.n')) FROM pings") == Int64(summary.pings))
        #expect(try store.rows("SELECT status FROM source_files") == [["truncated"]])
        #expect(try store.int("SELECT count(*) FROM import_errors WHERE reason = 'truncated' AND path = '\(path)'") == 1)
    }

    @Test func garbageInTheMiddleOfAnXZFileIsReportedAsCorrupt() throws {
        let fixture = LayoutFixture()
        // Random-ish content so that the compressed stream is long enough to damage its middle.
        var text = ""
        var generator = SystemRandomNumberGenerator()
        for i in 1...2000 {
            let noise = (0..<40).map { _ in String(UInt8.random(in: 97...122, using: &generator)) }.joined(separator: ",")
            text += line("id-\(i)", #"{"ver":2,"i":\#(i),"noise":[\#(noise)]}"#)
        }
        let path = try fixture.write(LayoutFixture.layoutPath(), text: text)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let middle = bytes.count / 2
        for offset in middle..<(middle + 64) { bytes[offset] = 0x5A }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let summary = try fixture.importAll()
        #expect(summary.fileErrors.map(\.reason) == ["corrupt_data"])
        #expect(summary.pings > 0 && summary.pings < 2000)
        let store = try fixture.openStore()
        #expect(try store.int("SELECT count(*) FROM pings WHERE json_extract(payload, '$.i') != line") == 0)
    }

    /// Empty files are noted, not errors (issue 18 item 4: an empty input exits 0).
    @Test func emptyFilesAreNotedNotErrors() throws {
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(id: "00000000000000000000000000000001"), bytes: [], compress: false)
        try fixture.write(LayoutFixture.layoutPath(id: "00000000000000000000000000000002", suffix: "log"), bytes: [], compress: false)
        try fixture.write(LayoutFixture.layoutPath(id: "00000000000000000000000000000003"), text: Self.pings(1...2))
        let summary = try fixture.importAll()
        #expect(summary.pings == 2)
        #expect(summary.fileErrors.isEmpty)
        #expect(summary.emptyFiles.count == 2 && summary.emptyFiles.allSatisfy { $0.hasSuffix("01.xz") || $0.hasSuffix("02.log") })
        #expect(!summary.hadFailures)
        // Re-running does not report them again (they are recorded with their size and mtime).
        let again = try fixture.importAll()
        #expect(again.fileErrors.isEmpty && again.emptyFiles.isEmpty && again.filesUnchanged == 3 && again.pings == 0)
    }

    @Test func aFiftyMegabyteLineIsTooLongAndItsNeighboursAreKept() throws {
        let fixture = LayoutFixture()
        var bytes = Array(line("id-1", #"{"ver":2}"#).utf8)
        bytes += Array("id-2\t{\"ver\":2,\"pad\":\"".utf8) + [UInt8](repeating: 0x61, count: 50 << 20) + Array("\"}\n".utf8)
        bytes += Array(line("id-3", #"{"ver":2}"#).utf8)
        try fixture.write(LayoutFixture.layoutPath(), bytes: bytes)
        let summary = try fixture.importAll(options: ImportOptions(jobs: 1, maxLineBytes: 16 << 20))
        #expect(summary.pings == 2)
        #expect(summary.badLines == ["too_long": 1])
        let store = try fixture.openStore()
        #expect(try store.rows("SELECT document_id, line FROM pings ORDER BY line") == [["id-1", "1"], ["id-3", "3"]])
        let message = try store.rows("SELECT line, message FROM import_errors WHERE reason = 'too_long'")
        #expect(message.first?[0] == "2")
        #expect(message.first?[1].contains("line of \((50 << 20) + 23) bytes") == true)
    }

    @Test func tenThousandTinyFiles() throws {
        let fixture = LayoutFixture()
        for i in 0..<10_000 {
            let relative = LayoutFixture.layoutPath(version: "v\(i % 10)", date: "2013101\(i % 3)",
                                                    id: String(format: "%032x", i), suffix: "log")
            try fixture.write(relative, text: line("id-\(i)", #"{"ver":2,"i":\#(i)}"#), compress: false)
        }
        let summary = try fixture.importAll()
        #expect(summary.filesImported == 10_000)
        #expect(summary.pings == 10_000)
        #expect(!summary.hadFailures)
        let store = try fixture.openStore()
        #expect(try store.rows("SELECT appVersion, count(*) FROM pings GROUP BY 1 ORDER BY 1").count == 10)
        #expect(try store.int("SELECT count(DISTINCT submission_date) FROM pings") == 3)
        let again = try fixture.importAll()
        #expect(again.filesUnchanged == 10_000 && again.pings == 0)
    }

    @Test func pathsThatDoNotFitTheSchemaAreErrors() throws {
        let fixture = LayoutFixture()
        try fixture.write("saved_session/Firefox/nightly/20131029030201.20131029.v2.log.aa.xz", text: Self.pings(1...2))   // 5 dims
        try fixture.write("stray.xz", text: Self.pings(3...4))                                                            // 2 dims
        try fixture.write("saved_session/Firefox/nightly/28.0a1/extra/20131029030201.20131029.v2.log.bb.xz", text: Self.pings(5...6))
        try fixture.write("saved_session/Firefox/nightly/28.0a1/nodots", text: Self.pings(7...8))
        try fixture.write(LayoutFixture.layoutPath(), text: Self.pings(9...10))
        let summary = try fixture.importAll()
        #expect(summary.pings == 2)
        #expect(summary.fileErrors.count == 4)
        #expect(Set(summary.fileErrors.map(\.reason)) == ["path_error"])
        #expect(summary.fileErrors.contains { $0.message.contains("5 dimensions in the path, the schema has 6") })
        #expect(summary.fileErrors.contains { $0.message.contains("nodots") && $0.message.contains("submission_date") })
    }
}
