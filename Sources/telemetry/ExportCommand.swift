import ArgumentParser
import Foundation
import TelemetryExport
import TelemetryOperations
import TelemetryStore

extension ExportOptions.Format: ExpressibleByArgument {}

/// `telemetry export`: the store as a Hive-partitioned Parquet (or gzip JSON lines) dataset (docs/export.md).
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the store's pings as a Hive-partitioned Parquet or JSON-lines dataset for Spark, Trino, DuckDB, pyarrow.",
        discussion: """
        Columns: document_id, the dimensions (submission_date as yyyy-MM-dd), the typed info columns, for each \
        histogram chosen with --histograms its bucket counts (list<int64>) and its five statistics (double), and \
        with --payload the payload JSON. Partition columns (default: submission_date) become directories \
        (submission_date=2014-07-15/...), not file columns. The store is opened read-only. _schema.json and \
        _ddl.sql (Trino, Spark) describe the dataset; _SUCCESS is written last. Re-running overwrites only the \
        partitions it selects. See docs/export.md.
        """
    )

    @Argument(help: ArgumentHelp("The dataset directory (created when missing).", valueName: "out"))
    var directory: String

    @Option(help: ArgumentHelp("parquet (default) or jsonl (gzip).", valueName: "format"))
    var format: ExportOptions.Format = .parquet

    @Option(name: .customLong("partition-by"),
            help: ArgumentHelp("Comma-separated partition columns, outermost first (dimensions or text info columns); '' for none. Default: submission_date.", valueName: "columns"))
    var partitionBy: String?

    @Option(name: .customLong("where"), help: ArgumentHelp("Export only the pings this SQL condition on `pings` keeps.", valueName: "sql"))
    var whereSQL: String?

    @Option(help: ArgumentHelp("Comma-separated histogram names, or 'all', to add as columns.", valueName: "names"))
    var histograms: String?

    @Flag(help: "Add the payload JSON as a column.")
    var payload = false

    @Option(name: .customLong("row-group-rows"), help: ArgumentHelp("Rows per Parquet row group.", valueName: "n"))
    var rowGroupRows = 100_000

    @OptionGroup var storeOptions: StoreOptions

    func validate() throws {
        if rowGroupRows < 1 { throw ValidationError("--row-group-rows must be at least 1") }
        if directory.isEmpty { throw ValidationError("give the dataset directory") }
        if let histograms, Self.split(histograms).isEmpty { throw ValidationError("--histograms needs names or 'all'") }
    }

    static func split(_ list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() throws {
        let selection: ExportOptions.Histograms
        switch histograms {
        case nil: selection = .none
        case "all"?: selection = .all
        case let names?: selection = .names(Self.split(names))
        }
        let options = ExportOptions(format: format, directory: directory, partitionBy: partitionBy.map(Self.split),
                                    whereSQL: whereSQL, histograms: selection, includePayload: payload, rowGroupRows: rowGroupRows)
        let started = Date()
        let summary: ExportSummary
        do {
            summary = try ExportOperation.run(storePath: storeOptions.resolvedPath, options: options)
        } catch let error as StoreError {
            printError("\(error)")
            throw ExitCode(2)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
        for column in summary.numericLookingPartitions {
            printError("warning: partitioned by \(column): engines that infer partition types read '01' as 1; give them _schema.json / _ddl.sql (docs/export.md)")
        }
        let by = summary.partitionBy.isEmpty ? "no partition columns" : "by " + summary.partitionBy.joined(separator: ", ")
        print("exported \(summary.pings) ping(s) into \(summary.files) \(format.rawValue) file(s) in \(summary.partitions) partition(s) (\(by)) in "
              + String(format: "%.2f", Date().timeIntervalSince(started)) + " s: \(directory)")
    }
}
