import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress of a running fetch, reported about 10 times a second and once at the end.
public struct DownloadProgress: Sendable, Equatable {
    public var filesDone = 0
    public var filesTotal = 0
    /// Bytes of the selected objects that are in the cache (reused, resumed-from, or transferred), of `bytesTotal`.
    public var bytesDone: Int64 = 0
    public var bytesTotal: Int64 = 0
    /// Bytes received over the network in this run.
    public var bytesTransferred: Int64 = 0
    /// Wall-clock seconds since the fetch started.
    public var elapsedSeconds = 0.0
}

/// What happened to one object.
public enum FetchOutcome: Sendable, Equatable {
    /// The cached copy matched the object (size and ETag recorded beside it; content re-checked when its mtime moved).
    case reused
    /// Fetched whole.
    case downloaded
    /// A `.partial` file of the same ETag was completed with a `Range` request from this offset.
    case resumed(fromOffset: Int64)
    /// The cached copy no longer matched its record (size, or MD5 against the ETag) and was fetched again.
    case refetchedCorrupt
    /// Not fetched; nothing is left at the final path (a partial download stays for the next run).
    case failed(S3Error)
}

/// One object's result.
public struct FetchResult: Sendable, Equatable {
    public var key: String
    /// The cached file (`S3Cache.path(bucket:key:)`); it exists unless `outcome` is `.failed`.
    public var localPath: String
    public var outcome: FetchOutcome
    /// Bytes received for this object in this run (all attempts).
    public var bytesTransferred: Int64
}

/// What a fetch did.
public struct FetchReport: Sendable, Equatable {
    /// One entry per requested object, in request order.
    public var results: [FetchResult] = []
    /// True when cancelled (Ctrl-C) before every object was done.
    public var interrupted = false
    /// Wall-clock seconds the fetch took.
    public var seconds = 0.0

    /// Cached files ready to import, in request order.
    public var localPaths: [String] { results.filter { if case .failed = $0.outcome { false } else { true } }.map(\.localPath) }
    /// The keys that could not be fetched and why (`.cancelled` for those an interruption stopped).
    public var failures: [(key: String, error: S3Error)] {
        results.compactMap { if case let .failed(error) = $0.outcome { ($0.key, error) } else { nil } }
    }
    /// Bytes received over the network in this fetch.
    public var bytesTransferred: Int64 { results.reduce(0) { $0 + $1.bytesTransferred } }
    /// Number of results whose outcome satisfies `predicate`.
    public func count(_ predicate: (FetchOutcome) -> Bool) -> Int { results.filter { predicate($0.outcome) }.count }
}

/// Downloads objects into an `S3Cache`: `parallel` at a time, each with retries and backoff on 5xx, timeouts and
/// lost connections; interrupted transfers are resumed from their `.partial` file with an HTTP `Range` request
/// (guarded by `If-Match` on the ETag); every finished file is checked against the listed size and, for a
/// single-part ETag, the MD5 of its content (multipart ETags `…-N` and SSE-KMS/SSE-C objects: size only); cached
/// files are reused when they still match.
public final class S3Downloader: Sendable {
    /// The client downloads go through (its `retry` policy applies per object).
    public let client: S3Client
    /// Where files go.
    public let cache: S3Cache
    /// Concurrent downloads.
    public let parallel: Int
    /// Re-hash every reused single-part file instead of only those whose mtime moved since verification.
    public let verifyCachedContent: Bool

    public init(client: S3Client, cache: S3Cache, parallel: Int = 4, verifyCachedContent: Bool = false) {
        self.client = client
        self.cache = cache
        self.parallel = max(1, parallel)
        self.verifyCachedContent = verifyCachedContent
    }

    /// A request: a listed object (size and ETag known), or a bare key (both taken from the response).
    struct Item: Sendable {
        var key: String
        var size: Int64?
        var etag: String?
    }

    /// Fetches listed objects of `bucket` (from `S3Selector.select`).
    /// - Parameters:
    ///   - progress: called from one task at a time, about every 100 ms and once at the end.
    ///   - isCancelled: polled between chunks; when true, transfers stop (partials kept) and the report is `interrupted`.
    /// - Returns: never throws: per-object failures are in the report.
    public func fetch(_ objects: [S3Object], bucket: String, progress: (@Sendable (DownloadProgress) -> Void)? = nil,
                      isCancelled: @escaping @Sendable () -> Bool = { false }) async -> FetchReport {
        await run(objects.map { Item(key: $0.key, size: $0.size, etag: $0.etag) }, bucket: bucket, progress: progress,
                  isCancelled: isCancelled)
    }

