import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Counters of a `RevisionCache`, for the run summary.
public struct RevisionCacheStatistics: Sendable, Equatable {
    /// Lookups answered from memory (definitions already parsed).
    public var memoryHits = 0
    /// Revisions parsed from the cache directory.
    public var diskLoads = 0
    /// Requests sent to the histogram server.
    public var fetches = 0
    /// Requests that did not yield definitions (unreachable, timeout, non-200 status, body not a definitions file).
    public var fetchFailures = 0
    /// Lookups that ended in `unknown_revision` (one per record asking; includes the remembered failures).
    public var unavailableLookups = 0
    /// Fetched files that could not be saved in the cache directory (the definitions were still used).
    public var cacheWriteFailures = 0

    public init() {}
}

/// The `Histograms.json` definitions per revision, shared by every converter thread (`spec/histograms.md` §6,
/// `spec/payloads.md` §5).
///
/// Lookup order: memory (parsed definitions, bounds computed once per histogram) → the cache directory
/// (`--histogram-cache DIR`, `<dir>/<repo>/<revision>/Histograms.json`, used as is) → only when a server is
/// configured (`--histogram-server URL`), `GET <server>/histograms?revision=<percent-encoded revision URL>`; a
/// fetched text gets the seed's substitutions (§1.1) and is saved into the cache directory atomically (temp file
/// + rename) before use. Without a server the cache never touches the network.
///
/// A revision that cannot be obtained is remembered for the life of the cache (negative memo), so an unreachable
/// server is asked once per revision, not once per record; every lookup of it still throws, so the caller counts
/// each affected record.
///
/// - Isolation: thread-safe. `lock` guards `entries` and `counters`; each entry's own lock guards its state and
///   is held while that revision loads, so concurrent lookups of one revision wait for a single load while
///   other revisions proceed. Lock order: an entry lock may be held while taking `lock`, never the reverse.
/// - Important: a fetch blocks the calling thread up to `fetchTimeout`; call from converter threads.
public final class RevisionCache: @unchecked Sendable {   // see Isolation: `lock` and per-entry locks
    /// The cache directory, or nil for none.
    public let cacheDirectory: String?
    /// The histogram server's base URL, or nil for offline.
    public let histogramServer: String?
    /// Per-request timeout of a fetch.
    public let fetchTimeout: Duration

    /// Largest response accepted from a histogram server (real files are about 150 KB).
    public static let maxResponseBytes = 64 << 20

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var counters = RevisionCacheStatistics()
    private let session: URLSession?

    /// - Parameters:
    ///   - cacheDirectory: `--histogram-cache DIR`; nil for no disk cache.
    ///   - histogramServer: `--histogram-server URL`; nil (the default) means offline: no network access at all.
    ///   - fetchTimeout: per-request timeout of a fetch.
    public init(cacheDirectory: String?, histogramServer: String? = nil, fetchTimeout: Duration = .seconds(10)) {
        self.cacheDirectory = cacheDirectory
        self.histogramServer = histogramServer
        self.fetchTimeout = fetchTimeout
        if histogramServer != nil {
            let configuration = URLSessionConfiguration.ephemeral
            configuration.timeoutIntervalForRequest = fetchTimeout.seconds
            configuration.timeoutIntervalForResource = fetchTimeout.seconds
            configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
            configuration.urlCache = nil
            session = URLSession(configuration: configuration)
        } else {
            session = nil
        }
    }

    deinit { session?.finishTasksAndInvalidate() }

    /// A snapshot of the counters.
    public var statistics: RevisionCacheStatistics { lock.withLock { counters } }

    /// The definitions for a ping's revision URL.
    /// - Throws: `PayloadRejection` for the record: `missing_revision_repo` (`Invalid revision URL: <url>`) or
    ///   `unknown_revision` (`Failed to fetch histograms for URL: <url>`); `HistogramError` for a cache file that
    ///   is unreadable, not JSON or not an object (an environment error: the command fails naming the file).
    public func definitions(forRevisionURL url: String) throws -> HistogramDefinitions {
        let revision: RevisionURL
        do {
            revision = try RevisionURL(parsing: url)
        } catch {
            throw error.rejection ?? PayloadRejection(.missingRevisionRepo, error.description)
        }
        return try definitions(for: revision)
    }

