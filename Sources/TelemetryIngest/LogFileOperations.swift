#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The POSIX calls the submission log makes, as values so that tests can inject failures (a full disk, a failing
/// rename). Each returns what the system call returns and leaves `errno` set on failure.
struct LogFileOperations: Sendable {
    /// Creates `path` for writing (must not exist) and takes its advisory lock (`flock(LOCK_EX)`, held while the
    /// descriptor is open: `LogRecovery` recovers only files whose lock no live process holds); returns the
    /// descriptor or -1.
    var create: @Sendable (_ path: String) -> Int32
    /// `write(2)`: bytes written or -1.
    var write: @Sendable (_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int
    /// `fdatasync(2)`.
    var sync: @Sendable (_ fd: Int32) -> Int32
    /// `ftruncate(2)`.
    var truncate: @Sendable (_ fd: Int32, _ length: Int) -> Int32
    /// `close(2)`.
    var close: @Sendable (_ fd: Int32) -> Int32
    /// `rename(2)`.
    var rename: @Sendable (_ from: String, _ to: String) -> Int32
    /// `unlink(2)`.
    var unlink: @Sendable (_ path: String) -> Int32
    /// `fsync` of a directory, so that a rename in it is durable.
    var syncDirectory: @Sendable (_ path: String) -> Int32

    /// The real system calls.
    static let posix = LogFileOperations(
        create: { path in
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return fd }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                let saved = errno
                #if canImport(Glibc)
                _ = Glibc.unlink(path)
                Glibc.close(fd)
                #else
                _ = Darwin.unlink(path)
                Darwin.close(fd)
                #endif
                errno = saved
                return -1
            }
            return fd
        },
        write: { fd, bytes in
            #if canImport(Glibc)
            Glibc.write(fd, bytes.baseAddress, bytes.count)
            #else
            Darwin.write(fd, bytes.baseAddress, bytes.count)
            #endif
        },
        sync: { fd in
            #if canImport(Glibc)
            fdatasync(fd)
            #else
            fsync(fd)
            #endif
        },
        truncate: { fd, length in ftruncate(fd, off_t(length)) },
        close: { fd in
            #if canImport(Glibc)
            Glibc.close(fd)
            #else
            Darwin.close(fd)
            #endif
        },
        rename: { from, to in
            #if canImport(Glibc)
            Glibc.rename(from, to)
            #else
            Darwin.rename(from, to)
            #endif
        },
        unlink: { path in
            #if canImport(Glibc)
            Glibc.unlink(path)
            #else
            Darwin.unlink(path)
            #endif
        },
        syncDirectory: { path in
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { return -1 }
            defer {
                #if canImport(Glibc)
                _ = Glibc.close(fd)
                #else
                _ = Darwin.close(fd)
                #endif
            }
            return fsync(fd)
        }
    )
}

/// Wall-clock milliseconds since the Unix epoch (UTC): the raw-log timestamp unit (`spec/raw-log.md` §1.1).
func wallClockMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}

/// Monotonic nanoseconds, for timers and durations.
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// This machine's host name (the `<hostname>` of raw-log file names, `spec/raw-log.md` §6.1); `localhost` when it
/// cannot be read. Slashes (impossible in practice) become `_` so the name stays one path component.
func currentHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? "localhost" : name.replacingSlashes()
}

extension String {
    fileprivate func replacingSlashes() -> String { String(map { $0 == "/" ? "_" : $0 }) }
}
