import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whole-file writes that report every failure (ENOSPC, EIO, EFBIG) as an error naming the file, instead of
/// Foundation calls that trap or return a bare `false` (docs/store.md "Full disk").
enum FileWriting {
    /// Creates or truncates `path` (mode 0644 before umask), writes `bytes` and fsyncs; on any failure the
    /// partial file is removed.
    /// - Throws: `StoreError.writeFailed` with the system's reason.
    static func writeWhole(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        var failure: String?
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count, let base = raw.baseAddress {
                let n = write(fd, base + done, raw.count - done)
                if n > 0 { done += n; continue }
                if n < 0 && errno == EINTR { continue }
                failure = n < 0 ? String(cString: strerror(errno)) : "short write"
                return
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        if close(fd) != 0, failure == nil { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(path)
            throw StoreError.writeFailed(path: path, reason: failure)
        }
    }
}
