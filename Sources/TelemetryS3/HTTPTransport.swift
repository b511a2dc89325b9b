import Foundation
import TelemetryCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A response: status, headers (names lower-cased) and the body when it was kept in memory.
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [String: String]
    /// The body, unless it went to a sink (then empty).
    var body: Data
    /// Bytes written to the sink.
    var bytesToSink: Int64
}

/// Where a response body goes: `open(status, headers)` is called once the status is known and returns a file handle
/// to append to, or nil to keep the body in memory (error documents, listings).
struct ResponseSink: Sendable {
    var open: @Sendable (_ status: Int, _ headers: [String: String]) throws -> FileHandle?
    /// The file the body goes to, for error messages (a write failure is `S3Error.io` naming it).
    var path = "the download file"
    /// Called with each chunk's byte count written to the file; return false to cancel the transfer.
    var onBytes: @Sendable (Int) -> Bool = { _ in true }
}

/// Async requests over Foundation's `URLSession` (libcurl on Linux) with a delegate, so that bodies stream to files
/// chunk by chunk (a cut transfer leaves what arrived), redirects are not followed (S3's 301 carries the bucket's
/// region, which the caller reports), and cancelling the Swift task cancels the transfer.
///
/// - Important: call `invalidate()` when done: the session keeps its delegate (this object) alive until then.
final class HTTPTransport: NSObject, URLSessionDataDelegate, @unchecked Sendable {   // `lock` guards `states`
    private let lock = NSLock()
    private var states: [Int: TaskState] = [:]
    private var session: URLSession?
    /// Bodies kept in memory are cut at this size (a listing page of 1,000 keys is about 350 KB).
    static let maxMemoryBody = 64 << 20

    /// - Parameters:
    ///   - requestTimeout: seconds without any data before a request fails with a timeout.
    ///   - connectionsPerHost: parallel connections (one per concurrent download).
    init(requestTimeout: TimeInterval, connectionsPerHost: Int) {
        super.init()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = requestTimeout
        configuration.timeoutIntervalForResource = 7 * 24 * 3600
        configuration.httpMaximumConnectionsPerHost = max(1, connectionsPerHost)
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        session = URLSession(configuration: configuration, delegate: self, delegateQueue: queue)
    }

    /// Cancels outstanding transfers and releases the session (and with it this delegate).
    func invalidate() {
        lock.lock()
        let session = self.session
        self.session = nil
        lock.unlock()
        session?.invalidateAndCancel()
    }

    /// Sends `request` and waits for the whole response.
    /// - Throws: the `URLError` of a failed transfer, `CancellationError` when the task was cancelled, or an error
    ///   thrown by `sink.open` or by writing to its file.
    func send(_ request: URLRequest, sink: ResponseSink? = nil) async throws -> HTTPResponse {
        guard let session = lock.withLock({ self.session }) else { throw CancellationError() }
        let task = session.dataTask(with: request)
        let state = TaskState(sink: sink)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, Error>) in
                state.continuation = continuation
                lock.lock()
                states[task.taskIdentifier] = state
                lock.unlock()
                if Task.isCancelled { task.cancel() }
                task.resume()
            }
        } onCancel: {
            task.cancel()
        }
    }

    private func state(of task: URLSessionTask) -> TaskState? {
        lock.lock()
        defer { lock.unlock() }
        return states[task.taskIdentifier]
    }

    // MARK: URLSessionDataDelegate (on the session's serial delegate queue)

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
        guard let state = state(of: dataTask), let http = response as? HTTPURLResponse else {
            completionHandler(.cancel)
            return
        }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
        }
        state.status = http.statusCode
        state.headers = headers
        state.body = Data()
        state.bytesToSink = 0
        if let sink = state.sink {
            do {
                if let old = state.file { try? old.close() }
                state.file = try sink.open(http.statusCode, headers)
            } catch {
                state.failure = error
                completionHandler(.cancel)
                return
            }
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard let state = state(of: dataTask), state.failure == nil else { return }
        if let file = state.file {
            // Checked write (`FileOutput`): a full disk is an error naming the file, never a trap.
            let name = state.sink?.path ?? "the download file"
            let written: FileOutput.Failure? = data.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return nil }
                do throws(FileOutput.Failure) { try FileOutput.writeAll(file.fileDescriptor, base, count: raw.count, name: name); return nil } catch { return error }
            }
            if let written {
                state.failure = S3Error.io(path: name, detail: "write failed: \(written.reason)")
                dataTask.cancel()
                return
            }
            state.bytesToSink += Int64(data.count)
            if let sink = state.sink, !sink.onBytes(data.count) {
                state.failure = CancellationError()   // write nothing more: chunks already queued are dropped
                dataTask.cancel()
            }
        } else if state.body.count < Self.maxMemoryBody {
            state.body.append(data)
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)   // deliver the 3xx itself: S3's redirects mean "wrong region" or "wrong endpoint"
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        lock.lock()
        let state = states.removeValue(forKey: task.taskIdentifier)
        lock.unlock()
        guard let state, let continuation = state.continuation else { return }
        state.continuation = nil
        if let file = state.file { try? file.close() }
        if let failure = state.failure {
            continuation.resume(throwing: failure)
        } else if let error {
            if let urlError = error as? URLError, urlError.code == .cancelled {
                continuation.resume(throwing: CancellationError())
            } else {
                continuation.resume(throwing: error)
            }
        } else if let status = state.status {
            continuation.resume(returning: HTTPResponse(status: status, headers: state.headers, body: state.body,
                                                        bytesToSink: state.bytesToSink))
        } else {
            continuation.resume(throwing: URLError(.badServerResponse))
        }
    }
}

/// Per-transfer state. `@unchecked Sendable`: created before the task starts, then touched only on the session's
/// serial delegate queue (and `continuation` once under `HTTPTransport.lock` before `resume()`).
private final class TaskState: @unchecked Sendable {
    let sink: ResponseSink?
    var continuation: CheckedContinuation<HTTPResponse, Error>?
    var status: Int?
    var headers: [String: String] = [:]
    var body = Data()
    var file: FileHandle?
    var bytesToSink: Int64 = 0
    var failure: Error?
    init(sink: ResponseSink?) { self.sink = sink }
}
