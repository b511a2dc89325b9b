import Foundation
import NIOCore
import TelemetryCore

/// What happened to a record handed to a `SubmissionSink`.
enum SubmitOutcome: Equatable {
    /// Queued; its promise completes once the bytes are written (or writing failed).
    case queued
    /// The queue is full: answer 503 (`spec/raw-log.md` §7.1 row 5a).
    case full
    /// The log is closing for shutdown: answer 503.
    case closed
}

/// Where the HTTP handler puts records. The real one is `SubmissionLog`; handler tests use an in-memory sink.
protocol SubmissionSink: AnyObject, Sendable {
    /// True when a record of about `bytes` bytes would fit in the queue now (checked when a request head arrives,
    /// before its body is read).
    func hasRoom(forBytes bytes: Int) -> Bool
    /// Queues `record`. On `.queued`, `promise` succeeds with the encoded record length once its bytes were written
    /// to the log file, or fails with `IngestError` when writing failed (nothing of the record stays in the log).
    func submit(_ record: RawRecord, promise: EventLoopPromise<Int>) -> SubmitOutcome
}

/// One raw-log writer: a bounded queue in front of one thread that appends records to the current log file,
/// rotates it (`spec/raw-log.md` §6), syncs it (`FsyncPolicy`) and completes each record's promise only after its
/// bytes were written.
///
/// Group commit: the thread takes everything queued at once, encodes it into one buffer and writes it with as few
/// `write(2)` calls as the file's size limit allows, then completes the promises with one task per event loop.
/// Records are encoded whole into that buffer, so two records' bytes never interleave.
///
/// Syncing and finishing happen on a second thread (the finisher), in order: the periodic `fdatasync` of
/// `FsyncPolicy.interval` and a rotated file's sync, close and rename never stall the writes of the next batch.
/// Only `FsyncPolicy.always` syncs on the writer thread, because its 200s must wait for the sync.
///
/// Write failure (full disk, I/O error): the file is truncated to the end of its last complete record and finished
/// (renamed `.finished`), every record of the failed write is failed (answered 500), and the next batch opens a
/// new file — so when space returns the server writes again, and no acknowledged record is left in an unfinished
/// file (§6.2, TelemetryEngine rule).
///
/// - Important: `@unchecked Sendable`: the queue fields are guarded by `condition`, the finisher's queue by
///   `jobsCondition` (which also guards the error-log clock); the file fields are confined to the writer thread (`run()`); a descriptor handed to the
///   finisher is never touched by the writer again. `start()`/`close()` are called once each from the owner.
final class SubmissionLog: SubmissionSink, @unchecked Sendable {
    private struct Pending {
        var record: RawRecord
        var promise: EventLoopPromise<Int>
    }

    let configuration: IngestConfiguration
    /// Index in the file name when the server runs several writers (§6.1); nil for a single writer.
    let writerIndex: Int?
    private let metrics: IngestMetrics
    private let operations: LogFileOperations
    private let onFinished: (@Sendable (String) -> Void)?
    private let log: @Sendable (String) -> Void
    private let hostName: String
    private let processID: Int32

    // Queue side, guarded by `condition`.
    private let condition = NSCondition()
    private var pending: [Pending] = []
    private var queuedBytes = 0
    private var stopping = false
    private var writerWaiting = false
    private var finishedRunning = false

    // Writer-thread side.
    private var fd: Int32 = -1
    private var currentPath = ""
    private var fileBytes = 0
    private var lastCreatedMilliseconds: UInt64 = 0
    private var lastWriteNanos: UInt64 = 0
    private var dirty = false
    private var nextSyncNanos: UInt64 = 0
    private var nextAgeCheckNanos: UInt64 = 0
    private var buffer: [UInt8] = []
    private var lastErrorLogNanos: UInt64 = 0
    private var thread: Thread?

    // Finisher side, guarded by `jobsCondition`.
    private enum FileJob {
        /// `fdatasync` of the file the writer is still appending to (interval group commit).
        case sync(fd: Int32, path: String)
        /// Sync (unless `never`), close, rename to `.finished`, sync the directory, report.
        case finish(fd: Int32, path: String)
        /// Close and remove a file that holds no record.
        case discard(fd: Int32, path: String)
    }
    private let jobsCondition = NSCondition()
    private var jobs: [FileJob] = []
    private var syncPending = false
    private var finisherStopping = false
    private var finisherDone = false
    private var finisherThread: Thread?

