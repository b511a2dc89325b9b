import TelemetryExport

/// `telemetry export` (docs/export.md): the store as a Hive-partitioned Parquet or JSON-lines dataset.
public enum ExportOperation {
    /// Opens the store at `storePath` read-only and writes the dataset `options` describe (`Exporter.run`).
    /// - Throws: `StoreError` when the store cannot be opened; `ExportError` (`.noPings` before anything is
    ///   written when the selection is empty), as `Exporter.run` does.
    public static func run(storePath: String, options: ExportOptions) throws -> ExportSummary {
        try Exporter(storePath: storePath, options: options).run()
    }
}
