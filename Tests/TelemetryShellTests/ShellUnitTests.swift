import Foundation
import Testing
import TelemetryCore
import TelemetryOperations
@testable import TelemetryShell
import TelemetryStore
import TelemetryTestSupport

/// The dot-command table, the tokenizer, completion, the filter predicate, parameter values, error positions and
/// the terminal-width table, in process (no terminal, no subprocess).
struct DotCommandTableTests {
    @Test("the table has exactly the commands of STYLE.md §1")
    func commandSet() {
        #expect(DotCommand.all.map(\.name) == ["bail", "check", "dims", "filter", "headers", "help", "histograms", "import", "job", "mode", "once",
                                               "open", "output", "param", "quit", "run", "schema", "tables", "timer"])
        #expect(DotCommand.all.allSatisfy { $0.usage.hasPrefix("." + $0.name) && !$0.summary.isEmpty })
    }

    struct LookupVector: Sendable, CustomTestStringConvertible {
        var typed: String
        var expected: String
        var testDescription: String { ".\(typed) → \(expected)" }
    }

    static let lookups: [LookupVector] = [
        .init(typed: "mode", expected: "found mode"),
        .init(typed: "MODE", expected: "found mode"),
        .init(typed: "hea", expected: "found headers"),
        .init(typed: "q", expected: "found quit"),
        .init(typed: "h", expected: "ambiguous headers,help,histograms"),
        .init(typed: "mdoe", expected: "unknown mode"),
        .init(typed: "tabels", expected: "unknown tables"),
        .init(typed: "exit", expected: "unknown quit"),
        .init(typed: "job", expected: "found job"),
    ]

    @Test(arguments: lookups)
    func lookup(_ vector: LookupVector) {
        let actual: String
        switch DotCommand.lookup(vector.typed) {
        case let .found(command): actual = "found \(command.name)"
        case let .ambiguous(names): actual = "ambiguous " + names.joined(separator: ",")
        case let .unknown(suggestion): actual = "unknown " + (suggestion ?? "-")
        }
        #expect(actual == vector.expected)
    }

    @Test("dot-command words: blanks separate, quotes group, doubled quotes escape")
    func tokenizer() {
        #expect(DotCommand.tokenize(".param set  name   'two words'") == [".param", "set", "name", "two words"])
        #expect(DotCommand.tokenize(#".param set x "'42'""#) == [".param", "set", "x", "'42'"])
        #expect(DotCommand.tokenize(".output 'it''s.txt'") == [".output", "it's.txt"])
        #expect(DotCommand.tokenize(".import 'unterminated path") == [".import", "unterminated path"])
        #expect(DotCommand.tokenize(".schema ''") == [".schema", ""])
    }

    @Test("parameter values: NULL, numbers, 'quoted' text, other text")
    func parameterValues() {
        #expect(QueryOperation.parameterValue("NULL") == .null)
        #expect(QueryOperation.parameterValue("42") == .integer(42))
        #expect(QueryOperation.parameterValue("-7") == .integer(-7))
        #expect(QueryOperation.parameterValue("2.5e3") == .real(2500))
        #expect(QueryOperation.parameterValue("'42'") == .text("42"))
        #expect(QueryOperation.parameterValue("'it''s'") == .text("it's"))
        #expect(QueryOperation.parameterValue("nightly") == .text("nightly"))
        #expect(QueryOperation.parameterValue("inf") == .text("inf"))
        #expect(QueryOperation.parameterValue("20131015") == .integer(20131015))
    }

    @Test("SQLText.isComplete: a ';' outside strings, identifiers, comments and trigger bodies")
    func completeness() {
        #expect(SQLText.isComplete("SELECT 1;"))
        #expect(SQLText.isComplete("SELECT 1;\n-- done\n"))
        #expect(!SQLText.isComplete("SELECT 1"))
        #expect(!SQLText.isComplete("SELECT ';"))
        #expect(!SQLText.isComplete("SELECT \"a;\" FROM t"))
        #expect(!SQLText.isComplete("SELECT 1 /* ; */"))
        #expect(!SQLText.isComplete("CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1;"))
        #expect(SQLText.isComplete("CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END;"))
    }
}

struct SessionInProcessTests {
    /// A session over the fixture's store whose output and errors are captured.
    static func session(_ fixture: ShellFixture, width: Int? = nil) throws -> (ShellSession, StringSink, StringSink) {
        let out = StringSink(terminalWidth: width), err = StringSink()
        let session = try ShellSession(storePath: fixture.store, interactive: false, output: out, errors: err, home: fixture.home)
        return (session, out, err)
    }

