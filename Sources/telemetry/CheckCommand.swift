import ArgumentParser
import Foundation
import TelemetryStore

/// `telemetry check`: verifies a store without changing it (docs/store.md "Checking a store").
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify the store, its histogram column files and ping index; print what repairs any damage.",
        discussion: """
        Runs SQLite's quick_check (--full: integrity_check, which also compares every index entry with its row), \
        checks that every imported file's rows are present, the column files' committed lengths and CRC-64, and \
        the ping index. Prints one line per check and the commands that repair what is damaged. Opens the store \
        read-only; exit status 1 when anything is damaged, 2 when the store cannot be read.
        """
    )

    @Flag(help: "integrity_check instead of quick_check: slower, also finds damaged index entries.")
    var full = false

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let path = storeOptions.resolvedPath
        let report: StoreCheck.Report
        do {
            let store = try Store(path: path, create: false, readOnly: true)
            report = try StoreCheck.run(store: store, full: full)
        } catch let error as StoreError {
            printError("\(error.naming(store: path))")
            throw ExitCode(2)
        }
        do { try Output.standardOutput(report.text) } catch { throw Output.failed(error) }
        if report.hasDamage { throw ExitCode(1) }
    }
}
