import Foundation
import Testing
import TelemetryStore
import TelemetryTestSupport

/// The histogram SQL functions of docs/sql.md.
struct HistogramSQLTests {
    private static func summed(_ text: String) throws -> [NSNumber] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [NSNumber])
    }

    @Test func sampleTotalsOverallAndByChannelMatchExpectedJSON() throws {
        let expectedData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.repoPath("datasets/sample/EXPECTED.json")))
        let expected = try #require(try JSONSerialization.jsonObject(with: expectedData) as? [String: Any])
        let totals = try #require(expected["histogram_totals"] as? [String: Any])
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])

        func check(_ row: [String], _ want: [String: Any], _ label: String) throws {
            let array = try Self.summed(row[1])
            let wantBuckets = try #require(want["bucket_sums"] as? [NSNumber]).map(\.int64Value)
            #expect(array.count == wantBuckets.count + 5, "\(label)")
            #expect(array.prefix(wantBuckets.count).map(\.int64Value) == wantBuckets, "\(label)")
            #expect(array[wantBuckets.count].int64Value == (want["sum"] as? NSNumber)?.int64Value, "\(label)")
            #expect(Int(row[2]) == (want["pings"] as? NSNumber)?.intValue, "\(label)")
        }
        let all = try store.rows("SELECT 'all', histogram_sum(ping_id, 'SAMPLE_GC_MS'), histogram_count(ping_id, 'SAMPLE_GC_MS') FROM pings")
        try check(all[0], totals, "overall")
        let byChannel = try #require(totals["by_channel"] as? [String: [String: Any]])
        let rows = try store.rows("""
            SELECT appUpdateChannel, histogram_sum(ping_id, 'SAMPLE_GC_MS'), histogram_count(ping_id, 'SAMPLE_GC_MS')
            FROM pings GROUP BY 1 ORDER BY 1
            """)
        #expect(Set(rows.filter { $0[2] != "0" }.map { $0[0] }) == Set(byChannel.keys))
        for row in rows where row[2] != "0" { try check(row, try #require(byChannel[row[0]]), row[0]) }
        // Under a WHERE on a dimension: the same as that channel's group.
        let beta = try store.rows("""
            SELECT 'beta', histogram_sum(ping_id, 'SAMPLE_GC_MS'), histogram_count(ping_id, 'SAMPLE_GC_MS')
            FROM pings WHERE appUpdateChannel = 'beta'
            """)
        try check(beta[0], try #require(byChannel["beta"]), "WHERE beta")
        // Mean from the summed statistics.
        let mean = try #require(Double(try store.rows("SELECT histogram_mean(histogram_sum(ping_id, 'SAMPLE_GC_MS')) FROM pings")[0][0]))
        let wantBuckets = try #require(totals["bucket_sums"] as? [NSNumber]).map(\.doubleValue)
        #expect(abs(mean - (totals["sum"] as! NSNumber).doubleValue / wantBuckets.reduce(0, +)) < 1e-9)
        // A histogram no ping of the store has: an error naming it (issue 11 item 8; was NULL and 0).
        #expect { _ = try store.query("SELECT histogram_count(ping_id, 'NOPE') FROM pings") } throws: { error in
            "\(error)".contains("histogram_count: no histogram named NOPE in the store")
        }
    }

    /// Rows reaching the aggregates in any order (an index led by other columns, a sorted subquery) give the
    /// same sums as rows in `ping_id` order: the lookup falls back from the ascending hint to a direct table.
    @Test func rowOrderDoesNotChangeTheSums() throws {
        let fixture = LayoutFixture()
        let store = try fixture.openStore()
        _ = try Importer(store: store, options: .init(jobs: 2)).run(roots: [Fixtures.repoPath("datasets/sample/storage")])
        let ordered = try store.rows("""
            SELECT appUpdateChannel, histogram_sum(ping_id, 'SAMPLE_GC_MS'), histogram_count(ping_id, 'SAMPLE_GC_MS')
            FROM (SELECT * FROM pings ORDER BY ping_id) GROUP BY 1 ORDER BY 1
            """)
        for shuffled in ["ORDER BY document_id", "ORDER BY ping_id DESC", "ORDER BY (ping_id * 7919) % 363"] {
            let rows = try store.rows("""
                SELECT appUpdateChannel, histogram_sum(ping_id, 'SAMPLE_GC_MS'), histogram_count(ping_id, 'SAMPLE_GC_MS')
                FROM (SELECT * FROM pings \(shuffled)) GROUP BY 1 ORDER BY 1
                """)
            // Bucket counts and integer statistics exactly; the double statistics (log sums) are floating-point
            // sums, equal up to rounding in another order.
            #expect(rows.map { [$0[0], $0[2]] } == ordered.map { [$0[0], $0[2]] }, "\(shuffled)")
            for (row, want) in zip(rows, ordered) {
                let got = row[1].dropFirst().dropLast().split(separator: ","), expected = want[1].dropFirst().dropLast().split(separator: ",")
                #expect(got.count == expected.count)
                for (a, b) in zip(got, expected) {
                    if let x = Int64(a), let y = Int64(b) {
                        #expect(x == y, "\(shuffled) \(row[0])")
                    } else {
                        let x = try #require(Double(a)), y = try #require(Double(b))
                        #expect(abs(x - y) <= 1e-12 * max(1, abs(y)), "\(shuffled) \(row[0])")
                    }
                }
            }
        }
        #expect(ordered.count >= 4)
    }

    /// BR-11: sums beyond 2^53 stay exact; a count beyond int64 is a bad line, never rounded.
    @Test func br11SumsAreExact() throws {
        func gc(_ b0: String, _ s: String) -> String { #"{"ver":2,"histograms":{"GC_MS":["# + b0 + String(repeating: ",0", count: 49) + ",\(s),-1,-1,-1,-1]}}" }
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(), text: line("id-1", gc("3000000000", "9007199254740993"))
                          + line("id-2", gc("1", "1")) + line("id-3", gc("1", "18446744073709551616")))
        let summary = try fixture.importAll()
        #expect(summary.pings == 2)
        #expect(summary.badLines["invalid_json"] == 1)
        let store = try fixture.openStore()
        let text = try store.rows("SELECT histogram_sum(ping_id, 'GC_MS') FROM pings")[0][0]
        #expect(text == "[3000000001" + String(repeating: ",0", count: 49) + ",9007199254740994,-1,-1,-1,-1]")
        let column = try #require(try HistogramColumns.open(store: store).column(named: "GC_MS").first)
        var swiftSum: Int64 = 0
        let rows = try column.rows()
        for row in 0..<rows.count { if case let .integer(s) = rows.statistic(row: row, index: 0) { swiftSum += s } }
        #expect(swiftSum == 9007199254740994)
    }

    /// BR-21: two layouts of one name are never added position by position.
    @Test func br21MixedLayoutsErrorOrGroupByLayout() throws {
        let fixture = LayoutFixture()
        let a = #"{"ver":2,"histograms":{"FX_TAB_SWITCH_TOTAL_MS":["# + (0..<20).map { $0 == 9 ? "3" : $0 == 13 ? "1" : "0" }.joined(separator: ",") + ",40,-1,-1,-1,-1]}}"
        let b = #"{"ver":2,"histograms":{"FX_TAB_SWITCH_TOTAL_MS":["# + (0..<50).map { $0 == 5 ? "2" : $0 == 8 ? "1" : "0" }.joined(separator: ",") + ",17,-1,-1,-1,-1]}}"
        try fixture.write(LayoutFixture.layoutPath(), text: line("p1", a) + line("p2", b) + line("p3", a))
        _ = try fixture.importAll()
        let store = try fixture.openStore()
        #expect {
            _ = try store.query("SELECT histogram_sum(ping_id, 'FX_TAB_SWITCH_TOTAL_MS') FROM pings")
        } throws: { error in
            let text = "\(error)"
            return text.contains("20") && text.contains("50") && text.contains("several layouts")
        }
        let rows = try store.rows("""
            SELECT histogram_layout(ping_id, 'FX_TAB_SWITCH_TOTAL_MS') AS n,
                   histogram_sum(ping_id, 'FX_TAB_SWITCH_TOTAL_MS', histogram_layout(ping_id, 'FX_TAB_SWITCH_TOTAL_MS')),
                   histogram_count(ping_id, 'FX_TAB_SWITCH_TOTAL_MS')
            FROM pings GROUP BY n ORDER BY n
            """)
        #expect(rows.count == 2)
        #expect(rows[0][0] == "20" && rows[0][2] == "2")
        #expect(try Self.summed(rows[0][1]).map(\.int64Value) == (0..<20).map { $0 == 9 ? 6 : $0 == 13 ? 2 : 0 } + [80, -1, -1, -1, -1])
        #expect(rows[1][0] == "50" && rows[1][2] == "1")
        #expect(try Self.summed(rows[1][1]).map(\.int64Value) == (0..<50).map { $0 == 5 ? 2 : $0 == 8 ? 1 : 0 } + [17, -1, -1, -1, -1])
        #expect(try store.rows("SELECT histogram_count(ping_id, 'FX_TAB_SWITCH_TOTAL_MS') FROM pings") == [["3"]])
    }

    @Test func doubleStatisticsAndAbsentOnes() throws {
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(), text: line("a", #"{"ver":2,"histograms":{"H":[1,2,3,1.5,7,-1,4,4]}}"#)
                          + line("b", #"{"ver":2,"histograms":{"H":[1,0,1,2,0.25,-1,-1,4]}}"#))
        _ = try fixture.importAll()
        let store = try fixture.openStore()
        #expect(try store.rows("SELECT histogram_sum(ping_id, 'H') FROM pings") == [["[2,2,4,3.5,7.25,-1,-1,8]"]])
    }

    /// Issue 11 item 8: a misspelt histogram name was NULL / 0 with no warning; now every histogram_* function fails
    /// naming the closest names of the store (edit distance up to 3, case-insensitive).
    @Test func unknownHistogramNameIsAnErrorNamingTheClosest() throws {
        let fixture = LayoutFixture()
        try fixture.write(LayoutFixture.layoutPath(), text: line("a", #"{"ver":2,"histograms":{"GC_MS":[1,2,3,-1,-1,0,0],"GC_MAX_PAUSE_MS":[1,0,1,-1,-1,0,0],"CYCLE_COLLECTOR":[1,0,5,-1,-1,0,0]}}"#))
        _ = try fixture.importAll()
        let store = try fixture.openStore()
        for sql in ["SELECT histogram_sum(ping_id, 'GC_MSS') FROM pings", "SELECT histogram_sum(ping_id, 'GC_MSS', 2) FROM pings",
                    "SELECT histogram_count(ping_id, 'GC_MSS') FROM pings", "SELECT histogram_layout(ping_id, 'GC_MSS') FROM pings",
                    "SELECT histogram_summary(ping_id, 'GC_MSS', revision) FROM pings"] {
            #expect {
                _ = try store.query(sql)
            } throws: { error in
                "\(error)".contains("no histogram named GC_MSS in the store; closest: GC_MS") && !"\(error)".contains("CYCLE_COLLECTOR")
            }
        }
        #expect { _ = try store.query("SELECT histogram_sum(ping_id, 'gc_ms') FROM pings") } throws: { error in "\(error)".contains("closest: GC_MS") }
        #expect { _ = try store.query("SELECT histogram_sum(ping_id, 'NOTHING_LIKE_IT') FROM pings") } throws: { error in
            "\(error)".contains("no histogram named NOTHING_LIKE_IT in the store (no name within 3 edits among its 3 histogram names)")
        }
        // A known name on a group with no such ping stays NULL / 0 (not a typo).
        #expect(try store.rows("SELECT histogram_sum(ping_id, 'GC_MS'), histogram_count(ping_id, 'GC_MS') FROM pings WHERE ping_id < 0") == [["NULL", "0"]])
        #expect(HistogramNames.closest(to: "GC_MS", in: ["GC_MS_X", "GC_MAX_PAUSE_MS", "GCMS", "G"]) == ["GCMS", "GC_MS_X"])
    }
}
