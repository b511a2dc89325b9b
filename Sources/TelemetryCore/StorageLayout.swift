import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Maps dimension values to storage-layout paths and back (`spec/storage.md` §2.2, §3, §3.1, §4).
///
/// For dimensions d1 … dN (dN = `submission_date`): `<base>/<d1>/…/<d(N-2)>/<d(N-1)>.<dN>.v<format>.log[.<id>.<ext>]`.
public enum StorageLayout {
    /// `[^a-zA-Z0-9_/.]` → `_`, one underscore per Unicode scalar (`spec/storage.md` §2.2). Keeps `/` and `.`:
    /// paths use `pathComponent`, values `storedValue`, never this alone.
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

    /// Where a path component stands in the storage layout: a directory, or one of the two dot-separated
    /// value parts at the start of a file name (where `.` separates the parts).
    public enum ComponentPosition: Sendable {
        case directory
        case fileName
    }

    /// Longest encoded value, in bytes, that `pathComponent` produces (ASCII, so bytes = characters). A file
    /// name holds two values plus at most 60 bytes of suffix (`.v<format>.log.<32 hex>.xz.partial`), so every
    /// file name stays under the 255-byte limit of Linux and macOS file systems; a Hive partition
    /// `<field>=<value>` stays under it for field names up to 158 bytes.
    public static let maxComponentValueBytes = 96

    /// The value a dimension takes in the storage layout and in the store (TelemetryEngine's rule, built on
    /// `spec/storage.md` §2.2):
    /// 1. the spec's safe-file-name rule (`safeFilename`: `[^a-zA-Z0-9_/.]` → `_`, so NUL, `%`, `-`, spaces and
    ///    every non-ASCII character become `_`);
    /// 2. an empty result is `UNKNOWN` (as a missing field, `spec/storage.md` §2);
    /// 3. a result whose encoded path component (`pathComponent(_:position: .fileName)`) would exceed
    ///    `maxComponentValueBytes` is `OTHER` (a value the layout cannot hold is not allowed, §2).
    /// Idempotent; the result only holds `[A-Za-z0-9_./]`. Pure, O(value length).
    public static func storedValue(_ value: String) -> String {
        let safe = safeFilename(value)
        if safe.isEmpty { return DimensionSchema.unknown }
        if encode(safe, position: .fileName).utf8.count > maxComponentValueBytes { return DimensionSchema.other }
        return safe
    }

    /// The one rule that turns a dimension value into a path component, for every writer of a storage tree
    /// (convert, `serve --convert-into`, export's Hive partitions `<field>=<component>`); `value(ofPathComponent:)`
    /// is its exact inverse on `storedValue(value)`.
    ///
    /// The value is first made a `storedValue`, then escaped Hive style (`%` + two upper-case hex digits; `%`
    /// itself never survives step 1, so an escape is unambiguous):
    /// - `/` → `%2F` (anywhere);
    /// - `.` → `%2E`: every leading dot of a directory component (so `.` → `%2E`, `..` → `%2E%2E`, and no
    ///   value makes a hidden name), and every dot of a file-name part (`.` separates the parts, §3.1).
    ///
    /// The result is never empty, never `.` or `..`, holds no `/` or NUL, is at most `maxComponentValueBytes`
    /// bytes, and is unchanged for every value of real data (`saved_session`, `22.0a1`, `20130226031002`).
    /// Pure, O(value length).
    public static func pathComponent(_ value: String, position: ComponentPosition) -> String {
        encode(storedValue(value), position: position)
    }