    /// The definitions for `revision` (see `definitions(forRevisionURL:)`; the host is ignored, so one memo
    /// entry serves every URL naming the same repository and revision).
    /// - Throws: `PayloadRejection` (`unknown_revision`) or `HistogramError`, as above.
    /// - Complexity: a memory hit is two lock acquisitions and a hash lookup.
    public func definitions(for revision: RevisionURL) throws -> HistogramDefinitions {
        let key = revision.repository + "\n" + revision.revision
        let entry = lock.withLock {
            if let entry = entries[key] { return entry }
            let entry = Entry()
            entries[key] = entry
            return entry
        }
        return try entry.lock.withLock { () throws -> HistogramDefinitions in
            switch entry.state {
            case let .loaded(definitions):
                count { $0.memoryHits += 1 }
                return definitions
            case .unavailable:
                count { $0.unavailableLookups += 1 }
                throw Self.unavailable(revision)
            case let .failed(error):
                throw error
            case .pending:
                do throws(HistogramError) {
                    let definitions = try load(revision)
                    entry.state = definitions.map { .loaded($0) } ?? .unavailable
                } catch {
                    entry.state = .failed(error)
                    throw error
                }
                if case let .loaded(definitions) = entry.state { return definitions }
                count { $0.unavailableLookups += 1 }
                throw Self.unavailable(revision)
            }
        }
    }

    private static func unavailable(_ revision: RevisionURL) -> PayloadRejection {
        PayloadRejection(.unknownRevision, "Failed to fetch histograms for URL: \(revision.url)")
    }

    private func count(_ update: (inout RevisionCacheStatistics) -> Void) {
        lock.withLock { update(&counters) }
    }

    /// Disk, then server. Nil when neither has the revision.
    /// - Throws: `HistogramError` for a cache file that cannot be read or parsed.
    private func load(_ revision: RevisionURL) throws(HistogramError) -> HistogramDefinitions? {
        if let cacheDirectory {
            let path = revision.cachePath(in: cacheDirectory)
            if FileManager.default.fileExists(atPath: path) {
                let definitions = try HistogramDefinitions.load(path: path)
                count { $0.diskLoads += 1 }
                return definitions
            }
        }
        guard let session, let histogramServer, let url = revision.histogramServerURL(server: histogramServer) else {
            return nil
        }
        count { $0.fetches += 1 }
        guard let body = fetch(url, with: session),
              case let text = String(decoding: body, as: UTF8.self), text.utf8.elementsEqual(body)   // valid UTF-8
        else {
            count { $0.fetchFailures += 1 }
            return nil
        }
        let substituted = HistogramDefinitions.applyingServerSubstitutions(to: text)
        guard let definitions = try? HistogramDefinitions.parse(Array(substituted.utf8), source: url.absoluteString) else {
            count { $0.fetchFailures += 1 }
            return nil
        }
        if let cacheDirectory {
            do {
                try Self.writeAtomically(substituted, to: revision.cachePath(in: cacheDirectory))
            } catch {
                count { $0.cacheWriteFailures += 1 }
            }
        }
        return definitions
    }

    /// The body of a 200 answer, or nil (transport error, timeout, other status, oversized body).
    private func fetch(_ url: URL, with session: URLSession) -> Data? {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData,
                                 timeoutInterval: fetchTimeout.seconds)
        request.httpMethod = "GET"
        let reply = FetchReply()
        let done = DispatchSemaphore(value: 0)
        let task = session.dataTask(with: request) { data, response, _ in
            reply.body = data
            reply.status = (response as? HTTPURLResponse)?.statusCode
            done.signal()
        }
        task.resume()
        // URLSession enforces the timeout; the margin only guards against a callback that never comes.
        if done.wait(timeout: .now() + fetchTimeout.seconds + 5) == .timedOut {
            task.cancel()
            return nil
        }
        guard reply.status == 200, let body = reply.body, body.count <= Self.maxResponseBytes else { return nil }
        return body
    }

    /// Writes `text` to a temporary file beside `path`, then renames it over `path`, so concurrent readers
    /// (and other processes sharing the cache) see either no file or the whole file.
    /// - Throws: `HistogramError.cacheWriteFailed`.
    static func writeAtomically(_ text: String, to path: String) throws(HistogramError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = "\(directory)/.Histograms.json.\(ProcessInfo.processInfo.processIdentifier).\(UUID().uuidString).tmp"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw .cacheWriteFailed(path: path, detail: error.localizedDescription)
        }
        guard rename(temporary, path) == 0 else {
            let detail = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw .cacheWriteFailed(path: path, detail: detail)
        }
    }

    /// One revision's state.
    private final class Entry: @unchecked Sendable {   // `lock` guards `state`
        enum State {
            case pending
            case loaded(HistogramDefinitions)
            /// Not cached and not obtainable: remembered for the run.
            case unavailable
            /// The cache file is broken: an environment error, rethrown to every caller.
            case failed(HistogramError)
        }
        let lock = NSLock()
        var state = State.pending
    }

    /// The completion handler's results.
    private final class FetchReply: @unchecked Sendable {   // written before `done.signal()`, read after `done.wait()`
        var body: Data?
        var status: Int?
    }
}

extension Duration {
    /// The duration in seconds, as Foundation's time intervals want it.
    fileprivate var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
