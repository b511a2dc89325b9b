import Foundation

/// Runs async S3 work from synchronous code (the `telemetry` command-line commands are synchronous).
public enum S3Blocking {
    /// Runs `operation` on the concurrency pool and blocks the calling thread until it finishes.
    /// - Important: call from a thread outside Swift's cooperative pool (the main thread of a command), never
    ///   from async code: blocking a pool thread can deadlock.
    /// - Throws: what `operation` throws.
    public static func run<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do { box.set(.success(try await operation())) } catch { box.set(.failure(error)) }
            done.signal()
        }
        done.wait()
        return try box.get()
    }
}

/// `@unchecked Sendable`: `result` is written once under `lock` before the semaphore is signalled, read after.
private final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, Error>?

    func set(_ value: Result<T, Error>) { lock.lock(); result = value; lock.unlock() }

    func get() throws -> T {
        lock.lock()
        defer { lock.unlock() }
        guard let result else { preconditionFailure("S3Blocking.run: the operation finished without a result") }
        return try result.get()
    }
}
