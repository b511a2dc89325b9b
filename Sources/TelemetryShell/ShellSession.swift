import Foundation
import TelemetryCore
import TelemetryOperations
import TelemetryStore
#if canImport(Glibc)
import Glibc
#endif

/// Settings changed by dot-commands.
public struct ShellSettings: Sendable, Equatable {
    /// `.mode`: how results are printed.
    public var mode: OutputFormat = .table
    /// `.headers`: column names above the rows.
    public var headers = true
    /// `.timer`: print each statement's wall time (on standard error).
    public var timer = false
    /// `.bail`: stop at the first error.
    public var bail = false

    /// The defaults: table mode with headers, no timer, no bail.
    public init() {}
}

/// Why a session ended.
public enum SessionEnd: Sendable, Equatable {
    /// The input ended (Ctrl-D, end of file).
    case endOfInput
    /// `.quit`, or Ctrl-C twice at an empty prompt.
    case quit
    /// An error under `.bail on`.
    case bailed
    /// Ctrl-C stopped a script (not interactive).
    case interrupted
}

/// Control flow out of nested input (`.run` inside `.run`): thrown, caught where the session ends or resumes.
enum ShellStop: Error {
    case quit, bail, interrupted
}

/// One REPL or script session over a store: reads SQL and dot-commands from an `InputSource`, runs them, prints
/// results on `output` (or the `.output` / `.once` file) and errors on `errors`, and survives every error.
///
/// - Statements run when `SQLText.isComplete` says the text read so far ends with a complete statement; each may
///   use the `.param` values as `:NAME`, `@NAME` or `$NAME`. An unfinished statement at the end of a script or
///   pipe is run as is (sqlite3 does the same), at the end of a terminal session it is dropped.
/// - Errors print as `Error: …` (with `FILE:LINE:` in scripts, and the statement line with a caret when SQLite
///   names a position) and the session goes on, unless `.bail on`.
/// - Important: Not `Sendable`: owns the `Store`. Run it on one thread.
public struct ShellSession {
    /// Deepest `.run` nesting (a script that runs itself stops here).
    public static let maxScriptDepth = 16

    /// The store file queries go to (it may not exist yet: `.import` creates it).
    public private(set) var storePath: String
    /// The open store, `nil` when there is none at `storePath` yet.
    public private(set) var store: Store?
    /// `.mode`, `.headers`, `.timer`, `.bail`.
    public var settings = ShellSettings()
    /// `.param` values by name without prefix.
    public internal(set) var parameters: [String: SQLValue] = [:]
    /// `.filter`: applied to queries (TEMP views) and imports.
    public internal(set) var filter: SessionFilter?
    /// Names for completion and listings.
    public let catalog: Catalog
    /// True for a terminal session (banner, progress, Ctrl-C returns to the prompt).
    public let isInteractive: Bool
    /// Errors reported so far (a script's exit status is 1 when this is not 0).
    public private(set) var errorCount = 0

    let standardOutput: OutputSink
    let errors: OutputSink
    var redirection: (path: String, sink: OutputSink)?
    var once: OutputSink?
    var scriptDepth = 0
    let interrupts: InterruptWatcher?
    /// `$HOME`, for `~/` in paths.
    let home: String?

    /// Opens the store at `storePath` if there is one.
    /// - Parameters:
    ///   - interactive: terminal behaviour (progress bars, import times, Ctrl-C back to the prompt).
    ///   - interrupts: Ctrl-C handling; `nil` (tests) runs everything uncancellable.
    /// - Throws: `StoreError` when a file exists at `storePath` but is not a usable store.
    public init(storePath: String, interactive: Bool, output: OutputSink = FileDescriptorSink.standardOutput(),
                errors: OutputSink = FileDescriptorSink.standardError(), interrupts: InterruptWatcher? = nil,
                home: String? = ProcessInfo.processInfo.environment["HOME"]) throws {
        self.storePath = storePath
        self.isInteractive = interactive
        self.standardOutput = output
        self.errors = errors
        self.interrupts = interrupts
        self.home = home
        store = FileManager.default.fileExists(atPath: storePath) ? try Store(path: storePath, create: false) : nil
        catalog = Catalog(store: store)
    }

