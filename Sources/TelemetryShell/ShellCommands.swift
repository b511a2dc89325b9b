import Foundation
import TelemetryCore
import TelemetryOperations
import TelemetryStore
#if canImport(Glibc)
import Glibc
#endif

/// The work behind the dot-commands of `DotCommand.all` (docs/repl.md).
extension ShellSession {
    // MARK: .help

    mutating func showHelp(_ arguments: [Substring]) throws {
        guard arguments.count <= 1 else { throw ShellError.usage(command: "help", usage: DotCommand.usage(of: "help")) }
        if let typed = arguments.first {
            let name = typed.hasPrefix(".") ? String(typed.dropFirst()) : String(typed)
            switch DotCommand.lookup(name) {
            case let .found(command): output.write(command.usage + "\n    " + command.summary + "\n")
            case let .ambiguous(names): throw ShellError.ambiguousCommand(name: name, candidates: names)
            case let .unknown(suggestion): throw ShellError.unknownCommand(name: name, suggestion: suggestion)
            }
            return
        }
        output.write(Self.helpText)
    }

    /// `.help` without arguments: one line per command, then how statements and keys work.
    static var helpText: String {
        let column = 34
        var text = ""
        for command in DotCommand.all {
            if command.usage.count + 2 <= column {
                text += command.usage + String(repeating: " ", count: column - command.usage.count) + command.summary + "\n"
            } else {
                text += command.usage + "\n" + String(repeating: " ", count: column) + command.summary + "\n"
            }
        }
        text += """

            SQL statements end with ";" and may span lines. .param values bind to :NAME, @NAME and $NAME.
            Keys: Tab completes; Up/Down recall history; Ctrl-C cancels a query or import, and at an empty
            prompt twice exits; Ctrl-D exits.

            """
        return text
    }

    // MARK: .open

    mutating func open(_ path: String) throws {
        let expanded = expandingTilde(path)
        guard FileManager.default.fileExists(atPath: expanded) else {
            replaceStore(nil, path: expanded)
            errors.write("No store at \(expanded) yet: .import PATH creates it.\n")
            return
        }
        let newStore = try Store(path: expanded, create: false)
        replaceStore(newStore, path: expanded)
        if let filter {
            do {
                try filter.apply(to: newStore)
            } catch {
                self.filter = nil
                throw error
            }
        }
    }

    // MARK: .tables, .schema

    /// `.check [--full]`: the same check as `telemetry check` (`StoreCheck`); damage is an error (stops under
    /// `.bail on`, makes a script's exit status non-zero).
    mutating func checkStore(_ arguments: [Substring]) throws {
        guard arguments.isEmpty || arguments == ["--full"] else { throw ShellError.usage(command: "check", usage: DotCommand.usage(of: "check")) }
        let report = try StoreCheck.run(store: try requireStore(), full: arguments == ["--full"])
        output.write(report.text)
        if report.hasDamage { throw ShellError.operationFailed(message: "\(report.storePath): the store is damaged (above)") }
    }

    mutating func showTables() throws {
        let store = try requireStore()
        let listing = "type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        let main = try store.query("SELECT name, type FROM main.sqlite_schema WHERE \(listing) ORDER BY name").first?.rows ?? []
        let temp = try store.query("SELECT name, type FROM temp.sqlite_schema WHERE \(listing) ORDER BY name").first?.rows ?? []
        let tempNames = Set(SessionFilter.textColumn([Store.QueryResult(columns: ["name"], rows: temp)]))
        var rows: [[SQLValue]] = []
        for row in main {
            guard row.count == 2, case let .text(name) = row[0], case let .text(type) = row[1] else { continue }
            let note = tempNames.contains(name) ? (filter != nil ? ", filtered" : ", shadowed by temp") : ""
            rows.append([.text(name), .text(type + note)])
        }
        let mainNames = Set(SessionFilter.textColumn([Store.QueryResult(columns: ["name"], rows: rows)]))
        for row in temp {
            guard row.count == 2, case let .text(name) = row[0], case let .text(type) = row[1], !mainNames.contains(name) else { continue }
            rows.append([.text(name), .text("temp " + type)])
        }
        try print(Store.QueryResult(columns: ["name", "type"], rows: rows))
    }

    mutating func showSchema(_ arguments: [Substring]) throws {
        guard arguments.count <= 1 else { throw ShellError.usage(command: "schema", usage: DotCommand.usage(of: "schema")) }
        let store = try requireStore()
        var condition = "sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        if let name = arguments.first { condition += " AND tbl_name LIKE \(SessionFilter.literal(String(name)))" }
        var statements: [String] = []
        for schema in ["main", "temp"] {
            for row in try store.query("SELECT sql FROM \(schema).sqlite_schema WHERE \(condition) ORDER BY rowid").first?.rows ?? [] {
                guard case let .text(sql)? = row.first else { continue }
                if schema == "temp", let range = sql.range(of: #"^CREATE\s+(VIEW|TABLE)"#, options: [.regularExpression, .caseInsensitive]) {
                    statements.append(sql.replacingCharacters(in: range, with: "CREATE TEMP " + sql[range].split(whereSeparator: \.isWhitespace)[1]))
                } else {
                    statements.append(sql)
                }
            }
        }
        if statements.isEmpty, let name = arguments.first { throw ShellError.unknownTable(name: String(name)) }
        output.write(statements.map { $0 + ";\n" }.joined())
    }

