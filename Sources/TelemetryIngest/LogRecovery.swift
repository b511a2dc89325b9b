import Foundation
import TelemetryCore

/// Finishes raw-log files that a server on this host left unfinished because it died (`kill -9`, power loss):
/// each is cut back to the end of its last complete record and renamed `.finished`, so no torn record ever
/// reaches a reader and no acknowledged record stays in a file that consumers ignore (`docs/ingest.md`
/// "Durability").
///
/// A file qualifies when its name is `<log_base>.v1|v2.<this host>.<pid>…`, it has no `.finished` suffix, and no
/// live process holds its advisory lock: a writer takes `flock(LOCK_EX)` on each log file it creates and holds it
/// until the file is renamed `.finished` (`LogFileOperations.create`); the kernel drops the lock when the process
/// dies, whatever its PID. So a file named with this very process's PID (a container restart, where the server
/// is PID 1 every time) is recovered, and a live server's current file — in this process or another — is left
/// alone. The PID in the name is only a name.
enum LogRecovery {
    /// One recovered file.
    struct Outcome: Equatable {
        /// The `.finished` path, or nil when the file held no complete record and was removed.
        var finishedPath: String?
        /// The unfinished file's path.
        var originalPath: String
        /// Bytes cut from the end (a torn record).
        var truncatedBytes: Int
        /// Complete records kept.
        var records: Int
    }

    /// Recovers every qualifying file in `directory`.
    /// - Throws: nothing; a file that cannot be recovered is reported through `log` and left as it is.
    /// - Complexity: reads each qualifying file once.
    static func recover(directory: String, logBase: String, hostName: String, fsync: FsyncPolicy,
                        log: @Sendable (String) -> Void) -> [Outcome] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var outcomes: [Outcome] = []
        for name in names.sorted() where !name.hasSuffix(".finished") {
            guard let version = [RawLogVersion.v1, .v2].first(where: { name.hasPrefix("\(logBase).\($0.rawValue).\(hostName).") }) else {
                continue
            }
            let rest = name.dropFirst("\(logBase).\(version.rawValue).\(hostName).".count)
            guard Int32(rest.split(separator: ".").first ?? "") != nil, rest.split(separator: ".").count >= 2 else { continue }
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            // Held for the whole recovery: a second server starting at the same time skips the file.
            let lock = open(path, O_RDONLY | O_CLOEXEC)
            guard lock >= 0 else { continue }
            defer { close(lock) }
            guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { continue }   // a live writer holds it
            do {
                outcomes.append(try recoverFile(path: path, version: version, fsync: fsync))
            } catch {
                log("recovery of \(path) failed: \(error)")
            }
        }
        if fsync != .never && !outcomes.isEmpty {
            _ = LogFileOperations.posix.syncDirectory(directory)
        }
        return outcomes
    }

    /// Truncates `path` after its last complete record and renames it `.finished` (removes it when empty).
    /// - Throws: `IngestError.io` when the file cannot be read, truncated or renamed.
    static func recoverFile(path: String, version: RawLogVersion, fsync: FsyncPolicy) throws -> Outcome {
        var size = stat()
        guard stat(path, &size) == 0 else { throw IngestError.current(path, "stat") }
        let fileSize = Int(size.st_size)
        // Any length up to the file size is plausible here: the file may come from a run with larger limits.
        let limits = RawLogLimits(maxPathBytes: Int(UInt16.max), maxDataBytes: max(fileSize, 1), maxIPBytes: Int(UInt8.max))
        var goodEnd = 0
        var records = 0
        if fileSize > 0 {
            let reader: RawLogReader
            do {
                reader = try RawLogReader(path: path, version: version, limits: limits, mode: .strict)
            } catch {
                throw IngestError.io(path: path, operation: "open", errno: EIO, message: "\(error)")
            }
            while true {
                do {
                    guard let item = try reader.next() else { break }
                    if case let .record(record) = item {
                        goodEnd = record.offset + record.encodedByteCount
                        records += 1
                    }
                } catch {
                    break   // the first damage: everything from here is a torn (never acknowledged) tail
                }
            }
        }
        if records == 0 {
            guard unlink(path) == 0 else { throw IngestError.current(path, "unlink") }
            return Outcome(finishedPath: nil, originalPath: path, truncatedBytes: fileSize, records: 0)
        }
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IngestError.current(path, "open") }
        defer { close(fd) }
        if goodEnd < fileSize, ftruncate(fd, off_t(goodEnd)) != 0 { throw IngestError.current(path, "ftruncate") }
        if fsync != .never { _ = LogFileOperations.posix.sync(fd) }
        let finished = path + ".finished"
        guard rename(path, finished) == 0 else { throw IngestError.current(path, "rename") }
        return Outcome(finishedPath: finished, originalPath: path, truncatedBytes: fileSize - goodEnd, records: records)
    }
}
