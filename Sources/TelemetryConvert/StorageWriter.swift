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

    /// The storage writer's form of a checked write's failure.
    static func from(_ failure: FileOutput.Failure) -> StorageWriteError {
        .io(path: failure.file, operation: failure.operation, errno: failure.errno, message: failure.reason)
    }
}

/// Writes converted records into the storage layout (`spec/storage.md` §1, §3).
///
/// Records go to uncompressed work files (one per partition) in the writer's work directory (hidden: under
/// `<out>/.convert/`, never seen by readers). A work file that reaches `maxFileBytes` uncompressed bytes, and every
/// work file at `stageAll()`, is compressed to xz (CRC64, `preset`), fsynced, in the same work directory: a
/// *staged* file (`StagedFile`), complete but not yet visible. Staged files are published by renaming them to
/// `<...>.v<format>.log.<32 lowercase hex>.xz` in their partition directory: by `ConvertRun.commit` (convert, with
/// its journal: docs/convert.md "Guarantees") or by `finish()` (a writer used alone). So a finished name always
/// means a complete file, and a crash leaves only files inside the hidden work directory.
/// Every path component comes from `StorageLayout.pathComponent` and every directory is checked (resolved,
/// symlinks included) to be inside the output directory before a file is opened in it; a partition that would
/// leave it is refused with `StorageWriteError.invalidPath`. Memory stays small whatever the number of
/// partitions: at most `maxOpenFiles` descriptors are open; one xz encoder runs at a time.
///
/// - Important: Not `Sendable`: one writer per thread (convert gives each job its own writer).
public final class StorageWriter {
    public let outputDirectory: String
    public let schema: DimensionSchema
    public let formatVersion: Int
    public let maxFileBytes: Int
    public let preset: UInt32
    /// Files published by `finish()`, in the order they were published.
    public private(set) var publishedFiles: [String] = []
    /// Uncompressed bytes written (record lines).
    public private(set) var uncompressedBytes = 0
    /// Uncompressed bytes appended since the last `takeStaged()` or `discard()` (what a commit would publish).
    public private(set) var pendingBytes = 0
    /// Compressed bytes published by `finish()`.
    public private(set) var compressedBytes = 0

    /// The work directory, relative to the output directory and absolute (resolved).
    let workRelative: String
    let workDirectory: String
    private var partitions: [String: Partition] = [:]
    private var openOrder: [String] = []
    private var workFileCount = 0
    private var staged: [StagedFile] = []
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
    ///   - workDirectory: the work directory relative to `outputDirectory` (default `.convert/writers/<writerID>`;
    ///     convert uses its run's directory, `.convert/runs/<run id>/<job>`).
    /// - Throws: `StorageWriteError.io` when the directories cannot be created.
    public init(outputDirectory: String, schema: DimensionSchema, writerID: String, formatVersion: Int = 2,
                maxFileBytes: Int = 500_000_000, preset: UInt32 = 0, workDirectory: String? = nil) throws {
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
        workRelative = workDirectory ?? ".convert/writers/" + writerID
        do {
            self.workDirectory = try StorageLayout.directory(workRelative, inside: outputDirectory, create: true)
        } catch {
            throw StorageWriteError.from(error, path: outputDirectory + "/" + workRelative)
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
        do throws(FileOutput.Failure) {
            try FileOutput.writeAll(fd, line, name: partitions[key]?.workPath ?? key)
        } catch {
            throw StorageWriteError.from(error)
        }
        let count = line.utf8.count
        partitions[key]?.bytes += count
        uncompressedBytes += count
        pendingBytes += count
        if let bytes = partitions[key]?.bytes, bytes >= maxFileBytes { try stage(key) }
    }

    /// Compresses every partition's work file to a staged file.
    /// - Throws: `StorageWriteError.io` or `CompressionError`.
    public func stageAll() throws {
        for key in partitions.keys.sorted() { try stage(key) }
    }

    /// The staged files so far (complete, fsynced, not yet published), which the writer forgets: the caller
    /// publishes them (`ConvertRun.commit`).
    func takeStaged() -> [StagedFile] {
        defer { staged = []; pendingBytes = 0 }
        return staged
    }

    /// Forgets every record not yet taken: closes and removes the work files and the staged files (and anything
    /// else in the work directory, e.g. staged errors files).
    public func discard() {
        for partition in partitions.values where partition.fd >= 0 { close(partition.fd) }
        partitions = [:]
        openOrder = []
        staged = []
        pendingBytes = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: workDirectory)) ?? [] {
            unlink(workDirectory + "/" + name)
        }
    }

    /// A new path in the work directory for a file the caller stages itself: (relative to the output directory,
    /// absolute).
    func stagingPath(suffix: String) -> (relative: String, absolute: String) {
        workFileCount += 1
        let name = "\(workFileCount)\(suffix)"
        return (workRelative + "/" + name, workDirectory + "/" + name)
    }

    /// Stages every partition and publishes every staged file (rename into its partition directory, directories
    /// fsynced), then removes the work directory: for a writer used alone, without convert's journal.
    /// - Throws: `StorageWriteError.io` or `CompressionError`.
    public func finish() throws {
        try stageAll()
        var directories = Set<String>()
        for file in takeStaged() {
            let (path, directory) = try file.publish(outputDirectory: outputDirectory)
            publishedFiles.append(path)
            compressedBytes += file.compressedBytes
            directories.insert(directory)
        }
        for directory in directories.sorted() {
            do throws(FileOutput.Failure) { try FileOutput.syncDirectory(directory) } catch { throw StorageWriteError.from(error) }
        }
        try? FileManager.default.removeItem(atPath: workDirectory)
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

    /// Compresses the work file of `key` to a staged file in the work directory and forgets the partition.
    private func stage(_ key: String) throws {
        guard var partition = partitions[key] else { return }
        if partition.fd >= 0 { close(partition.fd); partition.fd = -1 }
        if let index = openOrder.firstIndex(of: key) { openOrder.remove(at: index) }
        partitions[key] = nil
        guard partition.bytes > 0 else { unlink(partition.workPath); return }
        let target = stagingPath(suffix: ".xz")
        let writer = try XZWriter(path: target.absolute, preset: preset)
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
        unlink(partition.workPath)
        let final = key + "." + Self.randomHex() + ".xz"
        staged.append(StagedFile(staged: target.relative, final: final, compressedBytes: writer.compressedBytes))
        partition.bytes = 0
        FaultInjection.hit("convert.stage")
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