    init(configuration: IngestConfiguration, writerIndex: Int?, metrics: IngestMetrics,
         operations: LogFileOperations = .posix, log: @escaping @Sendable (String) -> Void,
         onFinished: (@Sendable (String) -> Void)?) {
        self.configuration = configuration
        self.writerIndex = writerIndex
        self.metrics = metrics
        self.operations = operations
        self.log = log
        self.onFinished = onFinished
        self.hostName = currentHostName()
        self.processID = getpid()
        chooseNewName()
    }

    /// The path of the file being written (or about to be created on the next write): for tests and logs.
    var currentFilePath: String { condition.lock(); defer { condition.unlock() }; return currentPath }

    /// Starts the writer thread.
    func start() {
        let now = monotonicNanoseconds()
        nextSyncNanos = now + UInt64(configuration.fsyncInterval.nanoseconds)
        nextAgeCheckNanos = now + UInt64(configuration.maxLogAge.nanoseconds)
        let thread = Thread { [self] in run() }
        thread.name = "telemetry-log-\(writerIndex ?? 0)"
        thread.stackSize = 1 << 20
        self.thread = thread
        let finisher = Thread { [self] in runFinisher() }
        finisher.name = "telemetry-log-finish-\(writerIndex ?? 0)"
        finisher.stackSize = 1 << 20
        finisherThread = finisher
        finisher.start()
        thread.start()
    }

