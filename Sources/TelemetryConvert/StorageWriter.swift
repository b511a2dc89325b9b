import Foundation
import TelemetryCompression
import TelemetryCore
#if canImport(Glibc)
import Glibc
#endif

/// Errors of the storage writer: I/O on the output tree.
public enum StorageWriteError: Error, Equatable, CustomStringConvertible {
    case io(path: String, operation: String, errno: Int32, message: String)
    /// The record's partition would be written outside the output root (`StorageLayout.directory(_:inside:create:)`):
    /// the record is counted `invalid_path` and the run goes on.
    case invalidPath(path: String, reason: String)

    public var description: String {
        switch self {
        case let .io(path, operation, errno, message): "\(path): \(operation) failed: \(message) (errno \(errno))"
        case let .invalidPath(path, reason): "\(path): write refused: \(reason)"
        }
    }

    /// The storage writer's form of a `StorageLayout.directory` error.
    static func from(_ error: Error, path: String) -> StorageWriteError {
        switch error {
        case let CoreError.invalidPath(path, _, reason): return .invalidPath(path: path, reason: reason)
        case let CoreError.io(path, operation, message): return .io(path: path, operation: operation, errno: EIO, message: message)
        case let error as StorageWriteError: return error
        default: return .io(path: path, operation: "mkdir", errno: EIO, message: "\(error)")
        }
    }

    static func last(_ path: String, _ operation: String) -> StorageWriteError {
        .io(path: path, operation: operation, errno: errno, message: String(cString: strerror(errno)))
    }
}

/// Writes converted records into the storage layout (`spec/storage.md` §1, §3).
///
/// Records go to uncompressed work files (one per partition, under `<out>/.work/<writer id>/`, never seen by
/// readers: hidden); a work file that reaches `maxFileBytes` uncompressed bytes, and every work file at
/// `finish()`, is compressed to xz (CRC64, `preset`) as `<final name>.partial` beside its final place and then
/// renamed to `<...>.v<format>.log.<32 lowercase hex>.xz`. So a finished name always means a complete file,
/// Every path component comes from `StorageLayout.pathComponent` and every directory is checked (resolved,
/// symlinks included) to be inside the output directory before a file is opened in it; a partition that would
/// leave it is refused with `StorageWriteError.invalidPath`.
/// and a crash leaves only hidden or `.partial` files. Memory stays small whatever the number of partitions:
/// at most `maxOpenFiles` descriptors are open; one xz encoder runs at a time.
///
/// - Important: Not `Sendable`: one writer per thread (convert gives each job its own writer).
public final class StorageWriter {
    public let outputDirectory: String
    public let schema: DimensionSchema
    public let formatVersion: Int
    public let maxFileBytes: Int
    public let preset: UInt32
    /// Finished files, in the order they were published.
    public private(set) var publishedFiles: [String] = []
    /// Uncompressed bytes written (record lines).
    public private(set) var uncompressedBytes = 0
    /// Compressed bytes published.
    public private(set) var compressedBytes = 0

    private let workDirectory: String
    private var partitions: [String: Partition] = [:]
    private var openOrder: [String] = []
    private var workFileCount = 0
    private let maxOpenFiles = 64

    private struct Partition {
        var relativeBase: String   // "<d1>/…/<d(N-1)>.<date>.v<format>.log"
        var workPath: String
        var fd: Int32 = -1
        var bytes = 0
    }

    /// - Parameters:
    ///   - writerID: distinguishes concurrent writers into the same output directory (e.g. the job index).
    ///   - maxFileBytes: rotation size in uncompressed bytes (default 500,000,000, as the seed).
    ///   - preset: xz preset 0…9 (default 0, the seed's `lzma -0`).
    /// - Throws: `StorageWriteError.io` when the directories cannot be created.
    public init(outputDirectory: String, schema: DimensionSchema, writerID: String, formatVersion: Int = 2,
                maxFileBytes: Int = 500_000_000, preset: UInt32 = 0) throws {
        self.outputDirectory = outputDirectory
        self.schema = schema
        self.formatVersion = formatVersion
        self.maxFileBytes = max(1, maxFileBytes)
        self.preset = preset
        do {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw StorageWriteError.io(path: outputDirectory, operation: "mkdir", errno: EIO, message: "\(error)")
        }
        do {
            workDirectory = try StorageLayout.directory(".work/" + writerID, inside: outputDirectory, create: true)
        } catch {
            throw StorageWriteError.from(error, path: outputDirectory + "/.work/" + writerID)
        }
    }

    deinit {
        for partition in partitions.values where partition.fd >= 0 { close(partition.fd) }
    }

    /// The layout path (relative to the output directory, without the id and suffix) for `dimensions`
    /// (schema order, `submission_date` last), after applying the schema's allowed values.
    public func relativeBase(for dimensions: [String]) -> String {
        let path = StorageLayout.filename(schema: schema, base: "", dimensions: dimensions, version: formatVersion)
        return path.hasPrefix("/") ? String(path.dropFirst()) : path
    }