    /// The dimension value a path component holds: the inverse of `pathComponent` (decodes `%2F` and `%2E`,
    /// hex digits in either case).
    /// - Throws: `CoreError.unparsableStoragePath` for any other `%` sequence (no writer of the layout makes one).
    public static func value(ofPathComponent component: String) throws -> String {
        guard component.utf8.contains(UInt8(ascii: "%")) else { return component }
        var out: [UInt8] = []
        let bytes = Array(component.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                let code = i + 2 < bytes.count ? String(decoding: bytes[(i + 1)...(i + 2)], as: UTF8.self).uppercased() : ""
                switch code {
                case "2F": out.append(UInt8(ascii: "/"))
                case "2E": out.append(UInt8(ascii: "."))
                default:
                    throw CoreError.unparsableStoragePath(path: component, reason: "'%' not followed by 2F or 2E (the layout's only escapes)")
                }
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func encode(_ safe: String, position: ComponentPosition) -> String {
        var out = ""
        var leading = true
        for scalar in safe.unicodeScalars {
            switch scalar {
            case "/": out += "%2F"; leading = false
            case "." where position == .fileName || leading: out += "%2E"
            default: out.unicodeScalars.append(scalar); leading = false
            }
        }
        return out
    }

    /// Path of the file being written for `dimensions` (the leading N-1 values) and a date:
    /// `<base>/<d1>/…/<d(N-1)>.<date>.v<version>.log`, each value through `pathComponent`. No allowed-values
    /// filtering.
    public static func currentFile(base: String, dimensions: [String], submissionDate: String, version: Int) -> String {
        let dirs = dimensions.dropLast().map { pathComponent($0, position: .directory) }
        let last = pathComponent(dimensions.last ?? DimensionSchema.other, position: .fileName)
        let name = "\(last).\(pathComponent(submissionDate, position: .fileName)).v\(version).log"
        return ([base] + dirs + [name]).joined(separator: "/")
    }

    /// Path for a full dimension list (date last) after applying the schema's allowed values.
    public static func filename(schema: DimensionSchema, base: String, dimensions: [String], version: Int) -> String {
        let applied = schema.apply(dimensions)
        return currentFile(base: base, dimensions: Array(applied.dropLast()), submissionDate: applied.last ?? DimensionSchema.other,
                           version: version)
    }

    /// Dimension values recovered from a stored file's path (`spec/storage.md` §3.1): directory components
    /// below `base`, then the first two dot-separated parts of the file name, each decoded by
    /// `value(ofPathComponent:)`. Values are the stored forms (`storedValue`: `saved_session`, `31.0/beta`).
    /// - Parameter dirsOnly: return only the directory components.
    /// - Throws: `CoreError.notUnderBase` when `path` is not below `base`; `CoreError.unparsableStoragePath` when
    ///   the file name has fewer than two dot-separated parts or a component holds a bad `%` escape.
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
        let dirs = try parts.map(value(ofPathComponent:))
        if dirsOnly { return dirs }
        let nameParts = fileName.split(separator: ".", omittingEmptySubsequences: false)
        guard nameParts.count >= 2 else { throw CoreError.unparsableStoragePath(path: path, reason: "file name has no '.<submission_date>' part") }
        return dirs + [try value(ofPathComponent: String(nameParts[0])), try value(ofPathComponent: String(nameParts[1]))]
    }

    /// Checks (and with `create`, makes) the directory `relative` below `root` so that a write into it stays
    /// inside the root: every component is resolved on the file system, symlinks included, and the resolved
    /// directory must be the real root or below it. Components that do not exist are created (with `create`)
    /// as plain directories, so nothing is created outside the root either.
    /// - Parameters:
    ///   - relative: `/`-separated components (as `currentFile` makes them); empty for the root itself.
    ///   - root: the output root; must exist.
    /// - Returns: the resolved (real) path of the directory; with `create: false` and a missing component,
    ///   the real path of the deepest existing ancestor followed by the missing components.
    /// - Throws: `CoreError.invalidPath` when a component is empty, `.` or `..` or holds a NUL, a symlink leads
    ///   outside the root, or a component is not a directory; `CoreError.io` when `mkdir` or `lstat` fails
    ///   (e.g. ENOSPC).
    public static func directory(_ relative: String, inside root: String, create: Bool) throws -> String {
        guard let realRoot = realPath(root) else {
            throw CoreError.io(path: root, operation: "realpath", message: String(cString: strerror(errno)))
        }
        if relative.isEmpty { return realRoot }
        let components = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for component in components where component.isEmpty || component == "." || component == ".." || component.utf8.contains(0) {
            throw CoreError.invalidPath(path: relative, root: root, reason: "component '\(component)' is empty, '.', '..' or holds a NUL")
        }
        var current = realRoot
        var missing = false
        for component in components {
            let next = current + "/" + component
            if missing { current = next; continue }
            var st = stat()
            if lstat(next, &st) != 0 {
                guard errno == ENOENT else { throw CoreError.io(path: next, operation: "lstat", message: String(cString: strerror(errno))) }
                guard create else { missing = true; current = next; continue }
                if mkdir(next, 0o755) != 0 && errno != EEXIST {
                    throw CoreError.io(path: next, operation: "mkdir", message: String(cString: strerror(errno)))
                }
                guard lstat(next, &st) == 0 else { throw CoreError.io(path: next, operation: "lstat", message: String(cString: strerror(errno))) }
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                current = next
            case S_IFLNK:
                guard let target = realPath(next), isInside(target, root: realRoot) else {
                    throw CoreError.invalidPath(path: next, root: root, reason: "a symlink leads outside the output root")
                }
                var targetStat = stat()
                guard stat(target, &targetStat) == 0, targetStat.st_mode & S_IFMT == S_IFDIR else {
                    throw CoreError.invalidPath(path: next, root: root, reason: "not a directory")
                }
                current = target
            default:
                throw CoreError.invalidPath(path: next, root: root, reason: "not a directory")
            }
        }
        return current
    }

    /// True when the resolved `path` is `root` or below it (both already real paths).
    public static func isInside(_ path: String, root: String) -> Bool {
        path == root || path.hasPrefix(root == "/" ? "/" : root + "/")
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
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
        return zip(dimensions, values).allSatisfy { $0.allows($1) }
    }

    /// True when dimension `index` allows `value` (for pruning directories during a walk).
    public func allows(_ value: String, at index: Int) -> Bool {
        dimensions.indices.contains(index) && dimensions[index].allows(value)
    }
}
