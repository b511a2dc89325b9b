import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The local download cache: `<root>/<bucket>/<key>`, so that `<root>/<bucket>/<prefix>` is itself a storage-layout
/// tree the normal importer walks.
///
/// Beside each complete file `NAME` lies the hidden record `.NAME.s3meta` (JSON: the object's ETag and size and the
/// file's mtime when it was last verified). A download in progress is `NAME.partial` with `.NAME.partial.s3meta`
/// (the ETag it was started for). Hidden names and `.partial` are names the importer's walk skips.
public struct S3Cache: Sendable, Equatable {
    /// Absolute directory holding one subdirectory per bucket.
    public let root: String

    public init(root: String) {
        var root = URL(fileURLWithPath: root).standardizedFileURL.path
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root
    }

    /// `$XDG_CACHE_HOME/telemetry/s3` when that variable is set, else `~/.cache/telemetry/s3`.
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment,
                                   homeDirectory: String = NSHomeDirectory()) -> String {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/telemetry/s3" }
        return homeDirectory + "/.cache/telemetry/s3"
    }

    /// Where `key` of `bucket` is cached. The key must have passed `S3Selector.classify` (no empty, `.` or `..`
    /// components), so the path stays inside `root`.
    public func path(bucket: String, key: String) -> String { "\(root)/\(bucket)/\(key)" }

    /// The local storage-layout root that mirrors `location` (the directory of its prefix).
    public func layoutRoot(for location: S3Location) -> String {
        location.prefix.isEmpty ? "\(root)/\(location.bucket)" : "\(root)/\(location.bucket)/\(location.prefix.dropLast())"
    }

    static func metaPath(of file: String) -> String { sidecar(file, suffix: ".s3meta") }
    static func partialPath(of file: String) -> String { file + ".partial" }
    static func partialMetaPath(of file: String) -> String { sidecar(file, suffix: ".partial.s3meta") }

    private static func sidecar(_ file: String, suffix: String) -> String {
        let url = URL(fileURLWithPath: file)
        return url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + suffix).path
    }
}

/// The JSON record beside a cached or partial file.
struct CacheRecord: Codable, Equatable {
    var etag: String
    var size: Int64
    /// mtime (ns since 1970) of the complete file when its content was last verified; nil for partial files.
    var mtimeNanoseconds: Int64?

    static func read(_ path: String) -> CacheRecord? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(CacheRecord.self, from: data)
    }

    /// - Throws: `S3Error.io`.
    func write(_ path: String) throws {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw S3Error.io(path: path, detail: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// Small file helpers over POSIX (sizes and mtimes without Foundation's attribute dictionaries).
enum LocalFile {
    /// (size in bytes, mtime in ns), nil when there is no regular file.
    static func status(_ path: String) -> (size: Int64, mtime: Int64)? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return (Int64(st.st_size), Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    static func remove(_ path: String) { unlink(path) }

    /// Lower-case hex MD5 of the file.
    /// - Throws: `S3Error.io` when it cannot be read.
    /// - Complexity: reads the whole file in 1 MiB chunks; allocates one chunk buffer.
    static func md5(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw S3Error.io(path: path, detail: "cannot open for reading") }
        defer { try? handle.close() }
        var hasher = Insecure.MD5()
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        } catch {
            throw S3Error.io(path: path, detail: "cannot read: \(error.localizedDescription)")
        }
        return SignatureV4.hex(hasher.finalize())
    }

    /// Flushes the file's data to disk (before it is renamed to its final name).
    static func sync(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
