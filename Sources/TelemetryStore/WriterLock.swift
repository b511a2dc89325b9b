import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The store's writer lock (docs/store.md "One writer at a time"): an advisory `flock(2)` on `<store>.lock`,
/// held for the whole of a write operation (import, reindex, column rebuild, setup of a new store, a user's
/// writing SQL). Readers never take it: WAL lets them read the last commit while a writer works.
///
/// `flock` locks belong to an open file description, so two `Store`s in one process exclude each other as two
/// processes do, and the kernel releases the lock when the holder dies (kill -9 included): a stale lock file
/// never blocks anyone. The file holds the holder's pid and operation (`"<pid> <operation>\n"`) for the message
/// a waiting writer prints; it is never deleted (deleting it would let two writers lock two different files).
///
/// - Important: Not `Sendable`: owned by one `Store`.
final class WriterLock {
    /// `<store>.lock`.
    let path: String
    private let descriptor: Int32

    /// Who holds a lock: read from the lock file, best effort (the holder may be writing it).
    struct Holder: Equatable {
        var pid: Int32?
        var operation: String?
        var text: String {
            switch (operation, pid) {
            case let (operation?, pid?): "the \(operation) by pid \(pid)"
            case let (nil, pid?): "pid \(pid)"
            default: "another process"
            }
        }
    }

    /// The lock file beside the store at `storePath`.
    static func path(storePath: String) -> String { storePath + ".lock" }

    /// Takes the lock for `operation`, waiting up to `waitSeconds` (0: do not wait) for the current holder.
    /// - Parameter waiting: called once, before waiting, with a message naming the holder.
    /// - Throws: `StoreError.writerBusy` when the wait ends with the lock still held; `StoreError.lockFailed` when
    ///   the lock file cannot be opened (e.g. a read-only directory).
    init(storePath: String, operation: String, waitSeconds: Double, waiting: ((String) -> Void)?) throws {
        path = Self.path(storePath: storePath)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw StoreError.lockFailed(path: path, reason: String(cString: strerror(errno)))
        }
        descriptor = fd
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw StoreError.lockFailed(path: path, reason: reason)
            }
            let holder = Self.holder(fd: fd)
            let deadline = Date().addingTimeInterval(max(0, waitSeconds))
            if waitSeconds > 0 {
                waiting?("waiting for \(holder.text) to finish with \(storePath) (up to \(Self.seconds(waitSeconds)); --wait SECONDS changes this)…")
            }
            var locked = false
            while !locked {
                if flock(fd, LOCK_EX | LOCK_NB) == 0 { locked = true; break }
                if Date() >= deadline { break }
                usleep(50_000)
            }
            guard locked else {
                close(fd)
                throw StoreError.writerBusy(path: storePath, holder: holder.text, waitedSeconds: max(0, waitSeconds))
            }
        }
        // Record who holds it (best effort: a failure here changes nothing about the lock).
        let text = Array("\(getpid()) \(operation)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        _ = ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    private static func holder(fd: Int32) -> Holder {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return Holder() }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = text.split(separator: " ", maxSplits: 1)
        guard let first = parts.first, let pid = Int32(first) else { return Holder() }
        return Holder(pid: pid, operation: parts.count > 1 ? String(parts[1]) : nil)
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }
}