    // MARK: .dims, .histograms

    mutating func showDimensions(_ arguments: [Substring]) throws {
        guard arguments.count <= 1 else { throw ShellError.usage(command: "dims", usage: DotCommand.usage(of: "dims")) }
        let store = try requireStore()
        var names = store.schema.fieldNames
        if let wanted = arguments.first {
            guard let match = names.first(where: { $0.caseInsensitiveCompare(String(wanted)) == .orderedSame }) else {
                throw ShellError.unknownDimension(name: String(wanted), known: names)
            }
            names = [match]
        }
        var result = Store.QueryResult(columns: ["dimension", "value", "pings"], rows: [])
        try cancellable(store) {
            for name in names {
                let column = Store.quote(name)
                for row in try store.query("SELECT \(column), count(*) FROM pings GROUP BY 1 ORDER BY 1").first?.rows ?? [] {
                    result.rows.append([.text(name)] + row)
                }
            }
        }
        try print(result)
    }

    mutating func showHistograms(_ arguments: [Substring]) throws {
        guard arguments.count <= 1 else { throw ShellError.usage(command: "histograms", usage: DotCommand.usage(of: "histograms")) }
        let store = try requireStore()
        let catalog = self.catalog
        let sample = try cancellable(store) { try catalog.histograms() }
        let pattern = arguments.first.map(String.init)
        let rows: [[SQLValue]] = sample.histograms.filter { Self.matches($0.name, pattern: pattern) }.map {
            [.text($0.name), .text($0.keyed ? "keyed" : "plain"), .integer(Int64($0.pings))]
        }
        try print(Store.QueryResult(columns: ["histogram", "kind", "pings"], rows: rows))
        if !sample.isComplete {
            errors.write("(names and counts from a sample of \(sample.sampledPings) pings spread over the store; rare histograms may be missing)\n")
        }
    }

    /// A case-insensitive substring, or a glob when `pattern` holds `*`, `?` or `[`.
    static func matches(_ name: String, pattern: String?) -> Bool {
        guard let pattern, !pattern.isEmpty else { return true }
        if pattern.contains(where: { "*?[".contains($0) }) {
            return fnmatch(pattern.lowercased(), name.lowercased(), 0) == 0   // FNM_CASEFOLD is a GNU extension
        }
        return name.range(of: pattern, options: .caseInsensitive) != nil
    }

    // MARK: .import