    @Test("on a terminal wide tables fit its width: cells cut with an ellipsis, numbers right-aligned; to a file nothing is cut")
    func widthFitting() throws {
        let fixture = try ShellFixture()
        var (session, out, _) = try Self.session(fixture, width: 60)
        let sql = "SELECT document_id, memsize, payload FROM pings WHERE document_id IN ('doc-1', 'doc-3') ORDER BY 1;\n"
        #expect(session.run(TextInput(sql)) == .endOfInput)
        let lines = out.take().split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines.allSatisfy { $0.count <= 60 }, "\(lines)")
        #expect(lines[0].hasPrefix("document_id  memsize  payload"))
        #expect(lines[2].hasPrefix("doc-1           4096  {\"ver\":2,") && lines[2].hasSuffix("…"))
        #expect(lines[3].hasPrefix("doc-3           2048  "))

        var (wide, file, _) = try Self.session(fixture, width: nil)
        _ = wide.run(TextInput(sql))
        #expect(file.text.contains(ShellFixture.payloads[0]))
        #expect(!file.text.contains("…"))
    }

    @Test("a statement's error position: line within the statement and a caret under the token")
    func errorContext() {
        let sql = "SELECT os,\n\tcount(*)\nFROM pings GROUP BY oss;\n"
        let offset = sql.utf8.count - "oss;\n".utf8.count
        let context = ShellSession.errorContext(sql: sql, offset: offset)
        #expect(context.lineIndex == 2)
        #expect(context.text == "  FROM pings GROUP BY oss;\n                      ^--- error here\n")
        let tabbed = ShellSession.errorContext(sql: sql, offset: sql.utf8.count - "(*)\nFROM pings GROUP BY oss;\n".utf8.count)
        #expect(tabbed.text == "  \tcount(*)\n  \t     ^--- error here\n")
    }

    @Test("Store.QueryError carries SQLite's offset into the whole text, for every statement of it")
    func queryErrorOffsets() throws {
        let fixture = try ShellFixture()
        let store = try Store(path: fixture.store, create: false)
        let sql = "SELECT 1;\nSELECT nope FROM pings;"
        var thrown: Store.QueryError?
        do {
            try store.forEachStatement(sql, parameters: [:]) { statement in while try statement.step() {} }
        } catch let error as Store.QueryError {
            thrown = error
        }
        let error = try #require(thrown)
        #expect(error.message == "no such column: nope")
        #expect(error.offset == sql.utf8.count - "nope FROM pings;".utf8.count)
        #expect(!error.isInterrupt)
    }

    @Test("a numeric, version or digits range in a filter lists the store's values that pass, as the importer's rule reads them")
    func filterPredicate() throws {
        let filter = DimensionSchema(version: 1, dimensions: [
            Dimension(fieldName: "reason", allowedValues: .list(["saved-session", "idle-daily"])),
            Dimension(fieldName: "appName", allowedValues: .exact("Firefox")),
            Dimension(fieldName: "appUpdateChannel", allowedValues: .any),
            Dimension(fieldName: "appVersion", allowedValues: .range(min: .number(25), max: .number(26))),
            Dimension(fieldName: "appBuildID", allowedValues: .range(min: .string("2013"), max: nil)),
            Dimension(fieldName: "submission_date", allowedValues: .list([])),
        ])
        let columns = DimensionSchema.seed.fieldNames
        let predicate = SessionFilter.predicate(filter: filter, columns: columns) { column in
            column == "appVersion" ? ["24.0", "25.0", "26.0", "27.0a1", "it's"]
                : column == "appBuildID" ? ["2012123103", "20131029030201", "UNKNOWN"] : []   // build ids: fixed-width digits
        }
        #expect(predicate == #""reason" IN ('saved_session', 'idle_daily') AND "appName" = 'Firefox' AND "appVersion" IN ('25.0', '26.0') AND "appBuildID" IN ('20131029030201') AND 0"#)
        let all = DimensionSchema(version: 1, dimensions: columns.map { Dimension(fieldName: $0, allowedValues: .any) })
        #expect(SessionFilter.predicate(filter: all, columns: columns) { _ in [] } == "1")
    }

    @Test("comment-only lines are skipped; an open block comment gathers lines into the statement")
    func comments() throws {
        #expect(ShellSession.isBlankOrComment("  -- note"))
        #expect(ShellSession.isBlankOrComment("/* a */ -- b"))
        #expect(!ShellSession.isBlankOrComment("/* header"))
        #expect(!ShellSession.isBlankOrComment("SELECT 1; -- x"))
        let fixture = try ShellFixture()
        var (session, out, err) = try Self.session(fixture)
        _ = session.run(TextInput("-- a note\n/* a header\n   over two lines */\nSELECT 1 AS one;\n\n/* closed */\nSELECT 2 AS two;\n"))
        #expect(out.text == "one\n---\n  1\ntwo\n---\n  2\n")
        #expect(err.text == "")
    }

    @Test("settings persist across lines and .once applies to one command only")
    func settingsAndOnce() throws {
        let fixture = try ShellFixture()
        var (session, out, err) = try Self.session(fixture)
        let end = session.run(TextInput("""
            .mode csv
            .headers off
            .bail on
            .once '\(fixture.directory.path)/once.txt'
            SELECT 'to file';
            SELECT 'to output';
            """, name: "test"))
        #expect(end == .endOfInput)
        #expect(session.settings.mode == .csv && !session.settings.headers && session.settings.bail)
        #expect(out.text == "to output\n")
        #expect(err.text == "")
        #expect(try String(contentsOfFile: fixture.directory.path + "/once.txt", encoding: .utf8) == "to file\n")
    }

    @Test("interrupts are not errors: an interrupted query ends a script as .interrupted")
    func interruptedStatement() throws {
        let fixture = try ShellFixture()
        var (session, _, err) = try Self.session(fixture)
        // SQLITE_INTERRUPT from a statement, as Ctrl-C makes it, without signals: a progress-free way is
        // interrupting the connection from another thread while a long query runs.
        guard let store = session.store else { Issue.record("no store"); return }
        // Ctrl-C without a signal: interrupt the connection from another thread until the session returns (an
        // interrupt that comes before the statement starts is forgotten by SQLite, hence the repetition).
        let target = UncheckedBox(store.connection)
        let done = CancelFlag()
        Thread {
            while !done.isRaised {
                Thread.sleep(forTimeInterval: 0.1)
                target.value.interrupt()
            }
        }.start()
        let end = session.run(TextInput("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c;\nSELECT 'not reached';\n"))
        done.raise()
        #expect(end == .interrupted)
        #expect(session.errorCount == 0)
        #expect(err.text == "")
    }
}

