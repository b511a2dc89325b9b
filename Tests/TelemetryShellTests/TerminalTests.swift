import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
import TelemetryTestSupport

/// A terminal driven through tmux: its own server socket (so neither other tmux users nor other tests interfere),
/// no user configuration, 120 × 30. Text goes in with `send-keys -l`, keys separately; the screen is read with
/// `capture-pane -p`. Every wait polls the screen until a condition holds or a generous timeout passes (the
/// machine may be busy).
final class TmuxTerminal {
    static let timeout: TimeInterval = 45
    static let tmux: String? = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let socket = "telemetry-shell-test-\(getpid())-\(UUID().uuidString.prefix(8))"
    let name = "repl"

    /// Starts `command` (a shell command line) in a new session; the pane prints `EXITED <status>` when it ends.
    init(_ command: String) throws {
        _ = try tmux(["-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "120", "-y", "30",
                      "\(command); echo EXITED $?; sleep 600"])
    }

    deinit { _ = try? tmux(["kill-server"]) }

    /// Runs a tmux client (`runProcess`: its `ChildProcess` waits for the client's own pid, so the tmux server
    /// it leaves behind cannot hold the wait up, and the server starts with no signal blocked).
    @discardableResult
    func tmux(_ arguments: [String]) throws -> ProcessResult {
        guard let tmux = Self.tmux else { throw TerminalTestError.noTmux }
        return try runProcess(tmux, ["-L", socket] + arguments)
    }

    /// Types `text` literally. A `;` ending a tmux argument separates tmux commands, so it is sent as `\;`.
    func type(_ text: String) throws {
        let escaped = text.hasSuffix(";") ? String(text.dropLast()) + "\\;" : text
        try tmux(["send-keys", "-t", name, "-l", escaped])
    }

    /// Presses keys by tmux name: `Tab`, `Enter`, `Up`, `C-c`, `C-d`, `C-u`.
    func press(_ keys: String...) throws {
        for key in keys { try tmux(["send-keys", "-t", name, key]) }
    }

    /// The visible screen, one string per row, trailing blanks removed.
    func screen() throws -> [String] {
        try tmux(["capture-pane", "-t", name, "-p"]).stdout.components(separatedBy: "\n").map {
            var row = $0
            while row.last == " " { row.removeLast() }
            return row
        }
    }

    /// Waits until `condition` holds for the screen; records an issue with the screen when it never does.
    @discardableResult
    func waitUntil(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: ([String]) -> Bool) throws -> [String] {
        let deadline = Date().addingTimeInterval(Self.timeout)
        var rows: [String] = []
        while Date() < deadline {
            rows = try screen()
            if condition(rows) { return rows }
            Thread.sleep(forTimeInterval: 0.2)
        }
        Issue.record("timed out waiting for \(what); screen:\n\(rows.joined(separator: "\n"))", sourceLocation: sourceLocation)
        throw TerminalTestError.timedOut(what)
    }

    /// Waits until some row contains `text`.
    @discardableResult
    func waitFor(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        try waitUntil("\"\(text)\"", sourceLocation: sourceLocation) { rows in rows.contains { $0.contains(text) } }
    }

    /// Waits until the last non-empty row is exactly `row` (e.g. a fresh prompt).
    @discardableResult
    func waitForLastRow(_ row: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        try waitUntil("last row \"\(row)\"", sourceLocation: sourceLocation) { rows in rows.last { !$0.isEmpty } == row }
    }
}

enum TerminalTestError: Error {
    case noTmux
    case cannotWrite(String)
    case timedOut(String)
}

/// The REPL on a real terminal (tmux): typing, completion, multi-line statements, history across sessions,
/// Ctrl-C during a query and an import, and the ways out. `HOME` is a temporary directory in every test.
@Suite(.serialized)
struct TerminalTests {
    static func command(_ fixture: ShellFixture, store: String? = nil) -> String {
        "cd '\(fixture.directory.path)' && env HOME='\(fixture.home)' TELEMETRY_STORE= TERM=xterm '\(Fixtures.telemetryExecutable)' repl --store '\(store ?? fixture.store)'"
    }

