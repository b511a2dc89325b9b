import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Checked writes to descriptors and files: every failure (ENOSPC, EIO, EFBIG, EPIPE, a short write) is a
/// `FileOutput.Failure` naming the file, never a trap (Foundation's `FileHandle.write(_:)` traps on any write
/// error) and never ignored. The one implementation every stage's output goes through: convert's work, output,
/// errors and journal files, the store's whole-file writes, the CLI's and the REPL's output (docs/store.md and
/// docs/convert.md "Full disk").
public enum FileOutput {
    /// A failed file-system call on an output: `file` is the path (or "standard output"), `operation` the call
    /// (`write`, `open`, `fsync`, `rename`, …), `reason` the system's message for `errno`.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var file: String
        public var operation: String
        public var errno: Int32
        public var reason: String

        public init(file: String, operation: String, errno: Int32) {
            self.file = file
            self.operation = operation
            self.errno = errno
            reason = errno == 0 ? "short write" : String(cString: strerror(errno))
        }

        public var description: String { "\(file): \(operation) failed: \(reason)" }

        /// The failure of the last system call (`errno`), naming `file`.
        public static func last(_ file: String, _ operation: String) -> Failure {
            Failure(file: file, operation: operation, errno: Glibc.errno)
        }
    }

    /// Writes `count` bytes at `base` to `descriptor`, retrying on EINTR and short writes.
    /// - Throws: `Failure` (`write`) naming `name`.
    public static func writeAll(_ descriptor: Int32, _ base: UnsafeRawPointer, count: Int, name: String) throws(Failure) {
        var done = 0
        while done < count {
            let n = Glibc.write(descriptor, base + done, count - done)
            if n > 0 { done += n; continue }
            if n < 0 && Glibc.errno == EINTR { continue }
            throw Failure(file: name, operation: "write", errno: n < 0 ? Glibc.errno : 0)
        }
    }

    /// Writes all of `bytes` to `descriptor`.
    /// - Throws: `Failure` (`write`) naming `name`.
    public static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], name: String) throws(Failure) {
        let result: Result<Void, Failure> = bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return .success(()) }
            do throws(Failure) { try writeAll(descriptor, base, count: raw.count, name: name); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Writes all of `text` (UTF-8) to `descriptor`.
    /// - Throws: `Failure` (`write`) naming `name`.
    public static func writeAll(_ descriptor: Int32, _ text: String, name: String) throws(Failure) {
        try writeAll(descriptor, Array(text.utf8), name: name)
    }

    /// Creates or truncates `path` (mode 0644 before umask), writes `bytes`, fsyncs (regular files only) and
    /// closes; on any failure a regular file is removed (a device such as `/dev/full` is never unlinked).
    /// - Throws: `Failure` naming `path`.
    public static func writeWhole(_ bytes: [UInt8], to path: String) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .last(path, "open") }
        var info = stat()
        let isRegular = fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
        do throws(Failure) {
            try writeAll(fd, bytes, name: path)
            if isRegular, fsync(fd) != 0 { throw Failure.last(path, "fsync") }
        } catch {
            close(fd)
            if isRegular { unlink(path) }
            throw error
        }
        if close(fd) != 0 {
            let failure = Failure.last(path, "close")
            if isRegular { unlink(path) }
            throw failure
        }
    }

    /// Replaces `path` atomically: writes `bytes` to a hidden temporary file beside it, fsyncs, renames it over
    /// `path` and fsyncs the directory. Readers see the old file or the whole new one; a crash leaves at most the
    /// temporary file (`.<name>.<pid>.tmp`).
    /// - Throws: `Failure` naming the file concerned.
    public static func replaceAtomically(_ bytes: [UInt8], at path: String) throws(Failure) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "" : directory + "/") + "." + (path as NSString).lastPathComponent + ".\(getpid()).tmp"
        try writeWhole(bytes, to: temporary)
        guard rename(temporary, path) == 0 else {
            let failure = Failure.last(path, "rename")
            unlink(temporary)
            throw failure
        }
        try syncDirectory(directory.isEmpty ? "." : directory)
    }

    /// fsyncs the directory at `path`, so the renames and creations in it are durable.
    /// - Throws: `Failure` (`fsync`) naming the directory.
    public static func syncDirectory(_ path: String) throws(Failure) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .last(path, "open") }
        defer { close(fd) }
        guard fsync(fd) == 0 || Glibc.errno == EINVAL else { throw .last(path, "fsync") }
    }
}

/// Fault injection for the crash tests (docs/convert.md "Guarantees"): `TELEMETRY_FAULT=<point>:<n>` makes the
/// process kill itself with SIGKILL at the n-th time (1-based) it passes the named point; unset, `hit` costs one
/// comparison. Points are named `<stage>.<step>`, e.g. `convert.publish`.
public enum FaultInjection {
    private static let target: (point: String, count: Int)? = {
        guard let value = ProcessInfo.processInfo.environment["TELEMETRY_FAULT"], let colon = value.lastIndex(of: ":"),
              let count = Int(value[value.index(after: colon)...]), count > 0 else { return nil }
        return (String(value[..<colon]), count)
    }()
    private static let counter = Counter()

    private final class Counter: @unchecked Sendable {   // `lock` guards `value`
        let lock = NSLock()
        var value = 0
        func next() -> Int { lock.withLock { value += 1; return value } }
    }

    /// Kills the process (SIGKILL, no cleanup) when `point` is the configured one and this is its n-th pass.
    @inline(__always)
    public static func hit(_ point: String) {
        guard let target, target.point == point else { return }
        if counter.next() == target.count { kill(getpid(), SIGKILL) }
    }
}
