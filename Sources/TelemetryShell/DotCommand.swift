import Foundation

/// What a dot-command asks the session to do next.
public enum CommandOutcome: Sendable, Equatable {
    /// Read the next line.
    case proceed
    /// End the session (`.quit`).
    case quit
}

/// One REPL dot-command. The table `DotCommand.all` drives dispatch, `.help`, Tab completion and the
/// "did you mean .mode?" hint; a command exists exactly when it has a row there (docs/repl.md lists them).
public struct DotCommand: Sendable {
    /// How Tab completes the command's arguments.
    public enum ArgumentCompletion: Sendable, Equatable {
        /// Nothing to offer.
        case none
        /// File and directory paths, any argument.
        case files
        /// File paths or one of the words (`.filter FILE|clear`).
        case filesOr([String])
        /// `.import`: paths, and `--filter FILE`.
        case importArguments
        /// One of the words, first argument only (`on`, `off`; the modes).
        case firstArgument([String])
        /// Table and view names.
        case tables
        /// Histogram names found in the store.
        case histograms
        /// Dimension names of the store's schema.
        case dimensions
        /// Dot-command names (`.help`).
        case commands
        /// `.param` subcommands, then parameter names.
        case parameters
    }

    /// Name without the dot, lowercase.
    public let name: String
    /// Synopsis shown by `.help` and in usage errors, e.g. `.mode table|csv|tsv|json|markdown|line`.
    public let usage: String
    /// One line for `.help`.
    public let summary: String
    /// Tab completion of the arguments.
    public let completion: ArgumentCompletion
    /// Runs the command with its arguments (quotes removed).
    /// - Throws: `ShellError` (usage, files), `StoreError`, `Store.QueryError`; the session prints them.
    public let run: @Sendable (inout ShellSession, [Substring]) throws -> CommandOutcome

    /// A table row; `name` lowercase without the dot, `usage` starting with `.name`.
    public init(name: String, usage: String, summary: String, completion: ArgumentCompletion = .none,
                run: @escaping @Sendable (inout ShellSession, [Substring]) throws -> CommandOutcome) {
        (self.name, self.usage, self.summary, self.completion, self.run) = (name, usage, summary, completion, run)
    }

    /// Every dot-command, in `.help` order (alphabetical).
    public static let all: [DotCommand] = [
        DotCommand(name: "bail", usage: ".bail on|off", summary: "Stop at the first error (default off; a terminal session ends)",
                   completion: .firstArgument(["on", "off"])) { session, arguments in
            session.settings.bail = try onOff(arguments, command: "bail")
            return .proceed
        },
        DotCommand(name: "check", usage: ".check [--full]",
                   summary: "Verify the store, its column files and ping index; say what repairs any damage",
                   completion: .firstArgument(["--full"])) { session, arguments in
            try session.checkStore(arguments)
            return .proceed
        },
        DotCommand(name: "dims", usage: ".dims [DIMENSION]", summary: "Dimensions and their values, with ping counts",
                   completion: .dimensions) { session, arguments in
            try session.showDimensions(arguments)
            return .proceed
        },
        DotCommand(name: "filter", usage: ".filter [FILE|clear]",
                   summary: "Restrict queries and imports to what a job filter allows; no argument shows it",
                   completion: .filesOr(["clear"])) { session, arguments in
            try session.setFilter(arguments)
            return .proceed
        },
        DotCommand(name: "headers", usage: ".headers on|off", summary: "Column names above the rows (table, csv, tsv)",
                   completion: .firstArgument(["on", "off"])) { session, arguments in
            session.settings.headers = try onOff(arguments, command: "headers")
            return .proceed
        },
        DotCommand(name: "help", usage: ".help [COMMAND]", summary: "List the commands, or show one", completion: .commands) { session, arguments in
            try session.showHelp(arguments)
            return .proceed
        },
        DotCommand(name: "histograms", usage: ".histograms [PATTERN]",
                   summary: "Histogram names in the store (sampled); PATTERN: a substring or a glob", completion: .histograms) { session, arguments in
            try session.showHistograms(arguments)
            return .proceed
        },
        DotCommand(name: "import", usage: ".import PATH... [--filter FILE] [--histogram-cache DIR]",
                   summary: "Import storage files or raw logs, as telemetry import (incremental; the session filter applies)",
                   completion: .importArguments) { session, arguments in
            try session.importFiles(arguments)
            return .proceed
        },
        DotCommand(name: "job", usage: ".job NAME|FILE.swift [ARGS]",
                   summary: "Run a MapReduce job (built-in or Swift script; Ctrl-C cancels)", completion: .files) { session, arguments in
            try session.runJob(arguments)
            return .proceed
        },
        DotCommand(name: "mode", usage: ".mode table|csv|tsv|json|markdown|line", summary: "How query results are printed",
                   completion: .firstArgument(OutputFormat.allCases.map(\.rawValue))) { session, arguments in
            guard arguments.count == 1, let format = OutputFormat(rawValue: arguments[0].lowercased()) else {
                throw ShellError.usage(command: "mode", usage: usage(of: "mode"))
            }
            session.settings.mode = format
            return .proceed
        },
        DotCommand(name: "once", usage: ".once FILE", summary: "Write the next command's output to FILE", completion: .files) { session, arguments in
            guard arguments.count == 1 else { throw ShellError.usage(command: "once", usage: usage(of: "once")) }
            try session.redirectOnce(to: String(arguments[0]))
            return .proceed
        },
        DotCommand(name: "open", usage: ".open STORE", summary: "Use another store file (.import creates a missing one)",
                   completion: .files) { session, arguments in
            guard arguments.count == 1 else { throw ShellError.usage(command: "open", usage: usage(of: "open")) }
            try session.open(String(arguments[0]))
            return .proceed
        },
        DotCommand(name: "output", usage: ".output [FILE]", summary: "Write output to FILE; no argument: back to the terminal",
                   completion: .files) { session, arguments in
            guard arguments.count <= 1 else { throw ShellError.usage(command: "output", usage: usage(of: "output")) }
            try session.redirect(to: arguments.first.map(String.init))
            return .proceed
        },
        DotCommand(name: "param", usage: ".param set NAME VALUE | unset NAME | list | clear",
                   summary: "Values bound to :NAME, @NAME and $NAME in statements", completion: .parameters) { session, arguments in
            try session.parameterCommand(arguments)
            return .proceed
        },
        DotCommand(name: "quit", usage: ".quit", summary: "Leave (also Ctrl-D)") { _, arguments in
            guard arguments.isEmpty else { throw ShellError.usage(command: "quit", usage: usage(of: "quit")) }
            return .quit
        },
        DotCommand(name: "run", usage: ".run FILE", summary: "Run the SQL and dot-commands in FILE", completion: .files) { session, arguments in
            guard arguments.count == 1 else { throw ShellError.usage(command: "run", usage: usage(of: "run")) }
            return try session.runFile(String(arguments[0]))
        },
        DotCommand(name: "schema", usage: ".schema [TABLE]", summary: "CREATE statements of the store, or of one table or view",
                   completion: .tables) { session, arguments in
            try session.showSchema(arguments)
            return .proceed
        },
        DotCommand(name: "tables", usage: ".tables", summary: "Tables and views") { session, arguments in
            guard arguments.isEmpty else { throw ShellError.usage(command: "tables", usage: usage(of: "tables")) }
            try session.showTables()
            return .proceed
        },
        DotCommand(name: "timer", usage: ".timer on|off", summary: "Print how long each statement took",
                   completion: .firstArgument(["on", "off"])) { session, arguments in
            session.settings.timer = try onOff(arguments, command: "timer")
            return .proceed
        },
    ]

