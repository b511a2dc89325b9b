import Foundation

/// Maps dimension values to storage-layout paths and back (`spec/storage.md` §2.2, §3, §3.1, §4).
///
/// For dimensions d1 … dN (dN = `submission_date`): `<base>/<d1>/…/<d(N-2)>/<d(N-1)>.<dN>.v<format>.log[.<id>.<ext>]`.
public enum StorageLayout {
    /// `[^a-zA-Z0-9_/.]` → `_`, one underscore per Unicode scalar (`spec/storage.md` §2.2).
    public static func safeFilename(_ value: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in value.unicodeScalars {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", "/", ".": out.append(scalar)
            default: out.append("_")
            }
        }
        return String(out)
    }

    /// Path of the file being written for `dimensions` (the leading N-1 values, sanitised) and a date:
    /// `<base>/<d1>/…/<d(N-1)>.<date>.v<version>.log`. No allowed-values filtering.
    public static func currentFile(base: String, dimensions: [String], submissionDate: String, version: Int) -> String {
        let dirs = dimensions.dropLast().map(safeFilename)
        let last = dimensions.last.map(safeFilename) ?? DimensionSchema.other
        let name = "\(last).\(safeFilename(submissionDate)).v\(version).log"
        return ([base] + dirs + [name]).joined(separator: "/")
    }

    /// Path for a full dimension list (date last) after applying the schema's allowed values.
    public static func filename(schema: DimensionSchema, base: String, dimensions: [String], version: Int) -> String {
        let applied = schema.apply(dimensions)
        return currentFile(base: base, dimensions: Array(applied.dropLast()), submissionDate: applied.last ?? DimensionSchema.other,
                           version: version)
    }

    /// Dimension values recovered from a stored file's path (`spec/storage.md` §3.1): directory components
    /// below `base`, then the first two dot-separated parts of the file name. Values are the sanitised forms.
    /// - Parameter dirsOnly: return only the directory components.
    /// - Throws: `CoreError.notUnderBase` when `path` is not below `base`; `CoreError.unparsableStoragePath` when
    ///   the file name has fewer than two dot-separated parts.
    /// - Complexity: O(path length); no filesystem access.
    public static func dimensions(ofFile path: String, base: String, dirsOnly: Bool = false) throws -> [String] {
        let normalizedBase = normalize(base)
        let normalizedPath = normalize(path)
        let prefix = normalizedBase.isEmpty || normalizedBase == "." ? "" : normalizedBase + "/"
        guard normalizedPath.hasPrefix(prefix), normalizedPath.count > prefix.count else {
            throw CoreError.notUnderBase(path: path, base: base)
        }
        var parts = normalizedPath.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let fileName = parts.removeLast()
        if dirsOnly { return parts }
        let nameParts = fileName.split(separator: ".", omittingEmptySubsequences: false)
        guard nameParts.count >= 2 else { throw CoreError.unparsableStoragePath(path: path, reason: "file name has no '.<submission_date>' part") }
        return parts + [String(nameParts[0]), String(nameParts[1])]
    }

    /// Result of `filterFiles`.
    public struct FilterSelection: Sendable, Equatable {
        public var included: [String] = []
        public var excluded: [String] = []
        /// Paths that are not under the base or do not parse (also counted as excluded).
        public var errors: [String] = []
    }

    /// Selects stored files whose recovered dimensions all pass `filter` (sanitised first), as the seed's
    /// `get_filtered_files` per file. Paths that cannot be parsed are errors and also excluded.
    public static func filterFiles(_ paths: [String], base: String, filter: DimensionSchema) -> FilterSelection {
        let sanitized = filter.asFilter
        var selection = FilterSelection()
        for path in paths {
            guard let dims = try? dimensions(ofFile: path, base: base) else {
                selection.errors.append(path)
                selection.excluded.append(path)
                continue
            }
            if sanitized.allows(dims) { selection.included.append(path) } else { selection.excluded.append(path) }
        }
        return selection
    }

    private static func normalize(_ path: String) -> String {
        var p = path
        while p.hasPrefix("./") { p.removeFirst(2) }
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }
}

extension DimensionSchema {
    /// True when every position of `values` is allowed by the same position of this schema and the counts match.
    public func allows(_ values: [String]) -> Bool {
        guard values.count == dimensions.count else { return false }
        return zip(dimensions, values).allSatisfy { $0.allowedValues.allows($1) }
    }

    /// True when dimension `index` allows `value` (for pruning directories during a walk).
    public func allows(_ value: String, at index: Int) -> Bool {
        dimensions.indices.contains(index) && dimensions[index].allowedValues.allows(value)
    }
}