    /// The sink results go to now: the `.once` file, else the `.output` file, else standard output.
    var output: OutputSink { once ?? redirection?.sink ?? standardOutput }

    /// Sets a parameter bound as `:name`, `@name` and `$name` (`telemetry run --param`).
    public mutating func setParameter(_ name: String, to value: SQLValue) {
        parameters[Self.parameterKey(name)] = value
        catalog.parameterNames = parameters.keys.sorted()
    }

    /// A completer over this session's catalog (tables, histograms, dimension values, parameter names).
    public func makeCompleter() -> Completer {
        Completer(catalog: catalog, home: home)
    }

    // MARK: reading input

    /// Reads `input` to its end and runs what it holds. Returns how the session ended.
    public mutating func run(_ input: InputSource) -> SessionEnd {
        do {
            try consume(input)
            return .endOfInput
        } catch ShellStop.quit {
            return .quit
        } catch ShellStop.bail {
            return .bailed
        } catch {
            return .interrupted
        }
    }

    /// The read–run loop shared by the terminal, pipes and `.run FILE`.
    mutating func consume(_ input: InputSource) throws {
        var pending = ""
        var pendingStart = 0
        var lineNumber = 0
        var emptyInterrupts = 0
        let resumesAfterInterrupt = input.isTerminal
        while true {
            if !input.isTerminal, interrupts?.takeStopRequest() == true { throw ShellStop.interrupted }
            let event = input.next(continuation: !pending.isEmpty)
            do {
                switch event {
                case .end:
                    if !input.isTerminal, !Self.isBlankOrComment(pending) {
                        let sql = pending
                        pending = ""
                        try execute(sql: sql, startLine: pendingStart, source: input.name)
                    }
                    return
                case let .interrupt(discardedText):
                    if discardedText || !pending.isEmpty {
                        pending = ""
                        emptyInterrupts = 0
                        continue
                    }
                    emptyInterrupts += 1
                    if emptyInterrupts >= 2 { throw ShellStop.quit }
                    errors.write("(Ctrl-C again to exit; Ctrl-D or .quit also exit)\n")
                case let .line(text):
                    emptyInterrupts = 0
                    for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
                        lineNumber += 1
                        if pending.isEmpty {
                            if Self.isBlankOrComment(line) { continue }
                            if line.drop(while: { $0 == " " || $0 == "\t" }).hasPrefix(".") {
                                input.addHistory(line)
                                try runDotCommand(line, lineNumber: lineNumber, source: input.name)
                                continue
                            }
                            pendingStart = lineNumber
                        }
                        pending += line + "\n"
                        if SQLText.isComplete(pending) {
                            let sql = pending
                            pending = ""
                            input.addHistory(sql)
                            try execute(sql: sql, startLine: pendingStart, source: input.name)
                        }
                    }
                }
            } catch ShellStop.interrupted where resumesAfterInterrupt {
                pending = ""
                errors.write("Interrupted.\n")
            }
        }
    }

    /// True for text that holds no SQL: blanks and `--` / closed `/* */` comments only.
    static func isBlankOrComment(_ text: String) -> Bool {
        var rest = Substring(text)
        while true {
            rest = rest.drop(while: \.isWhitespace)
            if rest.isEmpty { return true }
            if rest.hasPrefix("--") {
                guard let newline = rest.firstIndex(of: "\n") else { return true }
                rest = rest[newline...]
            } else if rest.hasPrefix("/*") {
                guard let end = rest.range(of: "*/") else { return false }   // runs on: gather lines until the statement is complete
                rest = rest[end.upperBound...]
            } else {
                return false
            }
        }
    }

    // MARK: running SQL

    /// Runs the statements of `sql` in order, printing each result; stops at the first failing one.
    mutating func execute(sql: String, startLine: Int, source: String?) throws {
        defer { once = nil }
        guard let store else {
            try report(ShellError.noStore(path: storePath), line: startLine, source: source)
            return
        }
        let sink = output
        var changedSchema = false
        let settings = self.settings
        let parameters = self.parameters
        let errors = self.errors
        let showsTicker = isInteractive && isatty(2) == 1
        do {
            try cancellable(store) {
                try QueryOperation.forEachStatement(sql, on: store, parameters: parameters) { statement in
                    let started = DispatchTime.now()
                    let ticker = showsTicker ? ElapsedTicker() : nil
                    let columnCount = statement.columnCount
                    var result = Store.QueryResult(columns: (0..<columnCount).map { statement.columnName($0) }, rows: [])
                    do {
                        while try statement.step() { result.rows.append((0..<columnCount).map { statement.value($0) }) }
                    } catch {
                        ticker?.stop()
                        throw error
                    }
                    ticker?.stop()
                    if !statement.isReadOnly { changedSchema = true }
                    if columnCount > 0 {
                        sink.write(Self.render(result, settings: settings, on: sink))
                        if let failure = sink.takeWriteFailure() { throw ShellError.cannotWrite(path: failure.file, reason: failure.reason) }
                    }
                    if settings.timer {
                        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
                        errors.write(String(format: "Run Time: %.3f s\n", seconds))
                    }
                }
            }
        } catch {
            if changedSchema { catalog.invalidate() }
            try report(error, sql: sql, line: startLine, source: source)
            return
        }
        if changedSchema { catalog.invalidate() }
    }

    /// Text of `result` in the current mode; tables fit the terminal when `sink` is one.
    static func render(_ result: Store.QueryResult, settings: ShellSettings, on sink: OutputSink) -> String {
        let width = settings.mode == .table ? sink.terminalWidth : nil
        return ResultRenderer(format: settings.mode, headers: settings.headers, maxWidth: width).render(result)
    }

    /// Prints `result` on the current output in the current mode.
    func print(_ result: Store.QueryResult) throws {
        let sink = output
        sink.write(Self.render(result, settings: settings, on: sink))
        if let failure = sink.takeWriteFailure() { throw ShellError.cannotWrite(path: failure.file, reason: failure.reason) }
    }

    /// Runs `body` with Ctrl-C interrupting `store`'s connection.
    func cancellable<T>(_ store: Store, _ body: () throws -> T) throws -> T {
        guard let interrupts else { return try body() }
        let target = ConnectionInterrupter(store.connection)
        return try interrupts.during(cancel: { target.interrupt() }, body).value
    }

    // MARK: dot-commands

    mutating func runDotCommand(_ line: String, lineNumber: Int, source: String?) throws {
        let words = DotCommand.tokenize(line.trimmingCharacters(in: .whitespaces))
        guard let first = words.first else { return }
        let name = String(first.dropFirst())
        var keepsOnce = false
        defer { if !keepsOnce { once = nil } }
        do {
            switch DotCommand.lookup(name) {
            case let .found(command):
                keepsOnce = command.name == "once"
                if try command.run(&self, Array(words.dropFirst())) == .quit { throw ShellStop.quit }
            case let .ambiguous(names):
                throw ShellError.ambiguousCommand(name: name, candidates: names)
            case let .unknown(suggestion):
                throw ShellError.unknownCommand(name: name, suggestion: suggestion)
            }
        } catch let stop as ShellStop {
            throw stop
        } catch {
            keepsOnce = false
            try report(error, line: lineNumber, source: source)
        }
    }

    // MARK: errors

    /// Prints `error` as `Error: …`, counts it, and stops under `.bail on`. An interrupt is not an error: it
    /// unwinds to the terminal prompt (or ends a script).
    mutating func report(_ error: Error, sql: String? = nil, line: Int, source: String?) throws {
        if Self.isInterrupt(error) { throw ShellStop.interrupted }
        errorCount += 1
        var text = "Error: "
        if let queryError = error as? Store.QueryError {
            var errorLine = line
            var context = ""
            if let sql, let offset = queryError.offset {
                let place = Self.errorContext(sql: sql, offset: offset)
                errorLine = line + place.lineIndex
                context = place.text
            }
            if let source { text += "\(source):\(errorLine): " }
            text += queryError.message + "\n" + context
        } else {
            if let source { text += "\(source):\(line): " }
            text += "\(error)\n"
        }
        errors.write(text)
        if settings.bail { throw ShellStop.bail }
    }

    static func isInterrupt(_ error: Error) -> Bool {
        switch error {
        case let queryError as Store.QueryError: return queryError.isInterrupt
        case ShellError.interrupted, StoreError.interrupted: return true
        case let StoreError.sqlite(code, _, _): return code & 0xFF == 9   // SQLITE_INTERRUPT
        default: return false
        }
    }

    /// The line of `sql` holding byte `offset`, indented, with a caret under the offending token; long lines are
    /// cut around it. `lineIndex` counts lines from 0.
    static func errorContext(sql: String, offset: Int) -> (lineIndex: Int, text: String) {
        let bytes = Array(sql.utf8)
        let at = min(max(0, offset), bytes.count)
        let lineIndex = bytes[..<at].filter { $0 == 0x0A }.count
        let lineStart = bytes[..<at].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        let lineEnd = bytes[at...].firstIndex(of: 0x0A) ?? bytes.count
        var before = String(decoding: bytes[lineStart..<at], as: UTF8.self)
        var after = String(decoding: bytes[at..<lineEnd], as: UTF8.self)
        if before.count > 60 { before = "…" + before.suffix(50) }
        if after.count > 60 { after = after.prefix(50) + "…" }
        let pad = String(before.map { $0 == "\t" ? "\t" : " " })
        return (lineIndex, "  " + before + after + "\n  " + pad + "^--- error here\n")
    }

    // MARK: helpers for commands

    /// `~/x` → `$HOME/x`.
    func expandingTilde(_ path: String) -> String {
        guard let home, !home.isEmpty, path == "~" || path.hasPrefix("~/") else { return path }
        return home + path.dropFirst()
    }

    /// The store, or `ShellError.noStore`.
    func requireStore() throws -> Store {
        guard let store else { throw ShellError.noStore(path: storePath) }
        return store
    }

    mutating func replaceStore(_ newStore: Store?, path: String) {
        store = newStore
        storePath = path
        catalog.store = newStore
    }

    static func parameterKey(_ name: String) -> String {
        if let first = name.first, ":@$?".contains(first) { return String(name.dropFirst()) }
        return name
    }
}

