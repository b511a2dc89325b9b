import Foundation
import Testing
import TelemetryCore
import TelemetryStore
import TelemetryTestSupport

/// `../shared/hazards.md` entries for the import stage.
struct HazardTests {
    /// Imports `text` as one plain storage file and returns the fixture, summary and store.
    private func importText(_ text: String, compress: Bool = false) throws -> (LayoutFixture, ImportSummary, Store) {
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(), text: text, compress: compress)
        let summary = try fixture.importAll()
        return (fixture, summary, try fixture.openStore())
    }

    private func errors(_ store: Store) throws -> [[String]] {
        try store.rows("SELECT line, reason, message FROM import_errors WHERE severity = 'error' ORDER BY line")
    }

    @Test("BR-09: split at the first tab, short ids, CRLF, a line without a tab")
    func storageLineFraming() throws {
        let text = "0fdac909-d2ec-454c-b625-261a3e5d5c9b\t{\"ver\":2,\"n\":1}\n"
            + "abc\t{\"ver\":2,\"n\":2}\n"
            + "6fd3eb50-8bec-4b9c-8778-59406171312a\t{\"ver\":2,\"n\":3}\r\n"
            + "no-tab-here {\"ver\":2,\"n\":4}\n"
        let (_, summary, store) = try importText(text)
        #expect(summary.pings == 3)
        #expect(summary.badLines == ["no_tab": 1])
        #expect(try store.rows("SELECT document_id, json_extract(payload, '$.n'), payload FROM pings ORDER BY line") == [
            ["0fdac909-d2ec-454c-b625-261a3e5d5c9b", "1", #"{"ver":2,"n":1}"#],
            ["abc", "2", #"{"ver":2,"n":2}"#],
            ["6fd3eb50-8bec-4b9c-8778-59406171312a", "3", #"{"ver":2,"n":3}"#],
        ])
        let rows = try errors(store)
        #expect(rows.count == 1 && rows[0][0] == "4" && rows[0][1] == "no_tab")
    }

    @Test("BR-10: NaN and Infinity are not JSON")
    func nanIsInvalidJSON() throws {
        let text = #"id-1\#t{"ver":2,"simpleMeasurements":{"firstPaint":NaN,"uptime":Infinity}}"# + "\n" + line("id-2", #"{"ver":2}"#)
        let (_, summary, store) = try importText(text)
        #expect(summary.pings == 1)
        #expect(summary.badLines == ["invalid_json": 1])
        let rows = try errors(store)
        #expect(rows.first?[1] == "invalid_json")
        #expect(rows.first?[2].contains("invalid token NaN at byte 44 of the JSON") == true)
    }

    @Test("BR-11: integers beyond 2^31, 2^53 and 2^63 stay exact or are rejected")
    func bigIntegers() throws {
        func gc(_ b0: String, _ sum: String) -> String {
            #"{"ver":2,"histograms":{"GC_MS":["# + b0 + String(repeating: ",0", count: 49) + ",\(sum),-1,-1,-1,-1]}}"
        }
        let text = line("id-1", gc("3000000000", "9007199254740993")) + line("id-2", gc("1", "1"))
            + line("id-3", gc("1", "18446744073709551616")) + line("id-4", gc("1", "9223372036854775808"))
        let (_, summary, store) = try importText(text)
        #expect(summary.pings == 2)
        #expect(summary.badLines == ["invalid_json": 2])
        #expect(try store.rows("""
            SELECT sum(json_extract(payload, '$.histograms.GC_MS[0]')), sum(json_extract(payload, '$.histograms.GC_MS[50]')) FROM pings
            """) == [["3000000001", "9007199254740994"]])
        let rows = try errors(store)
        #expect(rows.map { $0[0] } == ["3", "4"])
        #expect(rows.allSatisfy { $0[2].contains("integer out of int64 range") })
    }

    @Test("BR-12: duplicate keys: the first occurrence wins everywhere, counted as a warning")
    func duplicateKeys() throws {
        let text = line("id-1", #"{"ver":2,"info":{"reason":"saved-session","OS":"WINNT","OS":"Darwin"}}"#)
        let (_, summary, store) = try importText(text)
        #expect(summary.pings == 1)
        #expect(!summary.hadFailures)
        #expect(summary.warnings == ["duplicate_key": 1])
        #expect(try store.rows("SELECT os, json_extract(payload, '$.info.OS'), payload FROM pings") == [
            ["WINNT", "WINNT", #"{"ver":2,"info":{"reason":"saved-session","OS":"WINNT","OS":"Darwin"}}"#],
        ])
        #expect(try store.rows("SELECT severity, reason, document_id FROM import_errors") == [["warning", "duplicate_key", "id-1"]])
    }

    @Test("BR-13: invalid UTF-8 is a bad line; valid multi-byte text is kept byte for byte")
    func invalidUTF8() throws {
        var bytes = Array("id-1\t{\"ver\":2,\"info\":{\"locale\":\"fr\",\"note\":\"Wikip\u{e9}dia\"}}\n".utf8)
        bytes += Array("id-2\t{\"ver\":2,\"info\":{\"adapterDescription\":\"GeForce ".utf8) + [0xFF, 0xFE] + Array("\"}}\n".utf8)
        bytes += Array(line("id-3", #"{"ver":2}"#).utf8)
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(), bytes: bytes, compress: false)
        let summary = try fixture.importAll()
        #expect(summary.pings == 2)
        #expect(summary.badLines == ["invalid_utf8": 1])
        let store = try fixture.openStore()
        #expect(try store.rows("SELECT hex(json_extract(payload, '$.info.note')) FROM pings WHERE document_id = 'id-1'") == [["57696B6970C3A9646961"]])
        #expect(try store.rows("SELECT line, reason FROM import_errors") == [["2", "invalid_utf8"]])
    }

    @Test("BR-15: hostile nesting is rejected without a crash")
    func deepNesting() throws {
        let text = "id-1\t" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n"
            + "id-x\t" + String(repeating: "{\"a\":", count: 2000) + "1" + String(repeating: "}", count: 2000) + "\n"
            + line("id-2", #"{"ver":2}"#)
        let (_, summary, store) = try importText(text)
        #expect(summary.pings == 1)
        #expect(summary.badLines == ["invalid_json": 2])
        let rows = try errors(store)
        #expect(rows.allSatisfy { $0[2].contains("nesting deeper than 1024") })
        #expect(try store.rows("SELECT document_id FROM pings") == [["id-2"]])
    }

    @Test("BR-16: trailing garbage after a valid object is never accepted")
    func trailingGarbage() throws {
        let text = line("id-1", #"{"a":1}"#) + line("id-2", #"{"a":2}TRAILER"#) + line("id-3", #"{"a":3}"#)
        let (_, summary, store) = try importText(text)
        #expect(summary.pings == 2)
        let rows = try errors(store)
        #expect(rows.count == 1 && rows[0][0] == "2")
        #expect(rows[0][2].contains("trailing characters at byte 7 of the JSON"))
    }

    @Test("Top-level JSON that is not an object is a bad line")
    func nonObjectPayload() throws {
        let text = line("id-1", "[1,2]") + line("id-2", "\"text\"") + line("id-3", "{}")
        let (_, summary, _) = try importText(text)
        #expect(summary.pings == 1)
        #expect(summary.badLines == ["invalid_json": 2])
    }

    @Test("BR-20: keyed histograms with dotted and spaced keys, null maps, child payloads stay reachable")
    func keyedHistograms() throws {
        let payload = #"{"ver":4,"payload":{"keyedHistograms":{"ADDON_SHIM_USAGE":{"foxyproxy@eric.h.jung":{"bucket_count":16,"histogram_type":1,"range":[1,15],"sum":258,"values":{"0":0,"1":234,"6":4,"7":0}},"Shockwave Flash 20.0":{"bucket_count":16,"histogram_type":1,"range":[1,15],"sum":1,"values":{"1":1}}},"SEARCH_COUNTS":null},"childPayloads":[{"keyedHistograms":{"ADDON_SHIM_USAGE":{"only.in.child":{"sum":3,"values":{"1":3}}}}}]}}"#
        let (_, summary, store) = try importText(line("id-1", payload))
        #expect(summary.pings == 1)
        #expect(try store.rows("""
            SELECT json_extract(payload, '$.payload.keyedHistograms.ADDON_SHIM_USAGE."foxyproxy@eric.h.jung".sum'),
                   json_extract(payload, '$.payload.keyedHistograms.ADDON_SHIM_USAGE."Shockwave Flash 20.0".values.1'),
                   json_type(payload, '$.payload.keyedHistograms.SEARCH_COUNTS'),
                   json_extract(payload, '$.payload.childPayloads[0].keyedHistograms.ADDON_SHIM_USAGE."only.in.child".sum')
            FROM pings
            """) == [["258", "1", "null", "3"]])
    }

    @Test("BR-25: duplicate document ids are kept, counted, and the dedup view keeps the earliest")
    func duplicates() throws {
        let fixture = LayoutFixture()
        let body = #"{"ver":2,"info":{"reason":"saved-session"}}"#
        // Same id three times: two on one day (same file, lines 1 and 3), once on a later day.
        try fixture.write(LayoutFixture.layoutPath(date: "20131029", id: "a"), text: line("dup", body) + line("other", body) + line("dup", body))
        try fixture.write(LayoutFixture.layoutPath(date: "20131030", id: "b"), text: line("dup", body))
        let summary = try fixture.importAll()
        #expect(summary.pings == 4)
        let store = try fixture.openStore()
        #expect(try store.int("SELECT count(*) FROM pings") == 4)
        #expect(try store.rows("SELECT document_id, copies FROM duplicate_documents") == [["dup", "3"]])
        #expect(try store.rows("SELECT document_id, submission_date, line FROM pings_dedup ORDER BY document_id") == [
            ["dup", "20131029", "1"], ["other", "20131029", "2"],
        ])
    }

    @Test("issue 17: one document id under idle-daily and saved-session is two pings, not a duplicate; old views are re-created")
    func dedupKeysOnDocumentIDAndPingType() throws {
        let fixture = LayoutFixture()
        let body = #"{"ver":2}"#
        try fixture.write(LayoutFixture.layoutPath(reason: "idle_daily", id: "a"), text: line("shared", body))
        try fixture.write(LayoutFixture.layoutPath(reason: "saved_session", id: "b"), text: line("shared", body) + line("retried", body))
        try fixture.write(LayoutFixture.layoutPath(reason: "saved_session", date: "20131030", id: "c"), text: line("retried", body))
        #expect(try fixture.importAll().pings == 4)
        let store = try fixture.openStore()
        #expect(try store.rows("SELECT document_id, reason FROM pings_dedup ORDER BY 1, 2") == [
            ["retried", "saved_session"], ["shared", "idle_daily"], ["shared", "saved_session"],
        ])
        #expect(try store.rows("SELECT document_id, ping_type, copies FROM duplicate_documents") == [["retried", "saved_session", "2"]])
        // A store made with the old views (dedup by document id alone) gets the new ones on a writable open.
        try store.query("DROP VIEW duplicate_documents; CREATE VIEW duplicate_documents AS SELECT document_id, count(*) AS copies FROM pings GROUP BY document_id HAVING count(*) > 1")
        let reopened = try fixture.openStore()
        #expect(try reopened.rows("SELECT document_id, ping_type, copies FROM duplicate_documents") == [["retried", "saved_session", "2"]])
    }

    @Test("BR-26: re-import with nothing new, a touched file, then a new file")
    func incrementalReimport() throws {
        let fixture = LayoutFixture()
        let first = try fixture.write(LayoutFixture.layoutPath(id: "f1"), text: line("id-1", #"{"ver":2}"#) + line("id-2", #"{"ver":2}"#))
        #expect(try fixture.importAll().pings == 2)

        let second = try fixture.importAll()
        #expect(second.pings == 0 && second.filesUnchanged == 1 && second.filesImported == 0 && !second.hadFailures)

        // touch: same bytes, new mtime → the content hash matches, nothing is re-imported.
        let later = Date().addingTimeInterval(60)
        try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: first)
        let touched = try fixture.importAll()
        #expect(touched.pings == 0 && touched.filesUnchanged == 1)

        try fixture.write(LayoutFixture.layoutPath(id: "f2"), text: line("id-3", #"{"ver":2}"#))
        let added = try fixture.importAll()
        #expect(added.pings == 1 && added.filesImported == 1 && added.filesUnchanged == 1)
        #expect(try fixture.openStore().int("SELECT count(*) FROM pings") == 3)
    }

    @Test("A changed file replaces its earlier records")
    func changedFileIsReplaced() throws {
        let fixture = LayoutFixture()
        let path = try fixture.write(LayoutFixture.layoutPath(id: "f1"), text: line("id-1", #"{"v":1}"#) + line("bad", "{"))
        _ = try fixture.importAll()
        try fixture.write(LayoutFixture.layoutPath(id: "f1"), text: line("id-1", #"{"v":2}"#) + line("id-2", #"{"v":2}"#) + line("id-3", #"{"v":2}"#))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(120)], ofItemAtPath: path)
        let summary = try fixture.importAll()
        #expect(summary.filesReplaced == 1 && summary.pings == 3)
        let store = try fixture.openStore()
        #expect(try store.rows("SELECT document_id, json_extract(payload, '$.v') FROM pings ORDER BY document_id") == [
            ["id-1", "2"], ["id-2", "2"], ["id-3", "2"],
        ])
        #expect(try store.int("SELECT count(*) FROM import_errors") == 0)   // the old bad line went with the old version
        #expect(try store.rows("SELECT record_count, bad_line_count FROM source_files") == [["3", "0"]])
    }
}
