import ArgumentParser
import Foundation
import TelemetryStore

/// `telemetry reindex`: rebuilds the histogram column files from the payload JSON (docs/sql.md "Column files").
struct ReindexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract: "Rebuild the store's histogram column files from the pings' payload JSON.",
        discussion: """
        The column files next to the store (<store>.columns/<NAME>.<bucketCount>.col) are derived data: this \
        command deletes and rewrites them all, e.g. to upgrade a store made before they existed or after one was \
        damaged. Import and the SQL histogram functions also detect damaged columns (import rebuilds them).
        """
    )

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let path = storeOptions.resolvedPath
        do {
            let store = try Store(path: path, create: false)
            let started = Date()
            let (files, rows) = try ColumnMaintenance.rebuildAll(store: store)
            _ = try PingIndex.current(store: store)
            print("reindexed \(path): \(files) column file(s), \(rows) histogram row(s) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}
