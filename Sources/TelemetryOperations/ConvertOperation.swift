import Foundation
import TelemetryConvert
import TelemetryCore

/// The convert use case (`telemetry convert`): raw logs → storage layout under `outputDirectory`, with the
/// converter `ConverterFactory` builds. `serve --convert-into` uses the same factory, one file at a time.
public enum ConvertOperation {
    /// Converts `inputs` (raw logs or directories of them).
    /// - Parameters:
    ///   - notice: the up-front warning when `source` is empty.
    /// - Returns: the summary and the environment failure that stopped the run, if any.
    /// - Throws: what `Converter.run` throws (an output directory that cannot be created, …).
    public static func run(inputs: [String], outputDirectory: String, options: ConvertOptions, source: HistogramDefinitionSource,
                           notice: (String) -> Void = { _ in }, progress: ((ConvertProgress) -> Void)? = nil,
                           isCancelled: @escaping @Sendable () -> Bool = { false }) throws -> (summary: ConvertSummary, environmentFailure: String?) {
        if source.isEmpty { notice(HistogramDefinitionSource.noDefinitionsWarning) }
        let failure = EnvironmentFailure()
        let converter = ConverterFactory.converter(outputDirectory: outputDirectory, options: options, source: source, failure: failure)
        let summary = try converter.run(inputs: inputs, progress: progress, isCancelled: { isCancelled() || failure.message != nil })
        return (summary, failure.message)
    }
}

/// Text and JSON forms of a `ConvertSummary`, like the seed converter's closing report.
public enum ConvertReport {
    public static func text(_ s: ConvertSummary) -> String {
        let mbIn = Double(s.bytesIn) / 1e6, mbOut = Double(s.bytesOut) / 1e6
        var out = "Processed \(s.processed) records from \(s.inputFiles) file(s) in \(String(format: "%.2f", s.seconds)) s: "
        out += "\(s.converted) converted, \(s.rejected) rejected.\n"
        out += String(format: "MB in %.2f (%.1f MB/s), MB out %.2f uncompressed, %.2f compressed, %d file(s) written.\n",
                      mbIn, s.seconds > 0 ? mbIn / s.seconds : 0, mbOut, Double(s.compressedBytesOut) / 1e6, s.filesWritten.count)
        if !s.failures.isEmpty {
            out += "Failures: " + s.failures.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ") + ".\n"
        }
        if !s.warnings.isEmpty {
            out += "Warnings: " + s.warnings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ".\n"
        }
        if s.skippedBytes > 0 { out += "Skipped bytes: \(s.skippedBytes).\n" }
        if !s.unknownHistograms.isEmpty {
            let names = s.unknownHistograms.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            out += "Unknown histograms (dropped): " + names.prefix(20).map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
            out += names.count > 20 ? ", … (\(names.count) names)\n" : "\n"
        }
        if !s.mismatchedHistograms.isEmpty {
            let names = s.mismatchedHistograms.sorted { $0.key < $1.key }
            out += "Definition mismatches: " + names.prefix(20).map { "\($0.key) ×\($0.value)" }.joined(separator: ", ") + "\n"
        }
        for error in s.inputErrors.prefix(20) { out += "Input error: \(error)\n" }
        if s.alreadyConverted > 0 {
            out += "Already converted: \(s.alreadyConverted) input file(s) skipped (listed in the output's journal, .convert/journal.jsonl).\n"
        }
        if !s.recoveredFiles.isEmpty {
            out += "Recovered: \(s.recoveredFiles.count) file(s) published by finishing an interrupted run's commit.\n"
        }
        if s.removedStaleEntries > 0 { out += "Removed \(s.removedStaleEntries) work director(ies) or partial file(s) of dead runs.\n" }
        if !s.notConverted.isEmpty {
            out += "Not converted: \(s.notConverted.count) input file(s) stopped before their commit; run convert again to convert them.\n"
        }
        return out
    }

    public static func json(_ s: ConvertSummary) -> String {
        let object: [String: Any] = [
            "input_files": s.inputFiles, "processed": s.processed, "converted": s.converted, "rejected": s.rejected,
            "failures": Dictionary(uniqueKeysWithValues: s.failures.map { ($0.key.rawValue, $0.value) }),
            "warnings": s.warnings, "unknown_histograms": s.unknownHistograms, "definition_mismatches": s.mismatchedHistograms,
            "skipped_bytes": s.skippedBytes, "bytes_in": s.bytesIn, "bytes_out": s.bytesOut,
            "compressed_bytes_out": s.compressedBytesOut, "files_written": s.filesWritten, "input_errors": s.inputErrors,
            "already_converted": s.alreadyConverted, "not_converted": s.notConverted, "recovered_files": s.recoveredFiles,
            "removed_stale_entries": s.removedStaleEntries,
            "seconds": s.seconds,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
