import Foundation
import TelemetryCore
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
        do throws(FileOutput.Failure) { try FileOutput.writeWhole(bytes, to: path) } catch {
            throw StoreError.writeFailed(path: path, reason: error.reason)
        }
    }
}