    /// Result of looking a typed name up in `all`.
    public enum Lookup: Sendable {
        /// The name, or a prefix of exactly one name.
        case found(DotCommand)
        /// A prefix of several names (sorted as the table is).
        case ambiguous([String])
        /// No match; `suggestion` is the closest name within edit distance 2.
        case unknown(suggestion: String?)
    }

    /// Finds a command by its name or an unambiguous prefix of it (`.he` is ambiguous, `.hea` is `.headers`);
    /// otherwise suggests the closest name (edit distance at most 2).
    public static func lookup(_ typed: String) -> Lookup {
        let name = typed.lowercased()
        if let exact = all.first(where: { $0.name == name }) { return .found(exact) }
        let prefixed = all.filter { $0.name.hasPrefix(name) }
        if !name.isEmpty, prefixed.count == 1 { return .found(prefixed[0]) }
        if !name.isEmpty, prefixed.count > 1 { return .ambiguous(prefixed.map(\.name)) }
        let scored = all.map { ($0.name, editDistance($0.name, name)) }.filter { $0.1 <= 2 }
        return .unknown(suggestion: scored.min { $0.1 < $1.1 }?.0)
    }

    /// `usage` of the named command (for usage errors inside `run`).
    static func usage(of name: String) -> String { all.first { $0.name == name }?.usage ?? "." + name }

    static func onOff(_ arguments: [Substring], command: String) throws -> Bool {
        guard arguments.count == 1 else { throw ShellError.usage(command: command, usage: usage(of: command)) }
        switch arguments[0].lowercased() {
        case "on", "yes", "true", "1": return true
        case "off", "no", "false", "0": return false
        default: throw ShellError.usage(command: command, usage: usage(of: command))
        }
    }

    /// Levenshtein distance over characters. O(|a|·|b|).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// Splits a dot-command line into words: blanks separate; '…' and "…" group (quotes removed; a doubled
    /// quote inside stands for one); an unterminated quote runs to the end of the line.
    /// - Returns: the words, the first being the command name with its dot.
    public static func tokenize(_ line: String) -> [Substring] {
        var words: [Substring] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var index = line.startIndex
        while index < line.endIndex {
            let character = line[index]
            index = line.index(after: index)
            if let open = quote {
                if character == open {
                    if index < line.endIndex, line[index] == open {
                        current.append(open)
                        index = line.index(after: index)
                    } else {
                        quote = nil
                    }
                } else {
                    current.append(character)
                }
            } else if character == " " || character == "\t" {
                if inWord { words.append(Substring(current)); current = ""; inWord = false }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else {
                current.append(character)
                inWord = true
            }
        }
        if inWord { words.append(Substring(current)) }
        return words
    }
}