    @Test("typing, Tab completion, a multi-line statement, wide results cut to the width, Ctrl-D")
    func typingAndCompletion() throws {
        let fixture = try ShellFixture()
        try fixture.directory.write("home/script.sql", text: "SELECT 'from the script' AS origin;\n")
        let terminal = try TmuxTerminal(Self.command(fixture))
        try terminal.waitForLastRow("telemetry>")
        #expect(try terminal.screen().first?.hasPrefix("telemetry 0.1.0 · store ") == true)

        // A dot-command, then its argument.
        try terminal.type(".mo")
        try terminal.press("Tab")
        try terminal.waitForLastRow("telemetry> .mode")
        try terminal.type("cs")
        try terminal.press("Tab")
        try terminal.waitForLastRow("telemetry> .mode csv")
        try terminal.press("Enter")
        try terminal.waitForLastRow("telemetry>")

        // A statement over two lines: table name, then a dimension value, completed.
        try terminal.type("SELECT os, count(*) AS n FROM pi")
        try terminal.press("Tab")
        try terminal.waitForLastRow("telemetry> SELECT os, count(*) AS n FROM pings")
        try terminal.press("Enter")
        try terminal.waitForLastRow("      ...>")
        try terminal.type("WHERE appUpdateChannel = 'nig")
        try terminal.press("Tab")
        try terminal.waitForLastRow("      ...> WHERE appUpdateChannel = 'nightly'")
        try terminal.type(" GROUP BY os ORDER BY os;")
        try terminal.press("Enter")
        let afterStatement = try terminal.waitForLastRow("telemetry>")
        #expect(afterStatement.contains("os,n") && afterStatement.contains("Linux,1") && afterStatement.contains("WINNT,1"))

        // A histogram name inside a JSON path.
        try terminal.type("SELECT json_extract(payload, '$.histograms.GC")
        try terminal.press("Tab")
        try terminal.waitForLastRow("telemetry> SELECT json_extract(payload, '$.histograms.GC_MS'")
        try terminal.type(") IS NOT NULL AS has_gc FROM pings WHERE document_id = 'doc-2';")
        try terminal.press("Enter")
        try terminal.waitUntil("has_gc = 1") { rows in
            guard let header = rows.lastIndex(of: "has_gc") else { return false }
            return header + 1 < rows.count && rows[header + 1] == "1"
        }

        // Several candidates are listed under the line, which stays as typed.
        try terminal.type(".h")
        try terminal.press("Tab")
        try terminal.waitFor(".headers     .help        .histograms")   // columns as wide as the longest name + 2
        try terminal.waitForLastRow("telemetry> .h")
        try terminal.press("C-u")

        // A file path in $HOME.
        try terminal.type(".run ~/scr")
        try terminal.press("Tab")
        try terminal.waitForLastRow("telemetry> .run ~/script.sql")
        try terminal.press("Enter")
        try terminal.waitFor("from the script")

        // Wide rows are cut to the terminal's 120 columns with an ellipsis; numbers stay right-aligned.
        try terminal.type(".mode table")
        try terminal.press("Enter")
        try terminal.type("SELECT memsize, payload FROM pings WHERE document_id = 'doc-1';")
        try terminal.press("Enter")
        let wide = try terminal.waitFor("   4096  {\"ver\":2,")
        let row = try #require(wide.first { $0.contains("{\"ver\":2,") })
        #expect(row.count == 120 && row.hasSuffix("…"), "\(row)")
        #expect(!wide.joined().contains("\"a@b\""))

        try terminal.press("C-d")
        try terminal.waitFor("EXITED 0")
    }

