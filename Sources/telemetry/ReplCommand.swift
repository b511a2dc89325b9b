import ArgumentParser
import Foundation
import TelemetryShell

struct ReplCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repl",
        abstract: "Open an interactive SQL session over the store (the default command).",
        discussion: """
        Type SQL statements ending with ';' (they may span lines) and dot-commands such as .tables, .dims, \
        .histograms, .mode csv, .import PATH, .filter FILE; .help lists them all (docs/repl.md). Tab completes \
        commands, tables, columns, histogram names, dimension values and file paths; history is kept in \
        ~/.telemetry_history. Ctrl-C cancels the running query or import; Ctrl-D exits.

        When standard input is not a terminal, it is read as a script: no prompts. Exit status: 0 nothing failed; \
        1 a statement or command failed (or .bail on stopped the script); 2 the store cannot be opened; 130 Ctrl-C \
        stopped a script.

        Examples:
          telemetry --store nightly.db
          echo 'SELECT count(*) FROM pings;' | telemetry
        """
    )

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let version = Telemetry.configuration.version
        let status = Repl.run(storePath: storeOptions.resolvedPath, banner: "telemetry \(version)")
        if status != 0 { throw ExitCode(status) }
    }
}
