/// The histogram server's precomputed bucket format (`spec/histograms.md` §5), which the seed's C++ worker
/// consumed:
/// ```json
/// {"histograms":{"A11Y_INSTANTIATED_FLAG":{"kind":"3","min":1,"buckets":[0,1,2],"max":2,"bucket_count":3}, …}}
/// ```
/// - Shape: `names` in definition order; `entries` keyed by name.
public struct BucketFormat: Sendable, Equatable {
    /// One histogram of the format.
    public struct Entry: Sendable, Hashable {
        /// nsITelemetry `histogram_type` (the JSON `kind` string parsed as an integer).
        public var histogramType: Int
        /// The definition's low, except that a low of 0 is reported as 1.
        public var min: Int64
        /// The last bucket lower bound.
        public var max: Int64
        /// Bucket lower bounds; the format's `bucket_count` is their number.
        public var buckets: [Int64]

        public init(histogramType: Int, min: Int64, max: Int64, buckets: [Int64]) {
            self.histogramType = histogramType
            self.min = min
            self.max = max
            self.buckets = buckets
        }

        public var bucketCount: Int { buckets.count }

        /// The entry the histogram server publishes for `definition`.
        public init(_ definition: HistogramDefinition) {
            self.init(histogramType: definition.kind.histogramType, min: definition.low == 0 ? 1 : definition.low,
                      max: definition.bucketBounds.last ?? 0, buckets: definition.bucketBounds)
        }

        /// `{"kind":"3","min":1,"buckets":[…],"max":2,"bucket_count":3}`, in the seed's key order.
        public var jsonValue: JSONValue {
            .object(JSONObject([
                JSONMember(key: "kind", value: .string(String(histogramType))),
                JSONMember(key: "min", value: .int(min)),
                JSONMember(key: "buckets", value: .array(buckets.map { .int($0) })),
                JSONMember(key: "max", value: .int(max)),
                JSONMember(key: "bucket_count", value: .int(Int64(buckets.count))),
            ]))
        }
    }

    /// Histogram names in order.
    public private(set) var names: [String] = []
    /// Entries by name.
    public private(set) var entries: [String: Entry] = [:]

    /// An empty format.
    public init() {}

    /// Adds `entry`; a name already present keeps its position and gets the new entry (the seed's
    /// `OrderedDict.update`).
    public mutating func set(_ name: String, _ entry: Entry) {
        if entries.updateValue(entry, forKey: name) == nil { names.append(name) }
    }

    /// The entry for `name`.
    public subscript(name: String) -> Entry? { entries[name] }

    // MARK: Producing (histogram server, seed gen-histogram-bucket-ranges.py)

    /// Names Firefox also submitted as `STARTUP_<name>` at the time, so the server publishes an alias for each.
    /// The seed's regular expression `SQLITE|HTTP|SPDY|CACHE|DNS`, searched anywhere in the name.
    public static let startupAliasMarkers = ["SQLITE", "HTTP", "SPDY", "CACHE", "DNS"]

    /// True when the server publishes a `STARTUP_` alias for `name`.
    public static func hasStartupAlias(_ name: String) -> Bool {
        startupAliasMarkers.contains { name.contains($0) }
    }

    /// The bucket format the histogram server produces for `definitions`: every evaluable definition in order,
    /// each followed by an identical `STARTUP_<name>` entry when `hasStartupAlias(name)`; unevaluable
    /// definitions are omitted.
    /// - Complexity: O(total bucket count).
    public init(definitions: HistogramDefinitions) {
        for name in definitions.names {
            guard let definition = definitions[exactly: name]?.definition else { continue }
            let entry = Entry(definition)
            set(name, entry)
            if Self.hasStartupAlias(name) { set(HistogramDefinitions.startupPrefix + name, entry) }
        }
    }

    /// `{"histograms":{…}}` in `names` order.
    public var jsonValue: JSONValue {
        let members = names.compactMap { name in entries[name].map { JSONMember(key: name, value: $0.jsonValue) } }
        return .object(JSONObject([JSONMember(key: "histograms", value: .object(JSONObject(members)))]))
    }

    /// Minimal JSON text of `jsonValue` (no trailing newline).
    public var minimalJSON: String { jsonValue.minimalJSON }

    // MARK: Loading (C++ worker, HistogramSpecification.cpp)

    /// Parses a bucket-format text with the C++ worker's checks: the top level must have a `histograms`
    /// object; each entry needs `kind` (a string holding a `histogram_type` number 0…5), integer `min`, `max`,
    /// `bucket_count` and an integer array `buckets` with `bucket_count` elements.
    /// - Parameter source: the file path or URL, for messages.
    /// - Throws: `HistogramError.notJSON`; `.invalidStructure` with the worker's texts:
    ///   `histograms element must be an object`, `Key: '<NAME>' missing kind element`,
    ///   `Key: '<NAME>' invalid kind element: 'bogus'`,
    ///   `Key: '<NAME>' buckets array should contain: N elements;  M were specified`.
    /// - Complexity: O(file size).
    public static func parse(_ bytes: [UInt8], source: String) throws(HistogramError) -> BucketFormat {
        let document = try parseDefinitionFileJSON(bytes, source: source)
        guard let histograms = document["histograms"]?.objectValue else {
            throw .invalidStructure(path: source, reason: "histograms element must be an object")
        }
        var format = BucketFormat()
        for member in histograms.members where format.entries[member.key] == nil {
            do throws(HistogramSpecificationProblem) {
                format.set(member.key, try entry(member.value))
            } catch {
                throw .invalidStructure(path: source, reason: "Key: '\(member.key)' \(error.text)")
            }
        }
        return format
    }

    /// Reads and parses the bucket-format file at `path`.
    /// - Throws: `HistogramError.fileNotFound`, `.unreadableFile`, and what `parse` throws.
    public static func load(path: String) throws(HistogramError) -> BucketFormat {
        try parse(try readDefinitionFile(path), source: path)
    }

    private struct HistogramSpecificationProblem: Error { let text: String }

    private static func entry(_ value: JSONValue) throws(HistogramSpecificationProblem) -> Entry {
        guard let object = value.objectValue else { throw .init(text: "must be an object") }
        guard let kindValue = object["kind"] else { throw .init(text: "missing kind element") }
        guard let kindText = kindValue.stringValue, let kind = Int(kindText), (0...5).contains(kind) else {
            throw .init(text: "invalid kind element: '\(HistogramDefinition.brief(kindValue))'")
        }
        func integer(_ key: String) throws(HistogramSpecificationProblem) -> Int64 {
            guard let field = object[key] else { throw .init(text: "missing \(key) element") }
            guard case let .int(i) = field else { throw .init(text: "\(key) element must be an integer") }
            return i
        }
        let min = try integer("min")
        let max = try integer("max")
        let bucketCount = try integer("bucket_count")
        guard let bucketsValue = object["buckets"] else { throw .init(text: "missing buckets element") }
        guard let array = bucketsValue.arrayValue else { throw .init(text: "buckets element must be an array") }
        guard Int64(array.count) == bucketCount else {
            throw .init(text: "buckets array should contain: \(bucketCount) elements;  \(array.count) were specified")
        }
        var buckets: [Int64] = []
        buckets.reserveCapacity(array.count)
        for element in array {
            guard case let .int(bound) = element else { throw .init(text: "buckets array must contain integers") }
            buckets.append(bound)
        }
        return Entry(histogramType: kind, min: min, max: max, buckets: buckets)
    }
}
