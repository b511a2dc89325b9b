import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes to standard output and files that report write failures (disk full, a closed pipe) instead of
/// trapping as `FileHandle.write(_:)` does (docs/store.md "Full disk").
enum Output {
    /// A failed write: `file` is "standard output" or the path, `reason` the system's.
    struct WriteFailure: Error, CustomStringConvertible {
        var file: String
        var reason: String
        var description: String { "\(file): write failed: \(reason)" }
    }

    /// Writes all of `text` to `descriptor`, retrying on EINTR and short writes.
    /// - Throws: `WriteFailure` naming `name`.
    static func write(_ text: String, to descriptor: Int32, name: String) throws {
        var bytes = Array(text.utf8)
        var failure: String?
        bytes.withUnsafeMutableBytes { raw in
            var done = 0
            while done < raw.count, let base = raw.baseAddress {
                let n = Glibc.write(descriptor, base + done, raw.count - done)
                if n > 0 { done += n; continue }
                if n < 0 && errno == EINTR { continue }
                failure = n < 0 ? String(cString: strerror(errno)) : "short write"
                return
            }
        }
        if let failure { throw WriteFailure(file: name, reason: failure) }
    }

    /// Writes `text` to standard output.
    static func standardOutput(_ text: String) throws { try write(text, to: 1, name: "standard output") }

    /// Creates or truncates `path` and writes `text`; on a failure the partial file is removed.
    /// - Throws: `WriteFailure` naming `path`.
    static func file(_ text: String, path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WriteFailure(file: path, reason: String(cString: strerror(errno))) }
        var info = stat()
        let isRegular = fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG   // never unlink a device (/dev/full)
        do {
            try write(text, to: fd, name: path)
            guard !isRegular || fsync(fd) == 0 else { throw WriteFailure(file: path, reason: String(cString: strerror(errno))) }
            guard close(fd) == 0 else {
                let reason = String(cString: strerror(errno))
                if isRegular { unlink(path) }
                throw WriteFailure(file: path, reason: reason)
            }
        } catch {
            close(fd)
            if isRegular { unlink(path) }
            throw error
        }
    }

    /// `ExitCode(2)` after printing `error`: what a command does when its output cannot be written.
    static func failed(_ error: Error) -> ExitCode {
        printError("\(error)")
        return ExitCode(2)
    }
}
