import Foundation

/// Errors thrown by `TelemetryExport`. Descriptions name the file or option at fault, never ping contents.
public enum ExportError: Error, Equatable, CustomStringConvertible {
    /// A system call on `path` failed.
    case io(path: String, operation: String, errno: Int32)
    /// The selection holds no ping: nothing is written (no `_SUCCESS`).
    case noPings(whereSQL: String?)
    /// `--partition-by` names a column that is not a dimension or a text `info` column of the store.
    case unknownPartitionColumn(name: String, known: [String])
    /// `--histograms` names a histogram no ping of the store carries (or the columns are not readable).
    case unknownHistogram(name: String)
    /// Two output columns would have the same name (engines compare names case-insensitively).
    case columnNameClash(name: String)
    /// A partition value whose escaped form does not fit in one path component (255 bytes).
    case partitionValueTooLong(column: String, bytes: Int)
    /// An integer histogram statistic beyond ±2^53 cannot be written as a DOUBLE without rounding.
    case statisticNotExact(histogram: String, documentID: String, value: Int64)
    /// The output directory holds an export with another schema (`_schema.json`).
    case schemaChanged(directory: String)
    /// The histogram column files could not be read (damaged or out of date).
    case histogramColumns(message: String)

    public var description: String {
        switch self {
        case let .io(path, operation, code):
            "\(path): \(operation) failed: \(String(cString: strerror(code)))"
        case let .noPings(whereSQL):
            "no pings selected" + (whereSQL.map { " by --where \($0)" } ?? " (the store is empty)") + ": nothing exported"
        case let .unknownPartitionColumn(name, known):
            "--partition-by \(name): not a dimension or text info column of the store (known: \(known.joined(separator: ", ")))"
        case let .unknownHistogram(name):
            "--histograms \(name): no ping in the store carries this histogram (see .histograms in the REPL)"
        case let .columnNameClash(name):
            "two exported columns would be named \(name) (names are compared case-insensitively)"
        case let .partitionValueTooLong(column, bytes):
            "a value of the partition column \(column) is \(bytes) bytes once escaped: longer than one path component (255)"
        case let .statisticNotExact(histogram, documentID, value):
            "document \(documentID): statistic \(value) of \(histogram) is beyond ±2^53 and would be rounded as a DOUBLE"
        case let .schemaChanged(directory):
            "\(directory): holds an export with another schema (_schema.json); export into a new directory or remove it"
        case let .histogramColumns(message):
            "histogram columns: \(message)"
        }
    }
}
