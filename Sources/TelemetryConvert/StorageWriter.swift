import Foundation
import TelemetryCompression
import TelemetryCore
#if canImport(Glibc)
import Glibc
#endif

/// Errors of the storage writer: I/O on the output tree.
public enum StorageWriteError: Error, Equatable, CustomStringConvertible {
    case io(path: String, operation: String, errno: Int32, message: String)

    public var description: String {
        switch self {
        case let .io(path, operation, errno, message): "\(path): \(operation) failed: \(message) (errno \(errno))"
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
        workDirectory = outputDirectory + "/.work/" + writerID
        do {
            try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        } catch {
            throw StorageWriteError.io(path: workDirectory, operation: "mkdir", errno: EIO, message: "\(error)")
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
    /// - Throws: `StorageWriteError.io` (the record is counted `write_failed` by the caller).
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
        var partition = partitions[key] ?? Partition(
            relativeBase: key, workPath: workDirectory + "/" + key.replacingOccurrences(of: "/", with: "%") )
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
        let finalPath = outputDirectory + "/" + partition.relativeBase + "." + Self.randomHex() + ".xz"
        let directory = (finalPath as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StorageWriteError.io(path: directory, operation: "mkdir", errno: EIO, message: "\(error)")
        }
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

    /// 32 lowercase hex digits (a random 128-bit id, as the seed's uuid4().hex).
    static func randomHex() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let digits = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }.joined()
    }
}