    @Test("history is kept in ~/.telemetry_history and recalled in the next session, multi-line entries whole")
    func historyAcrossSessions() throws {
        let fixture = try ShellFixture()
        let history = fixture.home + "/.telemetry_history"
        do {
            let first = try TmuxTerminal(Self.command(fixture))
            try first.waitForLastRow("telemetry>")
            try first.type("SELECT 'two' AS lines")
            try first.press("Enter")
            try first.waitForLastRow("      ...>")
            try first.type("FROM pings LIMIT 1;")
            try first.press("Enter")
            try first.waitFor("two")
            try first.waitForLastRow("telemetry>")
            try first.type("SELECT 'first session' AS marker;")
            try first.press("Enter")
            try first.waitForLastRow("telemetry>")
            try first.type(".quit")
            try first.press("Enter")
            try first.waitFor("EXITED 0")
        }
        let saved = try String(contentsOfFile: history, encoding: .utf8)
        #expect(saved.contains("first\\040session"), "\(saved)")
        let attributes = try FileManager.default.attributesOfItem(atPath: history)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let second = try TmuxTerminal(Self.command(fixture))
        try second.waitForLastRow("telemetry>")
        try second.press("Up")
        try second.waitForLastRow("telemetry> .quit")
        try second.press("Up")
        try second.waitForLastRow("telemetry> SELECT 'first session' AS marker;")
        try second.press("Up")
        try second.waitUntil("the two-line entry") { rows in
            let filled = rows.filter { !$0.isEmpty }
            return filled.suffix(2) == ["telemetry> SELECT 'two' AS lines", "FROM pings LIMIT 1;"]
        }
        try second.press("Down")
        try second.waitForLastRow("telemetry> SELECT 'first session' AS marker;")
        try second.press("Enter")
        try second.waitFor("first session")
        try second.waitUntil("the recalled statement's result") { rows in rows.contains("first session") }
        try second.press("C-d")
        try second.waitFor("EXITED 0")
    }

    @Test("Ctrl-C cancels a long query and the session goes on; Ctrl-C discards a line; twice at an empty prompt exits")
    func controlC() throws {
        let fixture = try ShellFixture()
        let terminal = try TmuxTerminal(Self.command(fixture))
        try terminal.waitForLastRow("telemetry>")
        try terminal.type("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c;")
        try terminal.press("Enter")
        try terminal.waitFor("running")   // the elapsed-time line appears after a second
        try terminal.press("C-c")
        try terminal.waitFor("Interrupted.")
        try terminal.waitForLastRow("telemetry>")
        try terminal.type("SELECT 6 * 7 AS answer;")
        try terminal.press("Enter")
        try terminal.waitUntil("the answer") { rows in rows.contains { $0.hasSuffix("42") } }

        try terminal.type("SELECT 'discard me'")
        try terminal.press("C-c")
        try terminal.waitFor("telemetry> SELECT 'discard me'^C")
        try terminal.waitForLastRow("telemetry>")
        try terminal.press("C-c")
        try terminal.waitFor("(Ctrl-C again to exit; Ctrl-D or .quit also exit)")
        try terminal.press("C-c")
        try terminal.waitFor("EXITED 0")
    }

    @Test("Ctrl-C during .import rolls back the file in progress, keeps the files done, and returns to the prompt")
    func controlCDuringImport() throws {
        let fixture = try ShellFixture()
        // Many one-line files: the importer commits one transaction per file, so this takes seconds, long
        // enough to press Ctrl-C while the progress bar runs. Written and removed with POSIX calls (Foundation's
        // file calls take a minute for this many on a busy machine).
        let fileCount = 10000
        let directory = fixture.directory.path + "/many/saved_session/Firefox/nightly/28.0a1"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let names = (0..<fileCount).map { index -> String in
            let hex = String(index, radix: 16)
            return directory + "/20131029030201.20131029.v2.log." + String(repeating: "0", count: 32 - hex.count) + hex
        }
        let line = Array("doc\t{\"ver\":2,\"info\":{\"OS\":\"WINNT\"}}\n".utf8)
        for name in names {
            let fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw TerminalTestError.cannotWrite(name) }
            _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        defer { for name in names { unlink(name) } }
        let store = fixture.directory.path + "/many.db"
        let terminal = try TmuxTerminal(Self.command(fixture, store: store))
        try terminal.waitFor("No store at \(store) yet")
        try terminal.waitForLastRow("telemetry>")
        try terminal.type(".import many")
        try terminal.press("Enter")
        try terminal.waitUntil("the progress bar") { rows in rows.contains { $0.contains("files ") && $0.contains("/\(fileCount)") } }
        try terminal.press("C-c")
        try terminal.waitFor("Interrupted: the files done are committed; run the same .import again to finish.")
        try terminal.waitForLastRow("telemetry>")
        try terminal.type("SELECT count(*) > 0 AND count(*) < \(fileCount) AS partial FROM pings;")
        try terminal.press("Enter")
        try terminal.waitUntil("the partial count") { rows in
            guard let header = rows.lastIndex(of: "partial") else { return false }
            return header + 2 < rows.count && rows[header + 2] == "      1"
        }
        try terminal.press("C-d")
        try terminal.waitFor("EXITED 0")
    }
}
