import ArgumentParser
import Foundation
import TelemetryShell

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a script of SQL and dot-commands non-interactively.",
        discussion: """
        FILE holds what the REPL accepts: SQL statements ending with ';' and dot-commands (docs/repl.md); '-' reads \
        standard input. A FILE that does not exist as given is looked up in ./queries/, with or without .sql. \
        --param name=value binds :name, @name and $name: integers and reals are numbers, NULL is NULL, anything \
        else (or 'quoted') is text; a parameter a statement names without a value is an error. Errors are printed \
        with FILE:LINE and the script goes on unless --bail.

        Exit status: 0 nothing failed; 1 a statement or command failed (or --bail stopped the script); 2 the store \
        cannot be opened; 64 bad arguments; 130 Ctrl-C.

        Examples:
          telemetry run os_distribution --mode csv
          telemetry run weekly.sql --param day=20131015
        """
    )

    @Argument(help: ArgumentHelp("The script to run, or - for standard input.", valueName: "file"))
    var file: String

    @Option(name: .long, help: ArgumentHelp("A parameter for the script (repeatable).", valueName: "name=value"))
    var param: [String] = []

    @Option(name: .long, help: ArgumentHelp("Output mode: table, csv, tsv, json, markdown or line.", valueName: "mode"))
    var mode: OutputFormat = .table

    @Flag(name: .customLong("no-header"), help: "Leave out column names (table, csv, tsv).")
    var noHeader = false

    @Flag(help: "Stop at the first error.")
    var bail = false

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        for item in param {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw ValidationError("--param wants name=value, got '\(item)'")
            }
        }
        if resolvedFile == nil { throw ValidationError("\(file): no such file (nor in queries/)") }
    }

    /// The script's path: as given, else `queries/NAME` or `queries/NAME.sql`.
    var resolvedFile: String? {
        if file == "-" || FileManager.default.fileExists(atPath: file) { return file }
        for candidate in ["queries/" + file, "queries/" + file + ".sql"] where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        return nil
    }

    func run() throws {
        guard let path = resolvedFile else { throw ValidationError("\(file): no such file (nor in queries/)") }
        let parameters: [(String, String)] = param.compactMap { item in
            guard let equals = item.firstIndex(of: "=") else { return nil }
            return (String(item[..<equals]), String(item[item.index(after: equals)...]))
        }
        var settings = ShellSettings()
        settings.mode = mode
        settings.headers = !noHeader
        settings.bail = bail
        let status = Repl.runScript(path: path, storePath: storeOptions.resolvedPath, parameters: parameters, settings: settings)
        if status != 0 { throw ExitCode(status) }
    }
}
