import Foundation
import TelemetryCompression
import TelemetryCore

/// One file found under an import root.
struct ImportCandidate: Sendable {
    /// Absolute, standardised path (the key of `source_files`).
    let path: String
    /// The import root the layout is read from.
    let base: String
    /// Dimension values recovered from the path, or why the path does not fit the schema.
    let dimensions: Result<[String], CoreError>
    let size: Int
    let mtimeNanoseconds: Int64
    /// A raw submission log (`spec/raw-log.md`): converted record by record, dimensions from each ping.
    var isRawLog = false
}

/// Walks import roots in the storage layout (`spec/storage.md` §3, §4).
enum LayoutWalker {
    /// Names never imported: hidden files and files still being written or compressed.
    static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix(".tmp") || name.hasSuffix(".partial") || name.hasSuffix(".compressing")
    }

    /// Files a walk passed over on purpose, to be reported.
    struct Skipped {
        /// Open raw logs of `telemetry serve` (`isOpenServeLog`).
        var openLogs: [String] = []
        /// `<root>/errors/*.errors.jsonl`: `telemetry convert`'s rejected records.
        var convertErrorFiles = 0
    }

    /// True for the name of a raw log `telemetry serve` is still writing (docs/ingest.md, `spec/raw-log.md` §6.1):
    /// `<base>.<v1|v2>.<host>.<pid>[.<writer>].<created_ms>` with no `.finished` suffix. Consumers read only
    /// finished files; an open one would be counted twice once renamed.
    static func isOpenServeLog(_ name: String) -> Bool {
        let components = name.split(separator: ".", omittingEmptySubsequences: false)
        guard let version = components.lastIndex(where: { $0 == "v1" || $0 == "v2" }), version > 0,
              components.count - version - 1 >= 3 else { return false }
        let isNumber = { (part: Substring) in !part.isEmpty && part.allSatisfy { $0 >= "0" && $0 <= "9" } }
        return isNumber(components[components.count - 1]) && isNumber(components[components.count - 2])
    }

    /// Finds the files under `root` (a directory, or a single file whose base is inferred as the directory
    /// `dimensionCount - 2` levels above it). Directories the filter excludes are not entered and files it
    /// excludes are not opened; such files are counted in `excluded`. Only regular files are opened: FIFOs,
    /// sockets, devices, dangling symlinks and symlinks leading out of the root are appended to `skipped`
    /// (`InputFiles`), never opened (opening a FIFO blocks for ever).
    /// - Throws: `StoreError.inputNotFound` when `root` does not exist.
    static func walk(root: String, schema: DimensionSchema, filter: DimensionSchema?, excluded: inout Int,
                     skipped: inout [SkippedInput], notes: inout Skipped) throws -> [ImportCandidate] {
        let standardized = URL(fileURLWithPath: root).standardizedFileURL.path
        var info = stat()
        guard lstat(standardized, &info) == 0 else { throw StoreError.inputNotFound(path: root) }
        let sanitizedFilter = filter?.asFilter
        let dimensionCount = schema.dimensions.count
        var found: [ImportCandidate] = []

        func consider(_ path: String, base: String) {
            let dims: Result<[String], CoreError>
            do {
                let values = try StorageLayout.dimensions(ofFile: path, base: base)
                if values.count == dimensionCount {
                    dims = .success(values)
                } else {
                    dims = .failure(.unparsableStoragePath(
                        path: path, reason: "\(values.count) dimensions in the path, the schema has \(dimensionCount) (\(schema.fieldNames.joined(separator: ", ")))"))
                }
            } catch let error as CoreError {
                dims = .failure(error)
            } catch {
                dims = .failure(.unparsableStoragePath(path: path, reason: "\(error)"))
            }
            var st = stat()
            guard stat(path, &st) == 0 else { return }
            let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            if startsWithRawLogRecord(path) {
                if isOpenServeLog((path as NSString).lastPathComponent) { notes.openLogs.append(path); return }
                // Raw logs hold every partition: the filter applies to each converted record instead.
                var candidate = ImportCandidate(path: path, base: base, dimensions: .success([]), size: Int(st.st_size), mtimeNanoseconds: mtime)
                candidate.isRawLog = true
                found.append(candidate)
                return
            }
            if let sanitizedFilter {
                // The seed's rule: a file whose path does not parse is excluded by a filter.
                guard case let .success(values) = dims, sanitizedFilter.allows(values) else { excluded += 1; return }
            }
            found.append(ImportCandidate(path: path, base: base, dimensions: dims, size: Int(st.st_size), mtimeNanoseconds: mtime))
        }

        switch InputFiles.kind(of: standardized, root: nil) {
        case let .skipped(reason):
            skipped.append(SkippedInput(path: standardized, reason: reason))
        case .regularFile:
            var url = URL(fileURLWithPath: standardized)
            for _ in 0..<max(1, dimensionCount - 1) { url.deleteLastPathComponent() }
            consider(standardized, base: url.path)
        case .directory:
            // Depth-first, sorted for a stable order; prune directories by the filter at their depth.
            // Directory names are path components (`StorageLayout.pathComponent`): decode before matching.
            // `errors/` at the root is convert's rejected records: never pruned, its `*.errors.jsonl` files skipped.
            let walked = InputFiles.walk(root: standardized, ignore: isIgnored) { path, depth in
                let name = (path as NSString).lastPathComponent
                guard let sanitizedFilter, depth < dimensionCount - 2, !(depth == 0 && name == "errors"),
                      !((try? StorageLayout.value(ofPathComponent: name)).map { sanitizedFilter.allows($0, at: depth) } ?? false)
                else { return true }
                excluded += countFiles(path)
                return false
            }
            let convertErrors = standardized == "/" ? "/errors/" : standardized + "/errors/"
            for path in walked.files {
                if path.hasPrefix(convertErrors), path.hasSuffix(".errors.jsonl"),
                   !path.dropFirst(convertErrors.count).contains("/") {
                    notes.convertErrorFiles += 1
                    continue
                }
                consider(path, base: standardized)
            }
            skipped += walked.skipped
        }
        return found
    }

    /// True when the file's first byte is the raw-log record separator `0x1E` (no storage file starts so:
    /// storage lines start with a document id; xz, gzip and LZMA-alone headers start otherwise).
    static func startsWithRawLogRecord(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var byte: UInt8 = 0
        return read(fd, &byte, 1) == 1 && byte == rawLogSeparator
    }

    /// True when `path` is a compressed or plain file that holds no byte of content (an xz stream of nothing).
    static func decompressesToNothing(_ path: String) -> Bool {
        guard let reader = try? DecompressingReader(path: path) else { return false }
        var byte: UInt8 = 0
        return (try? withUnsafeMutableBytes(of: &byte) { try reader.read(into: $0) }) == 0
    }

    private static func countFiles(_ directory: String) -> Int {
        InputFiles.walk(root: directory, ignore: isIgnored).files.count
    }
}