/// Sends a non-Sendable value to another thread in a test (the value is only used there).
final class UncheckedBox<T>: @unchecked Sendable {   // handed over once; the receiving thread alone uses it
    let value: T
    init(_ value: T) { self.value = value }
}

struct CompletionTests {
    static func completer(_ fixture: ShellFixture) throws -> (Completer, ShellSession) {
        var session = try ShellSession(storePath: fixture.store, interactive: false, output: StringSink(), errors: StringSink(),
                                       home: fixture.home)
        session.setParameter("day", to: .integer(20131030))
        return (session.makeCompleter(), session)
    }

    struct Vector: Sendable, CustomTestStringConvertible {
        var pending = ""
        var line: String
        var word: String
        var candidates: [String]
        var testDescription: String { "\(pending.isEmpty ? "" : "…") \(line)⇥" }
    }

    static let vectors: [Vector] = [
        .init(line: ".mo", word: ".mo", candidates: [".mode"]),
        .init(line: ".h", word: ".h", candidates: [".headers", ".help", ".histograms"]),
        .init(line: ".mode m", word: "m", candidates: ["markdown"]),
        .init(line: ".headers ", word: "", candidates: ["off", "on"]),
        .init(line: ".schema pings", word: "pings", candidates: ["pings", "pings_dedup"]),
        .init(line: ".histograms G", word: "G", candidates: ["GC_MS"]),
        .init(line: ".dims app", word: "app", candidates: ["appBuildID", "appName", "appUpdateChannel", "appVersion"]),
        .init(line: ".param unset d", word: "d", candidates: ["day"]),
        .init(line: ".filter cl", word: "cl", candidates: ["clear"]),
        .init(line: ".import more --f", word: "--f", candidates: ["--filter"]),
        .init(line: ".help ti", word: "ti", candidates: ["timer"]),
        .init(line: "SELECT count(*) FROM pi", word: "pi", candidates: ["pings", "pings_dedup"]),
        .init(line: "SELECT * FROM ", word: "", candidates: ["duplicate_documents", "import_errors", "pings", "pings_dedup", "source_files", "store_meta"]),
        .init(line: "sel", word: "sel", candidates: ["select"]),
        .init(line: "SELECT appup", word: "appup", candidates: ["appUpdateChannel"]),
        .init(line: "SELECT json_extr", word: "json_extr", candidates: ["json_extract"]),
        .init(pending: "SELECT count(*)\n", line: "FROM pings WHERE appUpdateChannel = 'nig", word: "nig", candidates: ["nightly"]),
        .init(line: "SELECT 1 FROM pings WHERE os = W", word: "W", candidates: ["'WINNT'"]),
        .init(line: "SELECT 1 FROM pings WHERE reason IN ('idle_daily', 'sa", word: "sa", candidates: ["saved_session"]),
        .init(line: "SELECT json_extract(payload, '$.histograms.GC", word: "GC", candidates: ["GC_MS"]),
        .init(line: "SELECT json_extract(payload, '$.keyedHistograms.A", word: "A", candidates: ["ADDON_SHIM"]),
        .init(line: "SELECT json_extract(payload, '$.info.O", word: "", candidates: []),
        .init(line: "SELECT 'T", word: "T", candidates: ["TABS_OPEN"]),
        .init(line: "SELECT 1 -- pi", word: "", candidates: []),
    ]