    mutating func importFiles(_ arguments: [Substring]) throws {
        var paths: [String] = []
        var options: [String: String] = [:]   // --filter, --histogram-cache
        var index = 0
        let usage = ShellError.usage(command: "import", usage: DotCommand.usage(of: "import"))
        while index < arguments.count {
            let argument = String(arguments[index])
            if let option = ["--filter", "--histogram-cache"].first(where: { argument == $0 }) {
                guard index + 1 < arguments.count else { throw usage }
                options[option] = String(arguments[index + 1])
                index += 2
                continue
            }
            if let option = ["--filter", "--histogram-cache"].first(where: { argument.hasPrefix($0 + "=") }) {
                options[option] = String(argument.dropFirst(option.count + 1))
            } else if argument.hasPrefix("--") {
                throw usage
            } else {
                paths.append(expandingTilde(argument))
            }
            index += 1
        }
        let filterPath = options["--filter"]
        let histogramCache = options["--histogram-cache"].map(expandingTilde)
        if let histogramCache {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: histogramCache, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ShellError.fileNotFound(path: histogramCache)
            }
        }
        guard !paths.isEmpty else { throw usage }
        for path in paths where !FileManager.default.fileExists(atPath: path) { throw ShellError.fileNotFound(path: path) }
        let importFilter = try filterPath.map { try DimensionSchema(contentsOf: expandingTilde($0)) } ?? filter?.schema
        let store: Store
        if let existing = self.store {
            store = existing
        } else {
            store = try Store(path: storePath, create: true)
            replaceStore(store, path: storePath)
        }
        if let importFilter, importFilter.dimensions.count != store.schema.dimensions.count {
            throw ShellError.filterMismatch(path: filterPath ?? filter?.path ?? "filter", filterDimensions: importFilter.dimensions.count,
                                            storeDimensions: store.schema.dimensions.count)
        }
        // The importer writes to `pings`: lift the filter's TEMP views while it runs.
        if filter != nil { try SessionFilter.remove(from: store) }
        defer { catalog.invalidate() }
        var request = ImportRequest(roots: paths, filter: importFilter)
        request.histogramCache = histogramCache
        let progress = TerminalProgress()
        let flag = CancelFlag()
        let report: ImportReport
        let errors = self.errors
        do {
            let run = {
                try ImportOperation.run(request, store: store,
                                        notice: { errors.write($0 + "\n") }, progress: { progress.update($0) }, isCancelled: { flag.isRaised })
            }
            report = try interrupts.map { try $0.during(cancel: { flag.raise() }, run).value } ?? run()
            progress.finish()
        } catch {
            progress.finish()
            if let filter { try? filter.apply(to: store) }
            throw error
        }
        if let filter { try filter.apply(to: store) }
        errors.write(report.shellText(showsTime: isInteractive))
        if let message = report.environmentFailureMessage { throw ShellError.operationFailed(message: message) }
        if report.summary.interrupted { throw ShellError.interrupted }
        if let error = report.emptyRootsError { throw error }
    }

    // MARK: .output, .once

    mutating func redirect(to path: String?) throws {
        guard let path, path != "stdout", path != "-" else {
            redirection = nil
            return
        }
        let expanded = expandingTilde(path)
        redirection = (expanded, try FileDescriptorSink(creatingFileAt: expanded))
    }

    mutating func redirectOnce(to path: String) throws {
        once = try FileDescriptorSink(creatingFileAt: expandingTilde(path))
    }

    // MARK: .param

    mutating func parameterCommand(_ arguments: [Substring]) throws {
        let usage = ShellError.usage(command: "param", usage: DotCommand.usage(of: "param"))
        guard let subcommand = arguments.first?.lowercased() else { throw usage }
        switch subcommand {
        case "set":
            guard arguments.count == 3 else { throw usage }
            let key = Self.parameterKey(String(arguments[1]))
            guard !key.isEmpty else { throw usage }
            setParameter(key, to: QueryOperation.parameterValue(String(arguments[2])))
        case "unset":
            guard arguments.count == 2 else { throw usage }
            let key = Self.parameterKey(String(arguments[1]))
            guard parameters.removeValue(forKey: key) != nil else { throw ShellError.unknownParameter(name: key) }
        case "list":
            guard arguments.count == 1 else { throw usage }
            let rows: [[SQLValue]] = parameters.keys.sorted().map { key in
                [.text(key), .text(Self.sqlLiteral(parameters[key] ?? .null))]
            }
            try print(Store.QueryResult(columns: ["name", "value"], rows: rows))
        case "clear":
            guard arguments.count == 1 else { throw usage }
            parameters = [:]
        default:
            throw usage
        }
        catalog.parameterNames = parameters.keys.sorted()
    }

    /// `value` written as SQL.
    static func sqlLiteral(_ value: SQLValue) -> String {
        switch value {
        case .null: "NULL"
        case let .integer(i): String(i)
        case let .real(d): ResultRenderer.formatReal(d)
        case let .text(s): SessionFilter.literal(s)
        case let .blob(bytes): "x'" + bytes.map { String(format: "%02x", $0) }.joined() + "'"
        }
    }

    // MARK: .filter

    mutating func setFilter(_ arguments: [Substring]) throws {
        guard arguments.count <= 1 else { throw ShellError.usage(command: "filter", usage: DotCommand.usage(of: "filter")) }
        guard let argument = arguments.first else {
            guard let filter else {
                output.write("No filter: queries and imports see everything.\n")
                return
            }
            var condition = "(applied when a store is open)"
            if let store {
                condition = try SessionFilter.predicate(filter: filter.schema, columns: store.schema.fieldNames) { column in
                    let quoted = Store.quote(column)
                    return SessionFilter.textColumn(try store.query("SELECT DISTINCT \(quoted) FROM main.pings ORDER BY 1"))
                }
            }
            output.write("\(filter.path): \(condition)\n")
            return
        }
        if argument.lowercased() == "clear" {
            if let store { try SessionFilter.remove(from: store) }
            filter = nil
            catalog.invalidate()
            return
        }
        let path = expandingTilde(String(argument))
        let newFilter = SessionFilter(path: path, schema: try DimensionSchema(contentsOf: path))
        if let store { try newFilter.apply(to: store) }
        filter = newFilter
        catalog.invalidate()
        if isInteractive {
            errors.write("Filter set: pings (and pings_dedup, duplicate_documents) show only what \(path) allows; main.pings has every row.\n")
        }
    }

    // MARK: .run

    mutating func runFile(_ path: String) throws -> CommandOutcome {
        let expanded = expandingTilde(path)
        guard scriptDepth < Self.maxScriptDepth else { throw ShellError.scriptTooDeep(path: expanded, depth: scriptDepth + 1) }
        let input = try StreamInput(path: expanded)
        scriptDepth += 1
        defer { scriptDepth -= 1 }
        try consume(input)
        return .proceed
    }
}

/// Set by Ctrl-C, polled by the importer.
final class CancelFlag: @unchecked Sendable {   // `lock` guards `raised`
    private let lock = NSLock()
    private var raised = false
    func raise() { lock.lock(); raised = true; lock.unlock() }
    var isRaised: Bool { lock.lock(); defer { lock.unlock() }; return raised }
}
