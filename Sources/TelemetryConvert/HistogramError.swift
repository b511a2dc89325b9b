/// Errors thrown by the histogram-definition side of `TelemetryConvert`: reading `Histograms.json` and
/// bucket-format files, evaluating definitions, parsing revision URLs. File problems are environment errors (the
/// command fails naming the file); the two revision cases become record rejections through `rejection`.
/// Descriptions never contain ping contents.
public enum HistogramError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No file at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read.
    case unreadableFile(path: String, detail: String)
    /// A `Histograms.json` or bucket-format file that is not JSON; `detail` gives the byte offset.
    case notJSON(path: String, detail: String)
    /// JSON with the wrong structure for a `Histograms.json` or bucket-format file
    /// (e.g. `histograms element must be an object`, `Key: 'NAME' missing kind element`).
    case invalidStructure(path: String, reason: String)
    /// A definition whose bounds cannot be computed (unknown kind, unevaluable expression, impossible
    /// parameters). `name` is nil for a definition given without one.
    case invalidDefinition(name: String?, reason: String)
    /// No definition of that name (after the `STARTUP_` rule).
    case unknownHistogram(name: String)
    /// A string that does not match the revision-URL pattern (`spec/payloads.md` §5).
    case invalidRevisionURL(url: String)
    /// Writing a fetched `Histograms.json` into the cache directory failed.
    case cacheWriteFailed(path: String, detail: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path): "\(path): no such file"
        case let .unreadableFile(path, detail): "\(path): cannot read: \(detail)"
        case let .notJSON(path, detail): "\(path): not a JSON document: \(detail)"
        case let .invalidStructure(path, reason): "\(path): \(reason)"
        case let .invalidDefinition(name?, reason): "Key: '\(name)' \(reason)"
        case let .invalidDefinition(nil, reason): "invalid histogram definition: \(reason)"
        case let .unknownHistogram(name): "no histogram definition found for \(name)"
        case let .invalidRevisionURL(url): "Invalid revision URL: \(url)"
        case let .cacheWriteFailed(path, detail): "\(path): cannot write histogram cache file: \(detail)"
        }
    }

    /// The record rejection this error means when it comes from a ping's revision URL
    /// (`Invalid revision URL: <url>` → `missing_revision_repo`, `spec/payloads.md` §5); nil for environment errors.
    public var rejection: PayloadRejection? {
        if case .invalidRevisionURL = self { return PayloadRejection(.missingRevisionRepo, description) }
        return nil
    }
}
