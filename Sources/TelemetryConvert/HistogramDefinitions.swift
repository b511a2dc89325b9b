import Foundation

/// One named entry of a `Histograms.json` file.
public enum HistogramEntry: Sendable, Hashable {
    /// The bounds could be computed.
    case defined(HistogramDefinition)
    /// The definition is kept although its bounds cannot be computed (an unresolved named constant, an unknown
    /// kind, …), so conversion can fall back on the ping's inline parameters (`spec/histograms.md` §1.1, §4).
    case unevaluable(reason: String)

    /// The definition when evaluable.
    public var definition: HistogramDefinition? {
        if case let .defined(definition) = self { return definition }
        return nil
    }

    /// Parses one definition object; never fails, a bad definition becomes `.unevaluable`.
    public init(json: JSONValue) {
        do {
            self = .defined(try HistogramDefinition(json: json))
        } catch {
            if case let .invalidDefinition(_, reason) = error { self = .unevaluable(reason: reason) }
            else { self = .unevaluable(reason: error.description) }
        }
    }
}

/// The histogram definitions of one revision: a parsed `Histograms.json` (`spec/histograms.md` §1) with every
/// evaluable definition's bounds computed once.
///
/// - Shape: `names` in file order (duplicate names: the first occurrence wins, as for every JSON object here);
///   unevaluable definitions are kept (`HistogramEntry.unevaluable`) and counted.
/// - Immutable and `Sendable`: one value is shared by every converter thread (copy-on-write storage).
public struct HistogramDefinitions: Sendable, Equatable {
    /// Histogram names in file order.
    public let names: [String]
    private let entries: [String: HistogramEntry]

    /// Builds definitions from `(name, entry)` pairs; a repeated name keeps its first entry.
    public init(_ pairs: [(name: String, entry: HistogramEntry)]) {
        var names: [String] = []
        var entries: [String: HistogramEntry] = [:]
        names.reserveCapacity(pairs.count)
        entries.reserveCapacity(pairs.count)
        for (name, entry) in pairs where entries[name] == nil {
            names.append(name)
            entries[name] = entry
        }
        self.names = names
        self.entries = entries
    }

    /// Number of definitions, evaluable or not.
    public var count: Int { names.count }

    /// The entry named exactly `name`.
    public subscript(exactly name: String) -> HistogramEntry? { entries[name] }

    /// The entry used for a histogram a ping submits under `name` (`spec/payloads.md` §8): the name itself if
    /// defined, else, for a name starting with `STARTUP_`, the definition of the rest of the name; nil means
    /// unknown (the histogram is dropped, warning `unknown_histogram`).
    /// - Complexity: at most two hash lookups.
    public func lookup(_ name: String) -> HistogramEntry? {
        if let entry = entries[name] { return entry }
        if name.hasPrefix(Self.startupPrefix) { return entries[String(name.dropFirst(Self.startupPrefix.count))] }
        return nil
    }

    /// The evaluable definition for `name` (with the `STARTUP_` rule).
    /// - Throws: `HistogramError.unknownHistogram`, or `.invalidDefinition(name:reason:)` when the definition
    ///   cannot be evaluated (the `definition_error` case when bounds are asked for directly).
    public func definition(named name: String) throws(HistogramError) -> HistogramDefinition {
        switch lookup(name) {
        case nil: throw .unknownHistogram(name: name)
        case let .unevaluable(reason)?: throw .invalidDefinition(name: name, reason: reason)
        case let .defined(definition)?: return definition
        }
    }

    /// Prefix of the end-of-startup copies Firefox submits (`spec/payloads.md` §8).
    public static let startupPrefix = "STARTUP_"

    // MARK: Parsing

    /// Parses a whole `Histograms.json` text.
    /// - Parameter source: the file path or URL, for messages.
    /// - Throws: `HistogramError.notJSON` (not JSON: RFC 8259, UTF-8), `.invalidStructure` when the top level is
    ///   not an object. Individual bad definitions do not throw (`HistogramEntry.unevaluable`).
    /// - Complexity: O(file size + total bucket count); allocates the tree and every bounds array.
    public static func parse(_ bytes: [UInt8], source: String) throws(HistogramError) -> HistogramDefinitions {
        let document = try parseDefinitionFileJSON(bytes, source: source)
        guard let object = document.objectValue else {
            throw .invalidStructure(path: source, reason: "Histograms.json top level must be an object")
        }
        return HistogramDefinitions(object.members.map { (name: $0.key, entry: HistogramEntry(json: $0.value)) })
    }

    /// Reads and parses the `Histograms.json` at `path` (no substitutions: a cached or local file is used as is).
    /// - Throws: `HistogramError.fileNotFound`, `.unreadableFile`, and what `parse` throws.
    public static func load(path: String) throws(HistogramError) -> HistogramDefinitions {
        try parse(try readDefinitionFile(path), source: path)
    }

    // MARK: Histogram-server substitutions (spec/histograms.md §1.1)

    /// The seed's rewrites of named C++ constants, applied to the raw text (quotes included).
    public static let serverSubstitutions: [(quoted: String, replacement: String)] = [
        ("\"JS::gcreason::NUM_TELEMETRY_REASONS\"", "101"),
        ("\"mozilla::StartupTimeline::MAX_EVENT_ID\"", "12"),
        ("\"80 + 1\"", "81"),
    ]

    /// `text` with the three seed substitutions applied, as the seed's revision cache did to files fetched from
    /// a histogram server before parsing and before saving them in the cache. Only for fetched files: a file
    /// already in the cache or given locally is used unchanged.
    /// - Complexity: O(text length) per substitution.
    public static func applyingServerSubstitutions(to text: String) -> String {
        var result = text
        for (quoted, replacement) in serverSubstitutions where result.contains(quoted) {
            result = result.replacingOccurrences(of: quoted, with: replacement)
        }
        return result
    }
}

// MARK: - File helpers shared by the definition and bucket-format readers

/// The bytes of `path`.
/// - Throws: `HistogramError.fileNotFound`, `.unreadableFile`.
func readDefinitionFile(_ path: String) throws(HistogramError) -> [UInt8] {
    guard FileManager.default.fileExists(atPath: path) else { throw .fileNotFound(path: path) }
    do {
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
        throw .unreadableFile(path: path, detail: error.localizedDescription)
    }
}

/// Parses a definition or bucket-format file with the ping parser's JSON rules.
/// - Throws: `HistogramError.notJSON` naming `source` and the parser's message.
func parseDefinitionFileJSON(_ bytes: [UInt8], source: String) throws(HistogramError) -> JSONValue {
    let parser = PingParser(fields: [])
    let result: Result<JSONValue, PingParser.Rejection> = bytes.withUnsafeBytes { buffer in
        do throws(PingParser.Rejection) {
            return .success(try JSONValue.parse(buffer, validatingWith: parser).value)
        } catch {
            return .failure(error)
        }
    }
    switch result {
    case let .success(value):
        return value
    case let .failure(rejection):
        let offset = rejection.offset.map { " at byte \($0)" } ?? ""
        throw .notJSON(path: source, detail: rejection.message + offset)
    }
}