/// Lets the watcher thread interrupt a connection.
private final class ConnectionInterrupter: @unchecked Sendable {   // only `interrupt()` runs off the session's thread; sqlite3_interrupt is thread-safe
    private let connection: Connection
    init(_ connection: Connection) { self.connection = connection }
    func interrupt() { connection.interrupt() }
}

/// Shows `… running 3 s (Ctrl-C cancels)` on standard error while a statement takes longer than a second.
final class ElapsedTicker: @unchecked Sendable {   // `condition` guards `running` and `drawn`; writes happen under it
    private let condition = NSCondition()
    private var running = true
    private var drawn = false
    private let started = Date()

    init(delay: TimeInterval = 1) {
        let thread = Thread { [self] in
            condition.lock()
            defer { condition.unlock() }
            while running {
                _ = condition.wait(until: Date().addingTimeInterval(0.25))
                guard running else { break }
                let elapsed = Date().timeIntervalSince(started)
                if elapsed >= delay {
                    FileDescriptorSink.standardError().write(String(format: "\r… running %.0f s (Ctrl-C cancels)\u{1B}[K", elapsed))
                    drawn = true
                }
            }
        }
        thread.start()
    }

    /// Stops the ticker and clears its line; nothing is written after this returns.
    func stop() {
        condition.lock()
        running = false
        condition.signal()
        let wasDrawn = drawn
        drawn = false
        condition.unlock()
        if wasDrawn { FileDescriptorSink.standardError().write("\r\u{1B}[K") }
    }
}
