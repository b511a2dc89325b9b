import Foundation
import TelemetryConvert

// Bucket lower bounds for stored histograms, from the `Histograms.json` of each ping's revision, and the
// statistics derived from them (docs/sql.md "Bound-based mean and percentiles").

/// Where a store finds histogram definitions: the histogram cache (and server) remembered in `store_meta`
/// (keys `histogram_cache`, `histogram_server`), set by `telemetry import --histogram-cache DIR
/// [--histogram-server URL]` through `Store.rememberHistogramCache(directory:server:)`.
public struct HistogramCacheSetting: Sendable, Equatable {
    /// Absolute path of the cache directory (`<dir>/<repo>/<revision>/Histograms.json`), or nil.
    public var directory: String?
    /// Base URL of a histogram server to fetch revisions missing from the cache, or nil (offline).
    public var server: String?

    public init(directory: String?, server: String?) {
        self.directory = directory
        self.server = server
    }

    /// True when neither a directory nor a server is remembered: no bounds can be found.
    public var isEmpty: Bool { directory == nil && server == nil }
}

extension Store {
    /// `store_meta` key of the remembered histogram cache directory (absolute path).
    public static let histogramCacheMetaKey = "histogram_cache"
    /// `store_meta` key of the remembered histogram server URL.
    public static let histogramServerMetaKey = "histogram_server"

    /// The histogram cache and server this store remembers (both nil for a store never given one).
    /// - Throws: `StoreError.sqlite`.
    public func histogramCacheSetting() throws -> HistogramCacheSetting {
        HistogramCacheSetting(
            directory: try connection.scalarText("SELECT value FROM store_meta WHERE key = '\(Self.histogramCacheMetaKey)'"),
            server: try connection.scalarText("SELECT value FROM store_meta WHERE key = '\(Self.histogramServerMetaKey)'"))
    }

    /// Remembers a histogram cache directory and/or server in `store_meta`; a nil argument keeps what the store
    /// remembers for that key, a new value replaces it. `directory` is stored as an absolute, standardised path
    /// (a relative one is resolved against the current directory); it need not exist yet.
    /// The SQL functions see the new setting from their next statement on.
    /// - Throws: `StoreError.sqlite` (e.g. a read-only store).
    public func rememberHistogramCache(directory: String?, server: String?) throws {
        try withWriterLock("histogram cache setting") { try rememberHistogramCacheLocked(directory: directory, server: server) }
    }

    private func rememberHistogramCacheLocked(directory: String?, server: String?) throws {
        let statement = try connection.prepare("INSERT OR REPLACE INTO store_meta(key, value) VALUES (?1, ?2)")
        if let directory {
            try statement.bind(Self.histogramCacheMetaKey, at: 1)
            try statement.bind(URL(fileURLWithPath: directory).standardizedFileURL.path, at: 2)
            try statement.step()
            statement.reset()
        }
        if let server {
            try statement.bind(Self.histogramServerMetaKey, at: 1)
            try statement.bind(server, at: 2)
            try statement.step()
        }
        histogramDefinitionsChanged()
    }
}

/// Why a histogram has no bucket lower bounds; the text (`description`) is what `histogram_summary` reports
/// in `"reason"` and `telemetry query` prints as a warning.
public enum MissingBoundsReason: Sendable, Equatable, CustomStringConvertible {
    /// The store remembers neither a histogram cache nor a server.
    case noHistogramCache
    /// A summed ping has no `info.revision` (the `revision` column is NULL or empty).
    case noRevision
    /// The revision is not a revision URL (`spec/payloads.md` §5).
    case invalidRevision(url: String)
    /// The cache (and the server, when one is remembered) does not have the revision.
    case revisionNotCached(url: String, directory: String?, server: String?)
    /// The revision's cached `Histograms.json` cannot be read or parsed (`detail` names the file).
    case unreadableDefinitions(url: String, detail: String)
    /// The revision's `Histograms.json` has no definition of the histogram (after the `STARTUP_` rule).
    case unknownHistogram(name: String, url: String)
    /// The definition exists but its bounds cannot be computed.
    case unevaluableDefinition(name: String, url: String, detail: String)
    /// The definition's bucket count is not the stored histogram's.
    case layoutDiffers(name: String, url: String, definitionBuckets: Int, columnBuckets: Int)
    /// Two summed pings' revisions give different lower bounds for the same layout.
    case revisionsDisagree(name: String, bucketCount: Int, firstURL: String, otherURL: String)

