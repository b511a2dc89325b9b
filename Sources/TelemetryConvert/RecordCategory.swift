/// Why `telemetry convert` rejected one record: exactly one category per rejected record
/// (`spec/payloads.md` §10.4). The raw values are the category names written to the errors file and the run
/// summary, so they never change.
/// A rejected record carries one of these in `PayloadRejection` (PayloadConverter.swift).
public enum RecordCategory: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Raw framing broken, gzip body fails to inflate or inflates past the per-record limit.
    case corruptedData = "corrupted_data"
    /// Zero-length body, before or after inflating.
    case emptyData = "empty_data"
    /// Submission path without exactly 6 components, or an empty document id; or a record whose partition would
    /// be written outside the output root (`StorageWriteError.invalidPath`).
    case invalidPath = "invalid_path"
    /// Submission path that is exactly one lower-case UUID (old clients that sent no dimensions).
    case uuidOnlyPath = "uuid_only_path"
    /// Payload not JSON, unsupported version, a missing required field, a histogram without `values`, or a
    /// definition that cannot be evaluated when the ping has no inline parameters.
    case conversionError = "conversion_error"
    /// Histograms present but no `info.revision`.
    case missingRevision = "missing_revision"
    /// Malformed revision URL (`Invalid revision URL: <url>`), including `/rev/`.
    case missingRevisionRepo = "missing_revision_repo"
    /// Well-formed revision whose definitions are neither cached nor obtainable from the histogram server.
    case unknownRevision = "unknown_revision"
    /// Histogram data that does not fit its definition (bucket key not a lower bound, non-integer or
    /// negative count).
    case badPayload = "bad_payload"
    /// Writing the converted record to the storage layout failed.
    case writeFailed = "write_failed"

    public var description: String { rawValue }
}
