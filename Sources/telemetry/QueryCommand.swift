import ArgumentParser
import Foundation
import TelemetryOperations
import TelemetryShell
import TelemetryStore
#if canImport(Glibc)
import Glibc
#endif

extension OutputFormat: ExpressibleByArgument {}

struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Run SQL over the store and print the results.",
        discussion: """
        The store has a table `pings` (document_id, one column per schema dimension, typed info columns \
        os, os_version, arch, locale, memsize, cpucount, revision, update_channel, and payload: the ping's JSON, \
        reachable with SQLite's JSON functions such as json_extract(payload, '$.info.OS')), the view \
        `pings_dedup` (one row per document id and ping type), `duplicate_documents`, `source_files` and `import_errors`. \
        See docs/store.md. A parameter (:name, @name, $name) the SQL names must be given with --param \
        (--param name=NULL for NULL).

        Exit status: 0 every statement ran; 1 an SQL error or a parameter without a value; 2 the store cannot be \
        opened; 64 bad arguments.
        """
    )

    @Argument(help: ArgumentHelp("SQL to run (one or more statements separated by ';').", valueName: "sql"))
    var sql: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Read the SQL from a file instead.", valueName: "file"))
    var file: String?

    @Option(name: .long, help: ArgumentHelp("A value for the parameter :name, @name or $name (repeatable; NULL is NULL, numbers are numbers, anything else text). A parameter the SQL names without a value is an error.", valueName: "name=value"))
    var param: [String] = []

    @Option(help: ArgumentHelp("Output format: table, csv, tsv, json, markdown or line.", valueName: "format"))
    var format: OutputFormat = .table

    @Flag(name: .customLong("no-header"), help: "Leave out the header row (table, csv, tsv).")
    var noHeader = false

    @Option(name: .customLong("repeat"), help: ArgumentHelp("Run N times in this process; print the last run's results and a timing line on standard error (benchmarks).", valueName: "n"))
    var repeatCount = 1

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if repeatCount < 1 { throw ValidationError("--repeat must be at least 1") }
        if sql == nil && file == nil { throw ValidationError("give the SQL as an argument or with --file") }
        if sql != nil && file != nil { throw ValidationError("give either the SQL argument or --file, not both") }
        do { _ = try QueryOperation.parameters(param) } catch { throw ValidationError("\(error)") }
        if let file, !FileManager.default.isReadableFile(atPath: file) {
            throw ValidationError("\(file): cannot read the SQL file")
        }
    }

    func run() throws {
        let text: String
        if let file {
            guard let contents = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("\(file): cannot read the SQL file")
            }
            text = contents
        } else {
            text = sql ?? ""
        }
        let store: Store
        do {
            // Read-only unless this user may write the store (docs/store.md "Read-only opening"): a store one can
            // only read can be queried; writing SQL then fails with an error naming the store.
            let path = storeOptions.resolvedPath
            store = try Store(path: path, create: false, readOnly: !Store.isWritable(path: path))
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        let parameters = try QueryOperation.parameters(param)
        let isTerminal = isatty(1) == 1
        let renderer = ResultRenderer(format: format, headers: !noHeader, maxWidth: isTerminal && format == .table ? terminalWidth() : nil)
        do {
            try RepeatTiming.measure(runs: repeatCount) { isLast in
                try QueryOperation.forEachStatement(text, on: store, parameters: parameters) { statement in
                    let columnCount = statement.columnCount
                    var result = Store.QueryResult(columns: (0..<columnCount).map { statement.columnName($0) }, rows: [])
                    while try statement.step() { result.rows.append((0..<columnCount).map { statement.value($0) }) }
                    if columnCount > 0 && isLast {
                        do { try Output.standardOutput(renderer.render(result)) } catch { throw Output.failed(error) }
                    }
                }
            }
        } catch let exit as ExitCode {
            throw exit
        } catch let error as Store.QueryError where error.storeError.naming(store: store.path) != error.storeError {
            printError("\(error.storeError.naming(store: store.path))")   // busy, full, read-only, damaged: the environment
            throw ExitCode(2)
        } catch let error as StoreError {
            let named = error.naming(store: store.path)
            printError("\(named)")
            throw ExitCode(named == error ? 1 : 2)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        // histogram_summary results without bucket bounds: say why, once per distinct reason (docs/sql.md).
        for warning in store.takeHistogramBoundsWarnings() { printError("warning: \(warning)") }
    }

    private func terminalWidth() -> Int? {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }
}
