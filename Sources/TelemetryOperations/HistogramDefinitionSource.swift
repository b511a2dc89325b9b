import Foundation
import TelemetryConvert
import TelemetryStore

/// Where histogram definitions (`Histograms.json` per revision, `spec/histograms.md` §6) come from: a cache
/// directory laid out `<dir>/<repo>/<revision>/Histograms.json` and, optionally, a histogram server to fetch
/// revisions missing from it. Empty: no definitions at all (pings with histograms are `unknown_revision`).
public struct HistogramDefinitionSource: Sendable, Equatable {
    /// The cache directory, or nil.
    public var directory: String?
    /// Base URL of the histogram server, or nil (offline).
    public var server: String?

    public init(directory: String?, server: String?) {
        self.directory = directory
        self.server = server
    }

    /// The source a store remembers (docs/sql.md "Histogram cache").
    public init(_ setting: HistogramCacheSetting) {
        self.init(directory: setting.directory, server: setting.server)
    }

    /// True when there is neither a directory nor a server.
    public var isEmpty: Bool { directory == nil && server == nil }

    /// The warning printed before converting with no definitions (`convert`, `serve --convert-into`, `import`).
    public static let noDefinitionsWarning =
        "warning: no --histogram-cache or --histogram-server: pings with histograms will be unknown_revision"

    /// Why the definitions of `revisionURL` were not found, in the terms of this source: what was missing and
    /// where it was looked for. Appended to the `unknown_revision` reason (whose text, `Failed to fetch histograms
    /// for URL: <url>`, `spec/payloads.md` §10.3 fixes).
    public func whyUnavailable(revisionURL: String) -> String {
        let revision = try? RevisionURL(parsing: revisionURL)
        let what = revision.map { "no Histograms.json for revision \($0.revision) of \($0.repository)" } ?? "no Histograms.json for \(revisionURL)"
        switch (directory, server) {
        case (nil, nil):
            return "\(what): no --histogram-cache or --histogram-server given"
        case let (directory?, nil):
            let path = revision.map { $0.cachePath(in: directory) } ?? directory
            return "\(what): \(path) does not exist and no --histogram-server was given"
        case let (nil, server?):
            return "\(what): not obtainable from the histogram server \(server) (no --histogram-cache given)"
        case let (directory?, server?):
            let path = revision.map { $0.cachePath(in: directory) } ?? directory
            return "\(what): \(path) does not exist and the histogram server \(server) did not provide it"
        }
    }
}

/// The first environment failure met by a worker thread (e.g. an unreadable histogram cache file), which stops
/// the run: the command reports it and exits 2.
public final class EnvironmentFailure: @unchecked Sendable {   // `lock` guards `error`
    private let lock = NSLock()
    private var error: String?

    public init() {}

    /// Keeps the first message only.
    public func record(_ message: String) { lock.lock(); if error == nil { error = message }; lock.unlock() }
    public var message: String? { lock.lock(); defer { lock.unlock() }; return error }
}

/// Builds the converters of every command and dot-command: the one place outside TelemetryConvert that
/// constructs a `PayloadConverter` or a `Converter` (import of raw logs, `convert`, `serve --convert-into`).
public enum ConverterFactory {
    /// A payload converter compacting histograms against `source` (`HistogramCompactor.compacting` over one
    /// `RevisionCache`). A revision found nowhere is rejected as `unknown_revision` with the §10.3 text followed by
    /// what was missing (`HistogramDefinitionSource.whyUnavailable`); an environment failure (an unreadable or
    /// invalid cache file) is recorded in `failure`.
    public static func payloadConverter(source: HistogramDefinitionSource, failure: EnvironmentFailure) -> PayloadConverter {
        let cache = RevisionCache(cacheDirectory: source.directory, histogramServer: source.server)
        let compact = HistogramCompactor.compacting(with: cache, environmentFailure: { failure.record("\($0)") })
        return PayloadConverter(compact: { histograms, revision throws(PayloadRejection) in
            do throws(PayloadRejection) {
                return try compact(histograms, revision)
            } catch {
                guard error.category == .unknownRevision else { throw error }
                throw PayloadRejection(.unknownRevision, "\(error.message) (\(source.whyUnavailable(revisionURL: revision)))")
            }
        })
    }

    /// The storage-layout converter of `convert` and `serve --convert-into`, writing under `outputDirectory`.
    public static func converter(outputDirectory: String, options: ConvertOptions, source: HistogramDefinitionSource,
                                 failure: EnvironmentFailure) -> Converter {
        Converter(outputDirectory: outputDirectory, options: options, payloadConverter: payloadConverter(source: source, failure: failure))
    }
}
