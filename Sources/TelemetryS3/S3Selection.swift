import Foundation
import TelemetryCore

/// What a listing selected under one `S3Location`.
public struct S3Selection: Sendable, Equatable {
    public var location: S3Location
    /// The objects to fetch, sorted by key (byte order).
    public var selected: [S3Object] = []
    /// Keys listed and rejected by the filter (`spec/storage.md` §4).
    public var excludedKeys = 0
    /// Common prefixes ("directories") the filter rejected without listing what is below them.
    public var prunedPrefixes: [String] = []
    /// Keys whose path below the prefix does not fit the schema's storage layout (wrong depth, no
    /// `.<submission_date>` part, empty or `..` components). Never downloaded.
    public var outsideLayout: [String] = []
    /// Keys skipped by name as the local walk skips files: hidden (`.name`), `.tmp`, `.partial`, `.compressing`,
    /// and "directory" marker keys ending in `/`.
    public var ignoredKeys = 0
    /// ListObjectsV2 requests made.
    public var listRequests = 0

    public init(location: S3Location) { self.location = location }

    /// Sum of the selected objects' sizes, in bytes.
    public var totalBytes: Int64 { selected.reduce(0) { $0 + $1.size } }
}

/// How a key below a prefix is treated.
public enum KeyClass: Sendable, Equatable {
    /// In the layout and allowed by the filter (or no filter); carries the dimension values (sanitised forms).
    case selected([String])
    /// In the layout, rejected by the filter.
    case excluded
    /// Not a storage-layout path for the schema.
    case outsideLayout
    /// Skipped by name (see `S3Selection.ignoredKeys`).
    case ignored
}

/// Chooses the keys to fetch: dimensions are recovered from each key's path relative to the prefix
/// (`spec/storage.md` §3.1) and the filter applied (§4) before anything is downloaded. With a filter, listing
/// descends one "directory" level at a time (`delimiter=/`) wherever the filter restricts that dimension, so
/// rejected prefixes are never listed, as the local walk never enters rejected directories.
public enum S3Selector {
    /// Lists and classifies the keys under `location`.
    /// - Parameters:
    ///   - schema: the store's dimension schema (only its dimension count matters: it fixes the path depth).
    ///   - filter: a job filter with as many dimensions as `schema`; nil selects every layout path.
    /// - Throws: `S3Error` from the listing (no such bucket, access denied, wrong region, …).
    /// - Complexity: one request per 1,000 keys listed, plus one per pruned-level prefix visited.
    public static func select(client: S3Client, location: S3Location, schema: DimensionSchema,
                              filter: DimensionSchema?) async throws -> S3Selection {
        var selection = S3Selection(location: location)
        let sanitized = filter?.asFilter
        let dimensionCount = schema.dimensions.count

        func take(_ objects: [S3Object]) {
            for object in objects {
                switch classify(key: object.key, prefix: location.prefix, dimensionCount: dimensionCount, filter: sanitized) {
                case .selected: selection.selected.append(object)
                case .excluded: selection.excludedKeys += 1
                case .outsideLayout: selection.outsideLayout.append(object.key)
                case .ignored: selection.ignoredKeys += 1
                }
            }
        }

        func visit(_ prefix: String, depth: Int) async throws {
            // Directory levels are the first N-2 dimensions; list level by level only while the filter restricts one.
            let restricts = sanitized.map { f in
                (depth..<max(depth, dimensionCount - 2)).contains { f.dimensions.indices.contains($0) && f.dimensions[$0].allowedValues != .any }
            } ?? false
            if !restricts {
                let listing = try await client.listObjects(bucket: location.bucket, prefix: prefix)
                selection.listRequests += listing.requests
                take(listing.objects)
                return
            }
            let listing = try await client.listObjects(bucket: location.bucket, prefix: prefix, delimiter: "/")
            selection.listRequests += listing.requests
            take(listing.objects)   // files above the file level: outside the layout (or ignored)
            for common in listing.commonPrefixes {
                let name = String(common.dropFirst(prefix.count).dropLast())   // "<prefix><name>/"
                if name.isEmpty || name == "." || name == ".." || isIgnoredName(name) {
                    selection.prunedPrefixes.append(common)
                    continue
                }
                if let sanitized, !((try? StorageLayout.value(ofPathComponent: name)).map { sanitized.allows($0, at: depth) } ?? false) {
                    selection.prunedPrefixes.append(common)
                    continue
                }
                try await visit(common, depth: depth + 1)
            }
        }

        try await visit(location.prefix, depth: 0)
        selection.selected.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        return selection
    }

    /// Classifies one key. Pure; no network.
    /// - Parameters:
    ///   - prefix: the layout root (`S3Location.prefix`); keys not under it are `.outsideLayout`.
    ///   - filter: already sanitised (`DimensionSchema.asFilter`), or nil.
    public static func classify(key: String, prefix: String, dimensionCount: Int, filter: DimensionSchema?) -> KeyClass {
        guard key.hasPrefix(prefix) else { return .outsideLayout }
        let relative = String(key.dropFirst(prefix.count))
        if relative.isEmpty || relative.hasSuffix("/") { return .ignored }
        let components = relative.split(separator: "/", omittingEmptySubsequences: false)
        if components.contains(where: { isIgnoredName(String($0)) && !$0.isEmpty && $0 != "." && $0 != ".." }) { return .ignored }
        // Empty, "." and ".." components would alias or escape the cache directory.
        guard components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return .outsideLayout }
        guard let values = try? StorageLayout.dimensions(ofFile: relative, base: ""), values.count == dimensionCount else {
            return .outsideLayout
        }
        if let filter, !filter.allows(values) { return .excluded }
        return .selected(values)
    }

    /// The names the local walk never imports (`LayoutWalker.isIgnored` in TelemetryStore): hidden files and
    /// files still being written or compressed.
    public static func isIgnoredName(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix(".tmp") || name.hasSuffix(".partial") || name.hasSuffix(".compressing")
    }
}