/// One file an import would read: what `telemetry import --dry-run` lists for local paths.
public struct SelectedFile: Sendable, Equatable {
    /// Absolute, standardised path.
    public var path: String
    /// Size in bytes (compressed, as on disk).
    public var size: Int
}

extension Importer {
    /// The files an import of `roots` would read, in import order, after the filter (the same walk as `run`:
    /// directories and files the filter excludes are skipped unopened; raw logs are listed, their records are
    /// filtered when imported). Files whose path does not fit the layout (which `run` records as `path_error`)
    /// are returned apart. Nothing is read or written.
    /// - Returns: the files, the paths outside the layout, and how many files the filter excluded.
    /// - Throws: `StoreError.inputNotFound` for a missing root.
    public static func selectFiles(roots: [String], schema: DimensionSchema, filter: DimensionSchema?) throws
        -> (files: [SelectedFile], outsideLayout: [String], excluded: Int) {
        var excluded = 0
        var files: [SelectedFile] = []
        var outside: [String] = []
        var skipped: [SkippedInput] = []
        var notes = LayoutWalker.Skipped()   // serve's open logs and convert's error files: never imported, not listed
        for root in roots {
            for candidate in try LayoutWalker.walk(root: root, schema: schema, filter: filter, excluded: &excluded,
                                                   skipped: &skipped, notes: &notes) {
                if case .failure = candidate.dimensions { outside.append(candidate.path); continue }
                files.append(SelectedFile(path: candidate.path, size: candidate.size))
            }
        }
        // Special files (FIFOs, devices, symlinks out of the root) are never imported either: reported with the rest.
        return (files, outside + skipped.map(\.description), excluded)
    }
}