    /// Fetches keys not listed before: size and ETag come from the response (a missing key is a `.failed` result).
    public func fetch(keys: [String], bucket: String, progress: (@Sendable (DownloadProgress) -> Void)? = nil,
                      isCancelled: @escaping @Sendable () -> Bool = { false }) async -> FetchReport {
        await run(keys.map { Item(key: $0, size: nil, etag: nil) }, bucket: bucket, progress: progress, isCancelled: isCancelled)
    }

    private func run(_ items: [Item], bucket: String, progress: (@Sendable (DownloadProgress) -> Void)?,
                     isCancelled: @escaping @Sendable () -> Bool) async -> FetchReport {
        let started = Date()
        let counters = Counters(filesTotal: items.count, bytesTotal: items.reduce(0) { $0 + ($1.size ?? 0) })
        let ticker = progress.map { report in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    report(counters.snapshot(since: started))
                }
            }
        }
        var results = [FetchResult?](repeating: nil, count: items.count)
        await withTaskGroup(of: (Int, FetchResult).self) { group in
            var next = 0
            func startNext() {
                guard next < items.count else { return }
                let index = next
                next += 1
                let item = items[index]
                group.addTask {
                    if isCancelled() || Task.isCancelled {
                        return (index, FetchResult(key: item.key, localPath: self.cache.path(bucket: bucket, key: item.key),
                                                   outcome: .failed(.cancelled), bytesTransferred: 0))
                    }
                    return (index, await self.fetchOne(item, bucket: bucket, counters: counters, isCancelled: isCancelled))
                }
            }
            for _ in 0..<parallel { startNext() }
            while let (index, result) = await group.next() {
                results[index] = result
                counters.fileDone()
                startNext()
            }
        }
        ticker?.cancel()
        var report = FetchReport()
        report.results = results.enumerated().map { index, result in
            result ?? FetchResult(key: items[index].key, localPath: cache.path(bucket: bucket, key: items[index].key),
                                  outcome: .failed(.cancelled), bytesTransferred: 0)
        }
        report.interrupted = report.results.contains { $0.outcome == .failed(.cancelled) }
        report.seconds = Date().timeIntervalSince(started)
        progress?(counters.snapshot(since: started))
        return report
    }

    /// Reuses, resumes or downloads one object; never throws.
    func fetchOne(_ item: Item, bucket: String, counters: Counters, isCancelled: @escaping @Sendable () -> Bool) async -> FetchResult {
        let destination = cache.path(bucket: bucket, key: item.key)
        let metaPath = S3Cache.metaPath(of: destination)
        let partial = S3Cache.partialPath(of: destination)
        let partialMeta = S3Cache.partialMetaPath(of: destination)
        var result = FetchResult(key: item.key, localPath: destination, outcome: .downloaded, bytesTransferred: 0)
        let components = item.key.split(separator: "/", omittingEmptySubsequences: false)
        guard !item.key.isEmpty, components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            result.outcome = .failed(.invalidURL("s3://\(bucket)/\(item.key)", reason: "a key with empty, '.' or '..' parts cannot be cached"))
            return result
        }
        do {
            try FileManager.default.createDirectory(atPath: (destination as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
        } catch {
            result.outcome = .failed(.io(path: destination, detail: "cannot create its directory: \(error.localizedDescription)"))
            return result
        }

        // 1. A cached copy that still matches the listing is reused.
        var corrupt = false
        if let size = item.size, let etag = item.etag, let file = LocalFile.status(destination) {
            let record = CacheRecord.read(metaPath)
            if let record, record.etag == etag, record.size == size, file.size == size {
                if record.mtimeNanoseconds == file.mtime && !(verifyCachedContent && S3Object.isMD5ETag(etag)) {
                    counters.reused(size)
                    result.outcome = .reused
                    return result
                }
                if let verified = try? contentMatches(destination, etag: etag), verified {
                    try? CacheRecord(etag: etag, size: size, mtimeNanoseconds: file.mtime).write(metaPath)
                    counters.reused(size)
                    result.outcome = .reused
                    return result
                }
                corrupt = true
            } else if record == nil, file.size == size, S3Object.isMD5ETag(etag), (try? LocalFile.md5(destination)) == etag.lowercased() {
                try? CacheRecord(etag: etag, size: size, mtimeNanoseconds: file.mtime).write(metaPath)   // a tree copied in
                counters.reused(size)
                result.outcome = .reused
                return result
            } else {
                corrupt = record?.etag == etag   // same object, different bytes: damaged on disk
            }
            LocalFile.remove(destination)
            LocalFile.remove(metaPath)
        }

        // 2. Download, resuming a partial file of the same ETag; retry retryable failures from where the file ends.
        var attempt = 0
        var firstOffset: Int64?
        while true {
            var offset: Int64 = 0
            var expectedETag = item.etag
            if let record = CacheRecord.read(partialMeta), let part = LocalFile.status(partial),
               item.etag == nil || record.etag == item.etag, item.size == nil || record.size == item.size, part.size < record.size {
                offset = part.size
                expectedETag = record.etag
            } else {
                LocalFile.remove(partial)
                LocalFile.remove(partialMeta)
            }
            if firstOffset == nil {
                firstOffset = offset
                counters.resumedFrom(offset)   // later attempts continue bytes already counted as transferred
            }
            do {
                let (startOffset, startETag) = (offset, expectedETag)
                let sink = ResponseSink(open: { status, headers in
                    try Self.openPartial(partial, recordPath: partialMeta, status: status, headers: headers, offset: startOffset,
                                         knownSize: item.size, knownETag: startETag)
                }, path: partial, onBytes: { count in
                    counters.transferred(count)
                    return !isCancelled()
                })
                let response = try await client.getObject(bucket: bucket, key: item.key, offset: offset, ifMatch: expectedETag, sink: sink)
                result.bytesTransferred += response.bytesWritten
                let etag = expectedETag ?? S3XML.unquote(response.headers["etag"] ?? "")
                let size = try item.size ?? Self.totalSize(response.headers, offset: response.status == 206 ? offset : 0,
                                                           key: item.key)
                let actual = LocalFile.status(partial)?.size ?? 0
                if actual < size {
                    if isCancelled() { throw S3Error.cancelled }
                    throw S3Error.transport(url: "s3://\(bucket)/\(item.key)", detail: "the response ended after \(actual) of \(size) bytes")
                }
                if actual > size {
                    LocalFile.remove(partial)
                    LocalFile.remove(partialMeta)
                    throw S3Error.sizeMismatch(key: item.key, expectedBytes: size, actualBytes: actual)
                }
                let encrypted = response.headers["x-amz-server-side-encryption"]?.hasPrefix("aws:kms") == true
                    || response.headers["x-amz-server-side-encryption-customer-algorithm"] != nil
                if S3Object.isMD5ETag(etag) && !encrypted {
                    let md5 = try LocalFile.md5(partial)
                    if md5 != etag.lowercased() {
                        LocalFile.remove(partial)
                        LocalFile.remove(partialMeta)
                        throw S3Error.checksumMismatch(key: item.key, expectedETag: etag, actualMD5: md5)
                    }
                }
                LocalFile.sync(partial)
                guard rename(partial, destination) == 0 else {
                    throw S3Error.io(path: destination, detail: "cannot rename the finished .partial file: \(String(cString: strerror(errno)))")
                }
                let mtime = LocalFile.status(destination)?.mtime
                try CacheRecord(etag: etag, size: size, mtimeNanoseconds: mtime).write(metaPath)
                LocalFile.remove(partialMeta)
                if corrupt {
                    result.outcome = .refetchedCorrupt
                } else if let firstOffset, firstOffset > 0 {
                    result.outcome = .resumed(fromOffset: firstOffset)
                } else {
                    result.outcome = .downloaded
                }
                return result
            } catch let error as S3Error where error.isRetryable && attempt + 1 < client.retry.maxAttempts && !isCancelled() {
                try? await Task.sleep(for: client.retry.delay(beforeRetry: attempt))
                attempt += 1
            } catch let error as S3Error {
                if case .noSuchKey = error { LocalFile.remove(partial); LocalFile.remove(partialMeta) }
                if case .changedDuringDownload = error { LocalFile.remove(partial); LocalFile.remove(partialMeta) }
                result.outcome = .failed(isCancelled() ? .cancelled : error)
                return result
            } catch is CancellationError {
                result.outcome = .failed(.cancelled)
                return result
            } catch {
                result.outcome = .failed(.io(path: partial, detail: "\(error)"))
                return result
            }
        }
    }

    /// True when the file's content matches `etag`: its MD5 for a single-part ETag; always for a multipart one
    /// (size already compared by the caller).
    private func contentMatches(_ path: String, etag: String) throws -> Bool {
        guard S3Object.isMD5ETag(etag) else { return true }
        return try LocalFile.md5(path) == etag.lowercased()
    }

    /// Opens the `.partial` file for a 200 (from the start) or 206 (append at `offset`) response; nil for other
    /// statuses (their body is an error document kept in memory).
    private static func openPartial(_ partial: String, recordPath: String, status: Int, headers: [String: String], offset: Int64,
                                    knownSize: Int64?, knownETag: String?) throws -> FileHandle? {
        guard status == 200 || status == 206 else { return nil }
        if status == 206 {
            guard let start = contentRangeStart(headers), start == offset else {
                throw S3Error.invalidResponse(url: partial, detail: "206 without a Content-Range starting at \(offset)")
            }
        }
        let fm = FileManager.default
        if !fm.fileExists(atPath: partial) { _ = fm.createFile(atPath: partial, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: partial) else {
            throw S3Error.io(path: partial, detail: "cannot open for writing")
        }
        do {
            if status == 200 {
                try handle.truncate(atOffset: 0)
                let etag = knownETag ?? S3XML.unquote(headers["etag"] ?? "")
                let size = try knownSize ?? totalSize(headers, offset: 0, key: partial)
                try CacheRecord(etag: etag, size: size, mtimeNanoseconds: nil).write(recordPath)
            } else {
                try handle.seek(toOffset: UInt64(offset))
                try handle.truncate(atOffset: UInt64(offset))
            }
        } catch let error as S3Error {
            throw error
        } catch {
            throw S3Error.io(path: partial, detail: "\(error.localizedDescription)")
        }
        return handle
    }

    /// The object's full size from a GET response: the total of `Content-Range` (206), else `Content-Length` + offset.
    static func totalSize(_ headers: [String: String], offset: Int64, key: String) throws -> Int64 {
        if let range = headers["content-range"], let slash = range.lastIndex(of: "/"), let total = Int64(range[range.index(after: slash)...]) {
            return total
        }
        if let length = headers["content-length"].flatMap({ Int64($0) }) { return length + offset }
        throw S3Error.invalidResponse(url: key, detail: "no Content-Length or Content-Range")
    }

    /// `bytes 100-199/200` → 100.
    static func contentRangeStart(_ headers: [String: String]) -> Int64? {
        guard let range = headers["content-range"], range.hasPrefix("bytes ") else { return nil }
        let spec = range.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-") else { return nil }
        return Int64(spec[..<dash])
    }
}

/// Shared progress counters of one fetch. `@unchecked Sendable`: every field is read and written under `lock`.
final class Counters: @unchecked Sendable {
    private let lock = NSLock()
    private var progress = DownloadProgress()

    init(filesTotal: Int, bytesTotal: Int64) {
        progress.filesTotal = filesTotal
        progress.bytesTotal = bytesTotal
    }

    func transferred(_ count: Int) {
        lock.lock(); progress.bytesTransferred += Int64(count); progress.bytesDone += Int64(count); lock.unlock()
    }
    func reused(_ size: Int64) { lock.lock(); progress.bytesDone += size; lock.unlock() }
    func resumedFrom(_ offset: Int64) { lock.lock(); progress.bytesDone += offset; lock.unlock() }
    func fileDone() { lock.lock(); progress.filesDone += 1; lock.unlock() }

    func snapshot(since started: Date) -> DownloadProgress {
        lock.lock()
        var copy = progress
        lock.unlock()
        if copy.bytesTotal > 0 { copy.bytesDone = min(copy.bytesDone, copy.bytesTotal) }   // restarts count twice
        copy.elapsedSeconds = Date().timeIntervalSince(started)
        return copy
    }
}
