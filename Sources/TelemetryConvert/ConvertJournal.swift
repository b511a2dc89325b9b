import Foundation
import TelemetryCore
#if canImport(Glibc)
import Glibc
#endif

/// An input file as convert's journal identifies it: its resolved path, size in bytes and modification time in
/// nanoseconds since 1970 (docs/convert.md "Guarantees": a file changed in place or moved is a new input).
public struct InputIdentity: Hashable, Codable, Sendable {
    public var path: String
    public var size: Int64
    public var mtimeNanoseconds: Int64

    enum CodingKeys: String, CodingKey { case path, size, mtimeNanoseconds = "mtime_ns" }

    /// The identity of the regular file at `path` (symlinks resolved), or nil when it cannot be stat'ed.
    public static func of(_ path: String) -> InputIdentity? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        var info = stat()
        guard stat(resolved, &info) == 0 else { return nil }
        return InputIdentity(path: String(cString: resolved), size: Int64(info.st_size),
                             mtimeNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }
}

/// A complete output file of a convert run waiting to be published: `staged` (inside the run's hidden work
/// directory) and `final` (its name in the storage layout, or `errors/<input>.errors.jsonl`), both relative to
/// the output directory.
struct StagedFile: Codable, Equatable, Sendable {
    var staged: String
    var final: String
    var compressedBytes: Int

    enum CodingKeys: String, CodingKey { case staged, final, compressedBytes = "bytes" }

    /// Renames the staged file to its final name, creating (and checking) the final directory inside the output
    /// directory. Idempotent: a staged file already gone whose final file exists was published before (a
    /// commit rolled forward twice).
    /// - Returns: the final path and its directory (both resolved).
    /// - Throws: `StorageWriteError.io` (a final directory that would leave the output root is refused with EPERM).
    func publish(outputDirectory: String) throws -> (path: String, directory: String) {
        let directoryPart = StorageWriter.directoryPart(of: final)
        let directory: String
        do {
            directory = try StorageLayout.directory(directoryPart, inside: outputDirectory, create: true)
        } catch {
            let refused = StorageWriteError.from(error, path: outputDirectory + "/" + final)
            if case let .invalidPath(path, reason) = refused { throw StorageWriteError.io(path: path, operation: "publish", errno: EPERM, message: reason) }
            throw refused
        }
        let path = directory + "/" + (final as NSString).lastPathComponent
        let source = outputDirectory + "/" + staged
        if rename(source, path) != 0 {
            let failure = StorageWriteError.last(path, "rename")
            var info = stat()
            guard errno == ENOENT, lstat(source, &info) != 0, lstat(path, &info) == 0 else { throw failure }
        }
        FaultInjection.hit("convert.publish")
        return (path, directory)
    }
}

/// What one commit publishes: the input files whose every record is in `files` (and that the journal then marks
/// converted), and the staged files to rename. Written to the run's directory before any rename: the commit point.
struct CommitRecord: Codable, Sendable {
    var run: String
    var inputs: [InputIdentity]
    var files: [StagedFile]
}

/// Another run committed some of a commit's input files after this run read the journal (two runs over the same
/// inputs at once): the commit publishes nothing, those inputs count as already converted.
struct ConvertedMeanwhile: Error {
    var inputs: Set<InputIdentity>
}

/// One `telemetry convert` run's claim on an output directory, its work directory and its journal
/// (docs/convert.md "Guarantees"):
///
/// - `<out>/.convert/runs/<id>/`: the run's work files, staged files and commit records; `<id>.lock` beside it is
///   flock'ed by the live run for its whole life. A run directory whose lock no process holds (or that has no
///   lock) belongs to a dead run: at the next `begin`, its commit records are rolled forward (renames finished,
///   journal appended) and everything else in it is removed.
/// - `<out>/.convert/journal.jsonl`: one JSON line per commit, `{"run", "inputs": [InputIdentity], "files"}`;
///   an input listed there is converted: later runs skip it.
/// - `<out>/.convert/gc.lock`: held while a run starts (its lock taken, dead runs recovered) and ends, so a
///   starting run never sees another one half-made.
///
/// Commits of several jobs may run at once (`commit` is thread-safe); journal appends are serialized by a flock on
/// the journal.
final class ConvertRun: @unchecked Sendable {   // immutable after `begin` except `sequence`, guarded by `lock`
    static let rootName = ".convert"

    let outputDirectory: String
    let id: String
    /// The run's directory relative to the output directory (`.convert/runs/<id>`) and absolute.
    let relativeDirectory: String
    let directory: String
    /// Input files already converted by earlier runs (the journal).
    let converted: Set<InputIdentity>
    /// Files published while recovering dead runs' commits.
    let recoveredFiles: [String]
    /// Work and partial files of dead runs removed at start.
    let removedStaleEntries: Int

