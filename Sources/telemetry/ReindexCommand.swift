import ArgumentParser
import Foundation
import TelemetryStore

/// `telemetry reindex`: rebuilds the histogram column files and the ping index from the payload JSON
/// (docs/sql.md "Column files", docs/jobs.md "The ping index"); can also set the remembered histogram cache.
struct ReindexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract: "Rebuild the store's histogram column files and ping index from the pings' payload JSON.",
        discussion: """
        The column files next to the store (<store>.columns/<NAME>.<bucketCount>.col) and the jobs' ping index \
        (<store>.pingindex) are derived data: this command deletes and rewrites them, e.g. to upgrade a store made \
        before they existed, after 'import --no-histogram-columns', or after one was damaged. Import and the SQL \
        histogram functions also detect damaged columns (import rebuilds them). With --histogram-cache or \
        --histogram-server it also sets the histogram cache the store remembers for bound-based statistics and \
        histogram kinds (docs/sql.md); the remembered setting is printed.

        Exit status: 0 rebuilt; 1 the store cannot be opened or rebuilt; 64 bad arguments.
        """
    )

    @Option(help: ArgumentHelp("Remember this histogram cache directory (<repo>/<revision>/Histograms.json) in the store.", valueName: "dir"))
    var histogramCache: String?

    @Option(help: ArgumentHelp("Remember this histogram server URL in the store.", valueName: "url"))
    var histogramServer: String?

    @OptionGroup var storeOptions: StoreOptions

    @OptionGroup var writer: WriterOptions

    func validate() throws {
        var isDirectory: ObjCBool = false
        if let histogramCache, !(FileManager.default.fileExists(atPath: histogramCache, isDirectory: &isDirectory) && isDirectory.boolValue) {
            throw ValidationError("--histogram-cache \(histogramCache): no such directory")
        }
        if let histogramServer, !(histogramServer.hasPrefix("http://") || histogramServer.hasPrefix("https://")) {
            throw ValidationError("--histogram-server must be an http(s) URL")
        }
    }

    func run() throws {
        let path = storeOptions.resolvedPath
        do {
            let store = try Store(path: path, create: false, writerWaitSeconds: writer.waitSeconds, onWriterWait: { printError($0) })
            if histogramCache != nil || histogramServer != nil {
                try store.rememberHistogramCache(directory: histogramCache, server: histogramServer)
            }
            let setting = try store.histogramCacheSetting()
            print("histogram cache: \(setting.directory ?? "none")\(setting.server.map { ", server \($0)" } ?? "")")
            let started = Date()
            // Both under one writer lock: an import waits for the whole reindex, never interleaves with it.
            let (files, rows) = try store.withWriterLock("reindex") {
                let rebuilt = try ColumnMaintenance.rebuildAll(store: store)
                _ = try PingIndex.current(store: store, requireSaved: true)
                return rebuilt
            }
            print("reindexed \(path): \(files) column file(s), \(rows) histogram row(s) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
    }
}