    /// Stops accepting records, writes everything queued, finishes the current file and stops the thread.
    /// Blocks until done. Safe to call more than once.
    func close() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finishedRunning && thread != nil { condition.wait() }
        condition.unlock()
        jobsCondition.lock()
        finisherStopping = true
        jobsCondition.broadcast()
        while !finisherDone && finisherThread != nil { jobsCondition.wait() }
        jobsCondition.unlock()
    }

    // MARK: - Queue side (event loops)

    func hasRoom(forBytes bytes: Int) -> Bool {
        condition.lock(); defer { condition.unlock() }
        return !stopping && (queuedBytes == 0 || queuedBytes + bytes <= configuration.queueCapacityBytes)
    }

    func submit(_ record: RawRecord, promise: EventLoopPromise<Int>) -> SubmitOutcome {
        let bytes = record.encodedByteCount
        condition.lock()
        if stopping { condition.unlock(); return .closed }
        // One record always fits into an empty queue, so a capacity below max_data_length cannot stall the server.
        if queuedBytes > 0 && queuedBytes + bytes > configuration.queueCapacityBytes { condition.unlock(); return .full }
        pending.append(Pending(record: record, promise: promise))
        queuedBytes += bytes
        if writerWaiting { condition.signal() }
        condition.unlock()
        return .queued
    }

    /// Record bytes queued or being written now.
    var queuedByteCount: Int { condition.lock(); defer { condition.unlock() }; return queuedBytes }

    // MARK: - Writer thread

    private func run() {
        var batch: [Pending] = []
        while true {
            condition.lock()
            while pending.isEmpty && !stopping {
                let now = monotonicNanoseconds()
                let deadline = nextTimerNanos()
                if now >= deadline { break }
                writerWaiting = true
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double(deadline - now) / 1e9))
                writerWaiting = false
            }
            swap(&batch, &pending)
            let stop = stopping && batch.isEmpty
            condition.unlock()

            if !batch.isEmpty {
                let bytes = write(batch)
                batch.removeAll(keepingCapacity: true)
                condition.lock()
                queuedBytes -= bytes
                condition.unlock()
            }
            runTimers(now: monotonicNanoseconds())
            if stop { break }
        }
        finishCurrentFile(reason: "shutdown")
        condition.lock()
        finishedRunning = true
        condition.broadcast()
        condition.unlock()
    }

    private func nextTimerNanos() -> UInt64 {
        configuration.fsync == .interval && dirty ? min(nextSyncNanos, nextAgeCheckNanos) : nextAgeCheckNanos
    }

    /// Group commit of `fsync interval` and the age rule of §6.2 (a periodic check, not a per-file deadline).
    private func runTimers(now: UInt64) {
        if configuration.fsync == .interval && now >= nextSyncNanos {
            if dirty && fd >= 0 {
                jobsCondition.lock()
                if !syncPending {   // a sync still running covers these bytes' successors at its next round
                    syncPending = true
                    jobs.append(.sync(fd: fd, path: currentPath))
                    jobsCondition.signal()
                    dirty = false
                }
                jobsCondition.unlock()
            }
            nextSyncNanos = now + UInt64(configuration.fsyncInterval.nanoseconds)
        }
        if now >= nextAgeCheckNanos {
            let maxAge = UInt64(configuration.maxLogAge.nanoseconds)
            if fd < 0 || fileBytes == 0 {
                closeEmptyFile()
                chooseNewName()
            } else if now - lastWriteNanos > maxAge {
                finishCurrentFile(reason: "age")
            }
            nextAgeCheckNanos = now + maxAge
        }
    }

    /// Writes `batch`, rotating by size between records, completes every promise, and returns the bytes the batch
    /// held (for the queue accounting).
    private func write(_ batch: [Pending]) -> Int {
        var results = [Result<Int, IngestError>?](repeating: nil, count: batch.count)
        var chunkStart = 0
        var failure: IngestError?
        var totalBytes = 0
        buffer.removeAll(keepingCapacity: true)
        for index in batch.indices {
            let before = buffer.count
            batch[index].record.append(to: &buffer)
            totalBytes += buffer.count - before
            // §6.2: after the append that takes the file over max_log_size, finish it.
            if fileBytes + buffer.count > configuration.maxLogBytes {
                flush(batch, chunkStart...index, &results, &failure)
                if failure == nil { finishCurrentFile(reason: "size") }
                chunkStart = index + 1
            }
        }
        if chunkStart < batch.count { flush(batch, chunkStart...(batch.count - 1), &results, &failure) }
        complete(batch, results)
        return totalBytes
    }

    /// Writes `buffer` (the records `range` of `batch`) to the current file and records each record's result.
    private func flush(_ batch: [Pending], _ range: ClosedRange<Int>, _ results: inout [Result<Int, IngestError>?],
                       _ failure: inout IngestError?) {
        defer { buffer.removeAll(keepingCapacity: true) }
        if failure == nil, let error = writeBuffer() { failure = error }
        if let failure {
            for index in range { results[index] = .failure(failure) }
            return
        }
        var stored = 0
        for index in range {
            let bytes = batch[index].record.encodedByteCount
            results[index] = .success(bytes)
            stored += bytes
        }
        metrics.stored(records: range.count, bytes: stored)
    }

    /// Appends `buffer` to the current file (creating it if needed); on failure truncates the file back to its last
    /// complete record, finishes it and returns the error.
    private func writeBuffer() -> IngestError? {
        if fd < 0 {
            if let error = openFile() { return fail(error, truncate: false) }
        }
        let failure: IngestError? = buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = operations.write(fd, UnsafeRawBufferPointer(rebasing: bytes[offset...]))
                if written < 0 {
                    if errno == EINTR { continue }
                    return IngestError.current(currentPath, "write")
                }
                if written == 0 { return IngestError.io(path: currentPath, operation: "write", errno: EIO, message: "short write") }
                offset += written
            }
            return nil
        }
        if let failure { return fail(failure, truncate: true) }
        if configuration.fsync == .always {
            if operations.sync(fd) != 0 { return fail(IngestError.current(currentPath, "fdatasync"), truncate: true) }
            metrics.synced()
        } else {
            dirty = true
        }
        fileBytes += buffer.count
        lastWriteNanos = monotonicNanoseconds()
        return nil
    }

    /// The write-error rule of §6.2: cut the file back to `fileBytes` (its complete records), finish it, and let the
    /// next write open a new file.
    private func fail(_ error: IngestError, truncate: Bool) -> IngestError {
        metrics.writeFailed()
        report(error)
        if fd >= 0 && truncate {
            if operations.truncate(fd, fileBytes) != 0 {
                report(IngestError.current(currentPath, "ftruncate"))
            }
        }
        if fd >= 0 {
            finishCurrentFile(reason: "write error")
        } else {
            chooseNewName()
        }
        return error
    }

    private func openFile() -> IngestError? {
        for _ in 0..<5 {
            let descriptor = operations.create(currentPath)
            if descriptor >= 0 {
                fd = descriptor
                fileBytes = 0
                return nil
            }
            if errno != EEXIST { return IngestError.current(currentPath, "open") }
            chooseNewName()   // a name taken (same pid and millisecond): pick the next millisecond
        }
        return IngestError.io(path: currentPath, operation: "open", errno: EEXIST, message: String(cString: strerror(EEXIST)))
    }

    /// Hands the current file to the finisher (sync unless `never`, close, rename to `<name>.finished`, sync the
    /// directory, tell `onFinished`); an empty file is removed instead. A new name is chosen in any case (§6.2).
    private func finishCurrentFile(reason: String) {
        guard fd >= 0 else { chooseNewName(); return }
        if fileBytes == 0 { closeEmptyFile(); chooseNewName(); return }
        enqueue(.finish(fd: fd, path: currentPath))
        fd = -1
        dirty = false
        fileBytes = 0
        chooseNewName()
    }

    private func closeEmptyFile() {
        guard fd >= 0 else { return }
        enqueue(.discard(fd: fd, path: currentPath))
        fd = -1
        fileBytes = 0
        dirty = false
    }

    private func enqueue(_ job: FileJob) {
        jobsCondition.lock()
        jobs.append(job)
        jobsCondition.signal()
        jobsCondition.unlock()
    }

    // MARK: - Finisher thread

    private func runFinisher() {
        while true {
            jobsCondition.lock()
            while jobs.isEmpty && !finisherStopping { jobsCondition.wait() }
            if jobs.isEmpty {   // stopping, and everything handed over is done
                finisherDone = true
                jobsCondition.broadcast()
                jobsCondition.unlock()
                return
            }
            let job = jobs.removeFirst()
            jobsCondition.unlock()
            switch job {
            case let .sync(fd, path):
                if operations.sync(fd) == 0 { metrics.synced() } else { report(IngestError.current(path, "fdatasync")) }
                jobsCondition.lock()
                syncPending = false
                jobsCondition.unlock()
            case let .finish(fd, path):
                if configuration.fsync != .never {
                    if operations.sync(fd) == 0 { metrics.synced() } else { report(IngestError.current(path, "fdatasync")) }
                }
                // Renamed while still open, so its lock is held until it is `.finished`: a server starting now
                // never takes a file being finished for a dead server's (`LogRecovery`).
                let finished = path + ".finished"
                let renamed = operations.rename(path, finished) == 0
                let renameErrno = errno
                _ = operations.close(fd)
                if renamed {
                    if configuration.fsync != .never { _ = operations.syncDirectory(configuration.logPath) }
                    metrics.finishedFile()
                    onFinished?(finished)
                } else {
                    errno = renameErrno
                    report(IngestError.current(path, "rename"))
                }
            case let .discard(fd, path):
                _ = operations.close(fd)
                _ = operations.unlink(path)
            }
        }
    }

    /// `<log_path>/<log_base>.<version>.<hostname>.<pid>[.<writer index>].<created_ms>` (§6.1), with
    /// `created_ms` strictly increasing per writer so that two rotations in one millisecond get different names.
    private func chooseNewName() {
        var created = wallClockMilliseconds()
        if created <= lastCreatedMilliseconds { created = lastCreatedMilliseconds + 1 }
        lastCreatedMilliseconds = created
        var name = "\(configuration.logBase).\(configuration.version.rawValue).\(hostName).\(processID)"
        if let writerIndex { name += ".\(writerIndex)" }
        name += ".\(created)"
        let directory = configuration.logPath.hasSuffix("/") ? configuration.logPath : configuration.logPath + "/"
        let path = directory + name
        condition.lock()
        currentPath = path
        condition.unlock()
    }

    /// Completes each promise on its event loop, one task per loop.
    private func complete(_ batch: [Pending], _ results: [Result<Int, IngestError>?]) {
        var byLoop: [ObjectIdentifier: (EventLoop, [(EventLoopPromise<Int>, Result<Int, IngestError>)])] = [:]
        for index in batch.indices {
            let promise = batch[index].promise
            let result = results[index] ?? .failure(IngestError.notRunning)
            let loop = promise.futureResult.eventLoop
            byLoop[ObjectIdentifier(loop), default: (loop, [])].1.append((promise, result))
        }
        for (_, entry) in byLoop {
            let items = entry.1
            entry.0.execute {
                for (promise, result) in items {
                    switch result {
                    case let .success(bytes): promise.succeed(bytes)
                    case let .failure(error): promise.fail(error)
                    }
                }
            }
        }
    }

    /// Logs an I/O error, at most one line a second (called by the writer and the finisher).
    private func report(_ error: IngestError) {
        let now = monotonicNanoseconds()
        jobsCondition.lock()
        let due = lastErrorLogNanos == 0 || now - lastErrorLogNanos >= 1_000_000_000
        if due { lastErrorLogNanos = now }
        jobsCondition.unlock()
        if due { log("raw log: \(error)") }
    }
}
