import ArgumentParser
import Foundation
import TelemetryCore
import TelemetryShell
import TelemetryStore

@main
struct Telemetry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telemetry",
        abstract: "Analyse Firefox-style telemetry on your own machine.",
        discussion: """
        Import storage-format files (the layout Mozilla's telemetry-server wrote) into a local store, then \
        query it with SQL. The store is ./telemetry.db unless --store or TELEMETRY_STORE says otherwise.

        Examples:
          telemetry import datasets/sample/storage
          telemetry query "SELECT os, count(*) FROM pings GROUP BY os"
          telemetry query --file queries/os_distribution.sql --format csv
        """,
        version: "0.1.0",
        subcommands: [ImportCommand.self, QueryCommand.self, ConvertCommand.self, ServeCommand.self, ReplCommand.self, RunCommand.self,
                      ReindexCommand.self, JobCommand.self, MergeCommand.self, CheckCommand.self,
                      ExportCommand.self],
        defaultSubcommand: ReplCommand.self
    )
}

/// Options shared by commands that use a store.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Store file (default: $TELEMETRY_STORE, else ./telemetry.db).", valueName: "path"))
    var store: String?

    var resolvedPath: String {
        if let store, !store.isEmpty { return store }
        if let env = ProcessInfo.processInfo.environment["TELEMETRY_STORE"], !env.isEmpty { return env }
        return Store.defaultPath
    }
}

/// The writer-lock option of commands that write a store (docs/store.md "One writer at a time").
struct WriterOptions: ParsableArguments {
    @Option(name: .customLong("wait"), help: ArgumentHelp("Seconds to wait for another process writing the store (an import, a reindex) before giving up; 0 fails at once.", valueName: "seconds"))
    var waitSeconds: Double = Store.defaultWriterWaitSeconds

    func validate() throws {
        guard waitSeconds >= 0, waitSeconds.isFinite else { throw ValidationError("--wait must be a number of seconds, 0 or more") }
    }
}

/// Prints `message` to standard error, prefixed like other command-line tools.
func printError(_ message: String) {
    try? Output.write("telemetry: \(message)\n", to: 2, name: "standard error")
}

/// Set by SIGINT; polled by long operations.
final class InterruptFlag: @unchecked Sendable {   // `lock` guards `raised`
    private let lock = NSLock()
    private var raised = false
    private var source: DispatchSourceSignal?

    /// Installs a SIGINT handler that raises the flag (a second Ctrl-C exits at once).
    func install() {
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [self] in
            lock.lock()
            let again = raised
            raised = true
            lock.unlock()
            if again { _exit(130) }
            try? Output.write("\ninterrupting: finishing the current file's rollback (Ctrl-C again to quit now)\n", to: 2, name: "standard error")
        }
        source.resume()
        self.source = source
    }

    var isRaised: Bool { lock.lock(); defer { lock.unlock() }; return raised }
}
