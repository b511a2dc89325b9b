import Foundation

/// A revision URL (`info.revision`) split into repository path and revision (`spec/payloads.md` §5), with the
/// places its `Histograms.json` lives: the cache file (`spec/histograms.md` §6), hg.mozilla.org's raw file, and a
/// histogram server's `/histograms` query.
///
/// Pattern (anchored): `^(http[s]?://[^/]+)/(.+)/rev/([0-9a-f]+)/?$`. The repository may contain slashes; the
/// revision is lower-case hex of any length. TelemetryEngine is stricter than the pattern in one way: a
/// repository path with an empty, `.` or `..` component (or any control character in the URL) is also
/// invalid, because the repository names a directory inside the cache and pings must not steer it outside.
public struct RevisionURL: Sendable, Hashable, CustomStringConvertible {
    /// The URL as given (for messages).
    public let url: String
    /// Scheme and host, e.g. `https://hg.mozilla.org` (ignored for lookup).
    public let origin: String
    /// Repository path, e.g. `releases/mozilla-release`.
    public let repository: String
    /// Lower-case hex revision, e.g. `a55c55edf302`.
    public let revision: String

    /// Parses `url`.
    /// - Throws: `HistogramError.invalidRevisionURL(url:)` (`Invalid revision URL: <url>`), which a converter
    ///   counts as `missing_revision_repo`.
    /// - Complexity: O(url length).
    public init(parsing url: String) throws(HistogramError) {
        guard let parts = Self.split(url) else { throw .invalidRevisionURL(url: url) }
        self.url = url
        (origin, repository, revision) = parts
    }

    /// An explicit repository and revision, with the hg.mozilla.org URL that names them.
    /// - Throws: `HistogramError.invalidRevisionURL` when the pair would not form a valid revision URL.
    public init(repository: String, revision: String) throws(HistogramError) {
        try self.init(parsing: "https://hg.mozilla.org/\(repository)/rev/\(revision)")
    }

    public var description: String { url }

    /// `<cacheDirectory>/<repository>/<revision>/Histograms.json`.
    public func cachePath(in cacheDirectory: String) -> String {
        "\(cacheDirectory)/\(repository)/\(revision)/Histograms.json"
    }

    /// Where the seed fetched the file:
    /// `https://hg.mozilla.org/<repository>/raw-file/<revision>/toolkit/components/telemetry/Histograms.json`.
    /// TelemetryEngine itself never fetches from hg.mozilla.org (only from a configured histogram server).
    public var rawFileURL: String {
        "https://hg.mozilla.org/\(repository)/raw-file/\(revision)/toolkit/components/telemetry/Histograms.json"
    }

    /// The histogram-server request for this revision (`spec/histograms.md` §5):
    /// `<server>/histograms?revision=<percent-encoded url>`; a trailing `/` of `server` is dropped.
    /// Nil when `server` does not form a URL.
    public func histogramServerURL(server: String) -> URL? {
        var base = server
        while base.hasSuffix("/") { base.removeLast() }
        guard let query = url.addingPercentEncoding(withAllowedCharacters: Self.unreserved) else { return nil }
        return URL(string: "\(base)/histograms?revision=\(query)")
    }

    /// RFC 3986 unreserved characters: everything else in a query value is percent-encoded.
    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    private static func split(_ url: String) -> (origin: String, repository: String, revision: String)? {
        guard !url.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
        let scheme: String
        if url.hasPrefix("https://") { scheme = "https://" } else if url.hasPrefix("http://") { scheme = "http://" } else { return nil }
        var rest = Substring(url.dropFirst(scheme.count))
        guard let slash = rest.firstIndex(of: "/"), slash > rest.startIndex else { return nil }   // [^/]+ then /
        let origin = scheme + rest[..<slash]
        rest = rest[rest.index(after: slash)...]
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        // The revision is hex only, so it is the last component; the one before must be exactly `rev`.
        guard let lastSlash = rest.lastIndex(of: "/") else { return nil }
        let revision = rest[rest.index(after: lastSlash)...]
        guard !revision.isEmpty, revision.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        let head = rest[..<lastSlash]
        guard head.hasSuffix("/rev") else { return nil }
        let repository = head.dropLast(4)
        guard !repository.isEmpty else { return nil }
        let components = repository.split(separator: "/", omittingEmptySubsequences: false)
        guard !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return nil }
        return (origin, String(repository), String(revision))
    }
}
