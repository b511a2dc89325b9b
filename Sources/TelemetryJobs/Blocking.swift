import Dispatch
import Foundation

/// Runs async job work from synchronous code (the CLI and the REPL), with a way to cancel it (Ctrl-C).
public final class BlockingJobRun<T: Sendable>: @unchecked Sendable {   // `lock` guards `result`; `task` set once in init
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    private let done = DispatchSemaphore(value: 0)
    private var task: Task<Void, Never>?

    /// Starts `body` in a new task.
    public init(_ body: @escaping @Sendable () async throws -> T) {
        task = Task { [self] in
            let outcome: Result<T, any Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            lock.withLock { result = outcome }
            done.signal()
        }
    }

    /// Cancels the run; `wait` then throws `CancellationError` (mappers check between pings).
    public func cancel() { task?.cancel() }

    /// Blocks until the run ends.
    public func wait() throws -> T {
        done.wait()
        lock.lock(); defer { lock.unlock() }
        return try result!.get()
    }
}