    @Test(arguments: vectors)
    func completes(_ vector: Vector) throws {
        let fixture = try ShellFixture()
        let (completer, _) = try Self.completer(fixture)
        let completion = completer.complete(pending: vector.pending, line: vector.line)
        #expect(completion.word == vector.word)
        #expect(completion.candidates.map(\.text) == vector.candidates)
    }

    @Test("one candidate inserts its suffix; several insert their common prefix, or nothing")
    func insertion() {
        #expect(Completion(word: "pi", candidates: [.init("pings")]).insertion == "pings ")
        #expect(Completion(word: "GC", candidates: [.init("GC_MS", suffix: "'")]).insertion == "GC_MS'")
        #expect(Completion(word: "p", candidates: [.init("pings"), .init("pings_dedup")]).insertion == "pings")
        #expect(Completion(word: "pings", candidates: [.init("pings"), .init("pings_dedup")]).insertion == nil)
        #expect(Completion(word: "x", candidates: []).insertion == nil)
    }

    @Test("file paths after .open, .import, .run, .output, .once and .filter; directories end in /; ~ is $HOME")
    func filePaths() throws {
        let fixture = try ShellFixture()
        try fixture.directory.write("home/queries/weekly.sql", text: "SELECT 1;\n")
        try fixture.directory.write("home/.hidden.sql", text: "")
        try fixture.directory.write("paths/stats/a.txt", text: "")
        try fixture.directory.write("paths/store.json", text: "")
        try fixture.directory.write("paths/other.json", text: "")
        let (completer, _) = try Self.completer(fixture)
        let paths = fixture.directory.path + "/paths"
        for command in [".open", ".import", ".run", ".output", ".once", ".filter"] {
            let completion = completer.complete(pending: "", line: "\(command) \(paths)/st")
            #expect(completion.candidates.map(\.text) == ["\(paths)/stats", "\(paths)/store.json"], "\(command)")
            #expect(completion.candidates.map(\.suffix) == ["/", " "], "\(command)")
        }
        #expect(completer.complete(pending: "", line: ".run ~/q").candidates == [.init("~/queries", suffix: "/")])
        #expect(completer.complete(pending: "", line: ".run ~/queries/").candidates == [.init("~/queries/weekly.sql", suffix: " ")])
        #expect(completer.complete(pending: "", line: ".run ~/").candidates.map(\.text) == ["~/queries"])
        #expect(completer.complete(pending: "", line: ".run ~/.h").candidates.map(\.text) == ["~/.hidden.sql"])
        #expect(completer.complete(pending: "", line: ".tables x").candidates.isEmpty)
    }

    @Test("histogram names come from a bounded sample and are cached until invalidated")
    func histogramSample() throws {
        let fixture = try ShellFixture()
        let store = try Store(path: fixture.store, create: false)
        let catalog = Catalog(store: store)
        let sample = try catalog.histograms()
        #expect(sample.isComplete && sample.sampledPings == 5)
        #expect(sample.histograms == [
            .init(name: "ADDON_SHIM", keyed: true, pings: 1), .init(name: "GC_MS", keyed: false, pings: 3),
            .init(name: "PAGE_LOAD_MS", keyed: false, pings: 1), .init(name: "TABS_OPEN", keyed: false, pings: 2),
        ])
        try store.connection.execute("DELETE FROM pings WHERE document_id = 'doc-3'")
        #expect(try catalog.histograms() == sample)   // cached
        catalog.invalidate()
        #expect(try catalog.histograms().histograms.map(\.name) == ["ADDON_SHIM", "GC_MS", "TABS_OPEN"])
    }
}