    /// Appends `<documentID>\t<json>\n` to the partition of `dimensions`. CR and LF inside either part are
    /// replaced by spaces (`spec/storage.md` §1; minimal JSON never contains them).
    /// - Throws: `StorageWriteError.invalidPath` when the partition's directory is not inside the output directory
    ///   (counted `invalid_path` by the caller); `StorageWriteError.io` (counted `write_failed`).
    public func append(documentID: String, json: String, dimensions: [String]) throws {
        let key = relativeBase(for: dimensions)
        let line = Self.line(documentID: documentID, json: json)
        let fd = try descriptor(for: key)
        try line.withCString { pointer in
            try writeAll(fd, UnsafeRawPointer(pointer), strlen(pointer), path: partitions[key]?.workPath ?? key)
        }
        let count = line.utf8.count
        partitions[key]?.bytes += count
        uncompressedBytes += count
        if let bytes = partitions[key]?.bytes, bytes >= maxFileBytes { try publish(key) }
    }

    /// Compresses and publishes every partition's work file, then removes the work directory.
    /// - Throws: `StorageWriteError.io` or `CompressionError`.
    public func finish() throws {
        for key in partitions.keys.sorted() { try publish(key) }
        try? FileManager.default.removeItem(atPath: workDirectory)
        let parent = (workDirectory as NSString).deletingLastPathComponent
        if (try? FileManager.default.contentsOfDirectory(atPath: parent))?.isEmpty == true {
            try? FileManager.default.removeItem(atPath: parent)
        }
    }

    /// One storage-format record line: `<documentID>\t<json>\n`, with every CR and LF inside either part
    /// replaced by one space (`spec/storage.md` §1, the seed's `clean_newlines`).
    public static func line(documentID: String, json: String) -> String {
        cleanNewlines(documentID) + "\t" + cleanNewlines(json) + "\n"
    }

    /// Replaces each CR and each LF by one space (no collapsing: `"a\r\n"` → `"a  "`).
    public static func cleanNewlines(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) else { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { scalars.append(scalar == "\n" || scalar == "\r" ? " " : scalar) }
        return String(scalars)
    }

    private func descriptor(for key: String) throws -> Int32 {
        if let partition = partitions[key], partition.fd >= 0 {
            if openOrder.last != key, let index = openOrder.firstIndex(of: key) { openOrder.remove(at: index); openOrder.append(key) }
            return partition.fd
        }
        if openOrder.count >= maxOpenFiles, let oldest = openOrder.first {
            openOrder.removeFirst()
            if let fd = partitions[oldest]?.fd, fd >= 0 { close(fd) }
            partitions[oldest]?.fd = -1
        }
        var partition: Partition
        if let known = partitions[key] {
            partition = known
        } else {
            // A new partition: its directory must resolve inside the output directory before anything is written.
            do { _ = try StorageLayout.directory(Self.directoryPart(of: key), inside: outputDirectory, create: false) } catch {
                throw StorageWriteError.from(error, path: outputDirectory + "/" + key)
            }
            workFileCount += 1
            partition = Partition(relativeBase: key, workPath: workDirectory + "/\(workFileCount).log")
        }
        let fd = open(partition.workPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageWriteError.last(partition.workPath, "open") }
        partition.fd = fd
        partitions[key] = partition
        openOrder.append(key)
        return fd
    }

    private func writeAll(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int, path: String) throws {
        var offset = 0
        while offset < count {
            let n = write(fd, base + offset, count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageWriteError.last(path, "write")
            }
            offset += n
        }
    }

    /// Compresses the work file of `key` to its final name and forgets it.
    private func publish(_ key: String) throws {
        guard var partition = partitions[key] else { return }
        if partition.fd >= 0 { close(partition.fd); partition.fd = -1 }
        if let index = openOrder.firstIndex(of: key) { openOrder.remove(at: index) }
        partitions[key] = nil
        guard partition.bytes > 0 else { unlink(partition.workPath); return }
        let directory: String
        do {
            directory = try StorageLayout.directory(Self.directoryPart(of: key), inside: outputDirectory, create: true)
        } catch {
            // Checked at the first record; refused now only if the tree changed meanwhile: fatal for the run.
            let refused = StorageWriteError.from(error, path: outputDirectory + "/" + key)
            if case let .invalidPath(path, reason) = refused { throw StorageWriteError.io(path: path, operation: "publish", errno: EPERM, message: reason) }
            throw refused
        }
        let finalPath = directory + "/" + (key as NSString).lastPathComponent + "." + Self.randomHex() + ".xz"
        let partial = finalPath + ".partial"
        let writer = try XZWriter(path: partial, preset: preset)
        let input = open(partition.workPath, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw StorageWriteError.last(partition.workPath, "open") }
        defer { close(input) }
        let block = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { block.deallocate() }
        while true {
            let n = read(input, block, 1 << 20)
            if n < 0 { if errno == EINTR { continue }; throw StorageWriteError.last(partition.workPath, "read") }
            if n == 0 { break }
            try writer.write(UnsafeRawBufferPointer(start: block, count: n))
        }
        try writer.finish(sync: true)
        guard rename(partial, finalPath) == 0 else { throw StorageWriteError.last(finalPath, "rename") }
        unlink(partition.workPath)
        compressedBytes += writer.compressedBytes
        publishedFiles.append(finalPath)
        partition.bytes = 0
    }

    /// `"a/b/c.date.v2.log"` → `"a/b"`.
    static func directoryPart(of key: String) -> String {
        guard let slash = key.lastIndex(of: "/") else { return "" }
        return String(key[..<slash])
    }

    /// 32 lowercase hex digits (a random 128-bit id, as the seed's uuid4().hex).
    static func randomHex() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let digits = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }.joined()
    }
}