    private let runsDirectory: String
    private let rootDirectory: String
    private let lockDescriptor: Int32
    private let lock = NSLock()
    private var sequence = 0
    private var incompleteCommits = 0

    /// True when a commit failed after its commit point: its record and staged files must stay for the next run.
    var hasIncompleteCommit: Bool { lock.withLock { incompleteCommits > 0 } }

    private var journalPath: String { rootDirectory + "/journal.jsonl" }

    private init(outputDirectory: String, id: String, rootDirectory: String, runsDirectory: String, lockDescriptor: Int32,
                 converted: Set<InputIdentity>, recoveredFiles: [String], removedStaleEntries: Int) {
        self.outputDirectory = outputDirectory
        self.id = id
        self.rootDirectory = rootDirectory
        self.runsDirectory = runsDirectory
        relativeDirectory = Self.rootName + "/runs/" + id
        directory = runsDirectory + "/" + id
        self.lockDescriptor = lockDescriptor
        self.converted = converted
        self.recoveredFiles = recoveredFiles
        self.removedStaleEntries = removedStaleEntries
    }

    /// Starts a run in `outputDirectory` (created if missing): takes the run's lock, recovers dead runs (rolls
    /// their commits forward, removes their work files), removes the work and `.partial` files earlier versions
    /// left (`<out>/.work/`, `*.xz.partial`), and reads the journal.
    /// - Throws: `StorageWriteError.io` naming the file concerned (a journal line that is not JSON included).
    static func begin(outputDirectory: String) throws -> ConvertRun {
        do {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw StorageWriteError.io(path: outputDirectory, operation: "mkdir", errno: EIO, message: "\(error)")
        }
        let runs: String
        do {
            runs = try StorageLayout.directory(rootName + "/runs", inside: outputDirectory, create: true)
        } catch {
            throw StorageWriteError.from(error, path: outputDirectory + "/" + rootName + "/runs")
        }
        let root = (runs as NSString).deletingLastPathComponent
        let output = (root as NSString).deletingLastPathComponent
        let gc = try Self.lockFile(root + "/gc.lock", blocking: true)
        defer { flock(gc, LOCK_UN); close(gc) }

        let id = StorageWriter.randomHex()
        let lockPath = runs + "/" + id + ".lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StorageWriteError.last(lockPath, "open") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let failure = StorageWriteError.last(lockPath, "flock")
            close(descriptor)
            throw failure
        }
        do {
            var recovered: [String] = []
            var removed = 0
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []).sorted() {
                if name == id || name == id + ".lock" { continue }
                if name.hasSuffix(".lock") {
                    // A lock without a directory: a run that ended (or died) between removing the two.
                    let base = String(name.dropLast(5))
                    if !FileManager.default.fileExists(atPath: runs + "/" + base), let dead = try? lockFile(runs + "/" + name, blocking: false) {
                        unlink(runs + "/" + name)
                        close(dead)
                    }
                    continue
                }
                let deadLock: Int32
                if FileManager.default.fileExists(atPath: runs + "/" + name + ".lock") {
                    guard let held = try? lockFile(runs + "/" + name + ".lock", blocking: false) else { continue }   // live
                    deadLock = held
                } else {
                    deadLock = -1
                }
                defer { if deadLock >= 0 { close(deadLock) } }
                recovered += try rollForward(runDirectory: runs + "/" + name, outputDirectory: output, journal: root + "/journal.jsonl")
                try? FileManager.default.removeItem(atPath: runs + "/" + name)
                unlink(runs + "/" + name + ".lock")
                removed += 1
            }
            removed += try removeLegacyFiles(outputDirectory: output, root: root)
            guard mkdir(runs + "/" + id, 0o755) == 0 else { throw StorageWriteError.last(runs + "/" + id, "mkdir") }
            let converted = try readJournal(root + "/journal.jsonl")
            return ConvertRun(outputDirectory: output, id: id, rootDirectory: root, runsDirectory: runs, lockDescriptor: descriptor,
                              converted: converted, recoveredFiles: recovered, removedStaleEntries: removed)
        } catch {
            unlink(lockPath)
            close(descriptor)
            throw error
        }
    }

    /// Publishes `files` and marks `inputs` converted, atomically as one unit: the commit record is written
    /// (fsynced, renamed into the run's directory: the commit point), the files are renamed to their final names
    /// (their directories fsynced), the journal gets one line (fsynced), and the commit record is removed. A crash
    /// after the commit point is finished by the next run (`begin`); before it, nothing of the unit is visible.
    /// The journal's flock is held from the check below to the journal line, so commits into one output directory
    /// are serialized, also across processes.
    /// - Returns: the published paths (resolved) of the storage files (not the errors files).
    /// - Throws: `ConvertedMeanwhile` (nothing published) when another run committed one of `inputs` since this
    ///   run read the journal; `StorageWriteError.io` naming the file concerned; a failure after the commit point
    ///   leaves the commit record, which the next run finishes.
    func commit(inputs: [InputIdentity], files: [StagedFile]) throws -> [String] {
        guard !inputs.isEmpty || !files.isEmpty else { return [] }
        let journal = open(journalPath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard journal >= 0 else { throw StorageWriteError.last(journalPath, "open") }
        defer { close(journal) }
        while flock(journal, LOCK_EX) != 0 {
            guard errno == EINTR else { throw StorageWriteError.last(journalPath, "flock") }
        }
        defer { flock(journal, LOCK_UN) }
        let meanwhile = try Self.readJournal(journalPath).intersection(inputs)
        guard meanwhile.isEmpty else { throw ConvertedMeanwhile(inputs: meanwhile) }
        let number = lock.withLock { sequence += 1; return sequence }
        let record = CommitRecord(run: id, inputs: inputs, files: files)
        let path = directory + "/commit-\(number).json"
        let data: Data
        do { data = try JSONEncoder().encode(record) } catch {
            throw StorageWriteError.io(path: path, operation: "encode", errno: EINVAL, message: "\(error)")
        }
        do throws(FileOutput.Failure) {
            try FileOutput.writeWhole(Array(data), to: path + ".tmp")
            guard rename(path + ".tmp", path) == 0 else { throw FileOutput.Failure.last(path, "rename") }
            try FileOutput.syncDirectory(directory)
        } catch {
            unlink(path + ".tmp")
            throw StorageWriteError.from(error)
        }
        FaultInjection.hit("convert.commit")
        do {
            let published = try Self.apply(record, outputDirectory: outputDirectory, journal: journalPath, lockedJournal: journal)
            unlink(path)
            return published
        } catch {
            lock.withLock { incompleteCommits += 1 }
            throw error
        }
    }

    /// Ends the run: removes its directory and lock. A directory holding a commit record (a commit that failed
    /// after its commit point) is kept whole, with the lock released: the next run finishes that commit and
    /// removes the rest.
    func end() {
        if let gc = try? Self.lockFile(rootDirectory + "/gc.lock", blocking: true) {
            defer { flock(gc, LOCK_UN); close(gc) }
            removeOwnFiles()
        } else {
            removeOwnFiles()
        }
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
    }

    private func removeOwnFiles() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        guard !names.contains(where: { $0.hasPrefix("commit-") && $0.hasSuffix(".json") }) else { return }
        try? FileManager.default.removeItem(atPath: directory)
        unlink(directory + ".lock")
    }

    // MARK: recovery

    /// Finishes every commit record of a dead run's directory (renames, journal line).
    /// - Returns: the storage files published.
    private static func rollForward(runDirectory: String, outputDirectory: String, journal: String) throws -> [String] {
        var published: [String] = []
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? [])
            .filter { $0.hasPrefix("commit-") && $0.hasSuffix(".json") }
            .sorted { (Int($0.dropFirst(7).dropLast(5)) ?? 0) < (Int($1.dropFirst(7).dropLast(5)) ?? 0) }
        for name in names {
            let path = runDirectory + "/" + name
            let record: CommitRecord
            do {
                record = try JSONDecoder().decode(CommitRecord.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw StorageWriteError.io(path: path, operation: "read", errno: EIO,
                                           message: "not a commit record (\(error)); remove it to discard that commit")
            }
            published += try apply(record, outputDirectory: outputDirectory, journal: journal)
            unlink(path)
        }
        return published
    }

    /// Renames a commit's files and appends its journal line (idempotent: see `StagedFile.publish`).
    private static func apply(_ record: CommitRecord, outputDirectory: String, journal: String,
                              lockedJournal: Int32? = nil) throws -> [String] {
        var published: [String] = []
        var directories = Set<String>()
        for file in record.files {
            let (path, directory) = try file.publish(outputDirectory: outputDirectory)
            if !file.final.hasPrefix("errors/") { published.append(path) }
            directories.insert(directory)
        }
        do throws(FileOutput.Failure) {
            for directory in directories.sorted() { try FileOutput.syncDirectory(directory) }
        } catch {
            throw StorageWriteError.from(error)
        }
        try appendJournal(record, journal: journal, lockedDescriptor: lockedJournal)
        FaultInjection.hit("convert.journal")
        return published
    }

    /// Appends the record's line to the journal under its flock (taken here, or already held on
    /// `lockedDescriptor`), after cutting a torn last line (a crash during an append; its commit record was kept,
    /// so the line is written again), and fsyncs.
    private static func appendJournal(_ record: CommitRecord, journal: String, lockedDescriptor: Int32? = nil) throws {
        var line: [UInt8]
        do { line = Array(try JSONEncoder().encode(record)) } catch {
            throw StorageWriteError.io(path: journal, operation: "encode", errno: EINVAL, message: "\(error)")
        }
        line.append(0x0A)
        let fd: Int32
        if let lockedDescriptor {
            fd = lockedDescriptor
        } else {
            fd = open(journal, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StorageWriteError.last(journal, "open") }
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    let failure = StorageWriteError.last(journal, "flock")
                    close(fd)
                    throw failure
                }
            }
        }
        defer { if lockedDescriptor == nil { flock(fd, LOCK_UN); close(fd) } }
        let size = lseek(fd, 0, SEEK_END)
        if size > 0 {
            var last: UInt8 = 0
            if pread(fd, &last, 1, size - 1) == 1, last != 0x0A {
                let keep = Self.lastNewline(fd, size: size)
                guard ftruncate(fd, keep) == 0 else { throw StorageWriteError.last(journal, "ftruncate") }
            }
        }
        do throws(FileOutput.Failure) {
            try FileOutput.writeAll(fd, line, name: journal)
            guard fsync(fd) == 0 else { throw FileOutput.Failure.last(journal, "fsync") }
        } catch {
            throw StorageWriteError.from(error)
        }
    }

    /// The length of the file up to and including its last newline (0 when it has none).
    private static func lastNewline(_ fd: Int32, size: off_t) -> off_t {
        var end = size
        var buffer = [UInt8](repeating: 0, count: 4096)
        while end > 0 {
            let start = max(0, end - off_t(buffer.count))
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(end - start), start) }
            guard n > 0 else { return 0 }
            if let index = buffer[..<n].lastIndex(of: 0x0A) { return start + off_t(index) + 1 }
            end = start
        }
        return 0
    }

    /// The inputs the journal lists. A torn last line (no newline) is ignored: its commit is finished again.
    /// - Throws: `StorageWriteError.io` for an unreadable journal or a complete line that is not a record.
    private static func readJournal(_ path: String) throws -> Set<InputIdentity> {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw StorageWriteError.io(path: path, operation: "read", errno: EIO, message: "\(error)")
        }
        var converted = Set<InputIdentity>()
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        let decoder = JSONDecoder()
        for (index, line) in lines.enumerated() where !line.isEmpty {
            if index == lines.count - 1 { break }   // no newline after it: torn
            guard let record = try? decoder.decode(CommitRecord.self, from: Data(line)) else {
                throw StorageWriteError.io(path: path, operation: "read", errno: EIO,
                                           message: "line \(index + 1) is not a journal record")
            }
            converted.formUnion(record.inputs)
        }
        return converted
    }

    /// Removes what versions without the journal left: their work directory `<out>/.work/` and, once per output
    /// directory (or whenever `.work/` is found), every `*.xz.partial` file in the storage tree.
    /// - Returns: the number of entries removed.
    private static func removeLegacyFiles(outputDirectory: String, root: String) throws -> Int {
        let legacy = outputDirectory + "/.work"
        let marker = root + "/swept"
        let hasLegacy = FileManager.default.fileExists(atPath: legacy)
        guard hasLegacy || !FileManager.default.fileExists(atPath: marker) else { return 0 }
        var removed = 0
        if hasLegacy {
            try? FileManager.default.removeItem(atPath: legacy)
            removed += 1
        }
        var pending = [outputDirectory]
        while let directory = pending.popLast() {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where !name.hasPrefix(".") {
                let path = directory + "/" + name
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }
                if info.st_mode & S_IFMT == S_IFDIR {
                    if directory == outputDirectory && name == "errors" { continue }
                    pending.append(path)
                } else if info.st_mode & S_IFMT == S_IFREG, name.hasSuffix(".xz.partial") {
                    if unlink(path) == 0 { removed += 1 }
                }
            }
        }
        do throws(FileOutput.Failure) { try FileOutput.writeWhole([], to: marker) } catch { throw StorageWriteError.from(error) }
        return removed
    }

    /// Opens (creating) `path` and flocks it exclusively.
    /// - Throws: `StorageWriteError.io` when it cannot be opened, or (not blocking) when another process holds it.
    private static func lockFile(_ path: String, blocking: Bool) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageWriteError.last(path, "open") }
        while flock(fd, LOCK_EX | (blocking ? 0 : LOCK_NB)) != 0 {
            if errno == EINTR { continue }
            let failure = StorageWriteError.last(path, "flock")
            close(fd)
            throw failure
        }
        return fd
    }
}