    public var description: String {
        switch self {
        case .noHistogramCache:
            "the store remembers no histogram cache (import with --histogram-cache DIR)"
        case .noRevision:
            "ping has no revision (info.revision)"
        case let .invalidRevision(url):
            "revision \(url) is not a revision URL"
        case let .revisionNotCached(url, directory, server):
            "revision \(url) not in the histogram cache \(directory ?? "(none)")"
                + (server.map { " nor on the histogram server \($0)" } ?? "")
        case let .unreadableDefinitions(url, detail):
            "revision \(url): cannot use its Histograms.json: \(detail)"
        case let .unknownHistogram(name, url):
            "histogram \(name) is not defined in revision \(url)"
        case let .unevaluableDefinition(name, url, detail):
            "histogram \(name) in revision \(url) has no computable bounds: \(detail)"
        case let .layoutDiffers(name, url, definitionBuckets, columnBuckets):
            "layout differs: the definition of \(name) in revision \(url) has \(definitionBuckets) buckets, the column \(columnBuckets)"
        case let .revisionsDisagree(name, bucketCount, first, other):
            "revisions \(first) and \(other) give different lower bounds for \(name) (\(bucketCount) buckets)"
        }
    }
}

/// The bucket layout of one histogram in one ping, or why there is none.
public enum HistogramBoundsLookup: Sendable, Equatable {
    /// The definition: `kind` and `bucketBounds` (lower bounds, `bucketCount` of them; `spec/histograms.md` §3).
    case bounds(HistogramDefinition)
    case unavailable(MissingBoundsReason)
}

/// Bucket lower bounds per (histogram name, revision URL), from the histogram cache a store remembers.
/// Used by the SQL functions (`histogram_summary`, docs/sql.md) and by jobs.
///
/// Definitions are loaded through a `RevisionCache` (memory → cache directory → the remembered server, if any;
/// a revision that cannot be had is remembered as missing), and each (name, revision) answer is memoised, so a
/// lookup after the first is one lock and one hash lookup. A fetch from a remembered server blocks the caller
/// up to the cache's timeout, once per revision.
///
/// - Isolation: thread-safe (`@unchecked Sendable`): `lock` guards `memo`; `RevisionCache` is thread-safe.
///   Jobs may share one instance across partitions; the SQL functions keep one per connection.
public final class StoreHistogramDefinitions: @unchecked Sendable {   // `lock` guards `memo`
    /// Where the definitions come from.
    public let setting: HistogramCacheSetting
    private let revisions: RevisionCache?
    private let lock = NSLock()
    private var memo: [String: HistogramBoundsLookup] = [:]

    /// Definitions from `setting` (nothing to look in when it is empty).
    public init(setting: HistogramCacheSetting) {
        self.setting = setting
        revisions = setting.isEmpty ? nil : RevisionCache(cacheDirectory: setting.directory, histogramServer: setting.server)
    }

    /// Definitions from the histogram cache `store` remembers.
    /// - Throws: `StoreError.sqlite` reading `store_meta`.
    public convenience init(store: Store) throws {
        self.init(setting: try store.histogramCacheSetting())
    }

    /// The lower bounds of histogram `name` as a ping of `revisionURL` defines it, checked against the stored
    /// layout's `bucketCount`.
    /// - Parameter revisionURL: the ping's `info.revision` (the `revision` column); nil or empty = none.
    /// - Returns: `.bounds(definition)` with `definition.bucketCount == bucketCount`, or `.unavailable(reason)`.
    /// - Complexity: first call per revision reads and parses its `Histograms.json` (or fetches it); then O(1)
    ///   amortised (hashing the name and URL).
    public func bounds(forHistogram name: String, revisionURL: String?, bucketCount: Int) -> HistogramBoundsLookup {
        guard let revisions else { return .unavailable(.noHistogramCache) }
        guard let revisionURL, !revisionURL.isEmpty else { return .unavailable(.noRevision) }
        let key = name + "\n" + revisionURL
        let found: HistogramBoundsLookup
        if let memoised = lock.withLock({ memo[key] }) {
            found = memoised
        } else {
            found = Self.load(name, revisionURL, from: revisions, setting: setting)
            lock.withLock { memo[key] = found }
        }
        if case let .bounds(definition) = found, definition.bucketCount != bucketCount {
            return .unavailable(.layoutDiffers(name: name, url: revisionURL, definitionBuckets: definition.bucketCount,
                                               columnBuckets: bucketCount))
        }
        return found
    }

    private static func load(_ name: String, _ url: String, from revisions: RevisionCache,
                             setting: HistogramCacheSetting) -> HistogramBoundsLookup {
        let definitions: HistogramDefinitions
        do {
            definitions = try revisions.definitions(forRevisionURL: url)
        } catch let rejection as PayloadRejection {
            return .unavailable(rejection.category == .unknownRevision
                ? .revisionNotCached(url: url, directory: setting.directory, server: setting.server)
                : .invalidRevision(url: url))
        } catch {
            return .unavailable(.unreadableDefinitions(url: url, detail: "\(error)"))
        }
        do {
            return .bounds(try definitions.definition(named: name))
        } catch {
            if case .unknownHistogram = error { return .unavailable(.unknownHistogram(name: name, url: url)) }
            if case let .invalidDefinition(_, reason) = error {
                return .unavailable(.unevaluableDefinition(name: name, url: url, detail: reason))
            }
            return .unavailable(.unevaluableDefinition(name: name, url: url, detail: error.description))
        }
    }
}

/// The bounds of a group of summed pings: the common lower bounds of every ping's revision, or the first
/// reason there are none (a ping without bounds, or two revisions whose bounds differ).
///
/// - Merge: order-independent for the bounds; with several reasons, the receiver's first one is kept.
/// - Complexity: `add` compares bound arrays (O(bucket count)) only when a ping's definition differs from the
///   first one's; callers skip repeated revisions.
public struct GroupBounds: Sendable, Equatable {
    /// The common definition and the revision it was first seen in, or nil (none seen yet, or `reason`).
    public private(set) var definition: HistogramDefinition?
    public private(set) var firstRevisionURL: String?
    /// Set once bounds are unavailable for the group; then `definition` is nil and stays nil.
    public private(set) var reason: MissingBoundsReason?

    public init() {}

    /// True once a reason is known: further pings cannot bring bounds back.
    public var isUnavailable: Bool { reason != nil }

    /// Adds one ping's lookup for histogram `name` (its `revisionURL` is named in a disagreement reason).
    public mutating func add(_ lookup: HistogramBoundsLookup, name: String, revisionURL: String?) {
        guard reason == nil else { return }
        switch lookup {
        case let .unavailable(why):
            (definition, reason) = (nil, why)
        case let .bounds(found):
            guard let definition else {
                (self.definition, firstRevisionURL) = (found, revisionURL)
                return
            }
            if found.bucketBounds != definition.bucketBounds {
                reason = .revisionsDisagree(name: name, bucketCount: found.bucketCount,
                                            firstURL: firstRevisionURL ?? "?", otherURL: revisionURL ?? "?")
                self.definition = nil
            }
        }
    }

    /// Adds another group's result (jobs: combine across partitions).
    public mutating func merge(_ other: GroupBounds, name: String) {
        if let why = other.reason { add(.unavailable(why), name: name, revisionURL: nil) }
        else if let found = other.definition { add(.bounds(found), name: name, revisionURL: other.firstRevisionURL) }
    }
}

/// Mean and percentiles of summed bucket counts from the buckets' lower bounds (docs/sql.md has the formulas).
///
/// - Shape: `counts` and `lowerBounds` have the same length n ≥ 1; bucket i holds values in
///   `[lowerBounds[i], lowerBounds[i+1])`, the last one is open-ended (overflow bucket).
/// - Results are `nil` when the lengths differ, n is 0 or the total count is 0.
public enum BoundStatistics {
    /// Σ countᵢ · midᵢ / Σ countᵢ with midᵢ = (lowerᵢ + lowerᵢ₊₁) / 2, and the last bucket's lower bound for the
    /// last bucket (it has no upper bound). Midpoints assume values spread evenly inside a bucket, the same
    /// assumption as `percentile`'s interpolation.
    /// - Complexity: O(n), no allocation.
    public static func mean(counts: [Int64], lowerBounds: [Int64]) -> Double? {
        guard counts.count == lowerBounds.count, !counts.isEmpty else { return nil }
        var weighted = 0.0, total = 0.0
        for bucketIndex in counts.indices where counts[bucketIndex] != 0 {
            let count = Double(counts[bucketIndex])
            let lower = Double(lowerBounds[bucketIndex])
            let mid = bucketIndex + 1 < counts.count ? (lower + Double(lowerBounds[bucketIndex + 1])) / 2 : lower
            weighted += count * mid
            total += count
        }
        return total > 0 ? weighted / total : nil
    }

    /// The `percent`-th percentile (0…100), as python_moztelemetry's `Histogram.percentile`
    /// (`moztelemetry/histogram.py`): `t = percent / 100 × total`; walk the buckets subtracting each count from
    /// `t` until `t − countᵢ ≤ 0` (bucket i; the last bucket when none stops); the result is `lowerᵢ` when i is the
    /// last bucket or `countᵢ` is 0, else `lowerᵢ + (lowerᵢ₊₁ − lowerᵢ) × t / countᵢ` (linear interpolation).
    /// - Returns: nil also when `percent` is outside 0…100 or NaN.
    /// - Complexity: O(n), no allocation.
    public static func percentile(_ percent: Double, counts: [Int64], lowerBounds: [Int64]) -> Double? {
        guard counts.count == lowerBounds.count, !counts.isEmpty, percent >= 0, percent <= 100 else { return nil }
        var total = 0.0
        for count in counts { total += Double(count) }
        guard total > 0 else { return nil }
        var toCount = percent / 100 * total
        var bucketIndex = counts.count - 1
        for index in counts.indices {
            let frequency = Double(counts[index])
            if toCount - frequency <= 0 { bucketIndex = index; break }
            toCount -= frequency
        }
        let lower = Double(lowerBounds[bucketIndex])
        let frequency = Double(counts[bucketIndex])
        if bucketIndex == counts.count - 1 || frequency == 0 { return lower }
        return lower + (Double(lowerBounds[bucketIndex + 1]) - lower) * toCount / frequency
    }
}
