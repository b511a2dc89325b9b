import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How failed requests are retried: exponential backoff with jitter (AWS's "full jitter" halved: each wait is
/// between half and all of `min(maxDelay, baseDelay × 2^attempt)`).
public struct RetryPolicy: Sendable, Equatable {
    /// Tries per request, the first included (1 = no retry).
    public var maxAttempts: Int
    /// The wait before the first retry (before jitter); doubles with each retry.
    public var baseDelay: Duration
    /// The longest wait between two tries.
    public var maxDelay: Duration

    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(400), maxDelay: Duration = .seconds(20)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The wait before retry number `attempt` (0-based).
    public func delay(beforeRetry attempt: Int) -> Duration {
        let exponential = baseDelay * Int(1 << min(max(0, attempt), 20))
        let capped = min(exponential, maxDelay)
        return capped * Double.random(in: 0.5...1.0)
    }
}

/// A small S3 client: ListObjectsV2 and GetObject (whole or from an offset), signed with Signature Version 4 or
/// anonymous, with retries. Requests go to the custom endpoint path-style (`<endpoint>/<bucket>/<key>`), or to AWS's
/// regional endpoint virtual-hosted style (`<bucket>.s3.<region>.amazonaws.com/<key>`; path-style for bucket names
/// with dots or upper case, which cannot be host names under TLS).
///
/// - Important: call `shutdown()` when done (it releases the URL session).
/// - Note: `Sendable`; any number of requests may run at once (up to `connectionsPerHost` in parallel on the wire).
public final class S3Client: Sendable {
    /// Credentials, region and endpoint the client signs for and sends to.
    public let settings: S3Settings
    /// Retries of listing requests here, and of downloads in `S3Downloader`.
    public let retry: RetryPolicy
    private let transport: HTTPTransport
    private let signer: SignatureV4?

    /// - Parameters:
    ///   - requestTimeout: seconds without data before a request times out (and is retried).
    ///   - connectionsPerHost: parallel connections, normally the number of parallel downloads.
    public init(settings: S3Settings, retry: RetryPolicy = RetryPolicy(), requestTimeout: TimeInterval = 60,
                connectionsPerHost: Int = 8) {
        self.settings = settings
        self.retry = retry
        transport = HTTPTransport(requestTimeout: requestTimeout, connectionsPerHost: connectionsPerHost)
        signer = settings.credentials.map { SignatureV4(credentials: $0, region: settings.region) }
    }

    /// Cancels outstanding requests and releases the session.
    public func shutdown() { transport.invalidate() }

    /// The endpoint requests go to, for messages: the custom endpoint or `https://s3.<region>.amazonaws.com`.
    public var endpointDescription: String {
        settings.endpoint?.absoluteString ?? "https://s3.\(settings.region).amazonaws.com"
    }

    // MARK: ListObjectsV2

    /// Every key under `prefix` (all pages, following `NextContinuationToken`), and with a `delimiter` the common
    /// prefixes one level down. Keys come back in S3's order (UTF-8 binary).
    /// - Parameter pageSize: `max-keys` (S3 caps it at 1,000, its default); nil sends none.
    /// - Throws: `S3Error` (after retries for retryable ones); `CancellationError`.
    /// - Complexity: one request per 1,000 keys (or `pageSize`).
    public func listObjects(bucket: String, prefix: String, delimiter: String? = nil,
                            pageSize: Int? = nil) async throws -> (objects: [S3Object], commonPrefixes: [String], requests: Int) {
        var objects: [S3Object] = []
        var prefixes: [String] = []
        var token: String?
        var requests = 0
        repeat {
            var query: [(String, String)] = [("list-type", "2"), ("prefix", prefix)]
            if let delimiter { query.append(("delimiter", delimiter)) }
            if let pageSize { query.append(("max-keys", String(pageSize))) }
            if let token { query.append(("continuation-token", token)) }
            let response = try await perform(bucket: bucket, key: nil, query: query)
            requests += 1
            let url = describe(bucket: bucket, key: nil)
            guard response.status == 200 else { throw classify(response, bucket: bucket, key: nil, url: url) }
            let page = try S3XML.listPage(response.body, url: url)
            objects += page.objects
            prefixes += page.commonPrefixes
            if page.isTruncated {
                guard let next = page.nextContinuationToken, next != token else {
                    throw S3Error.invalidResponse(url: url, detail: "IsTruncated without a new NextContinuationToken")
                }
                token = next
            } else {
                token = nil
            }
        } while token != nil
        return (objects, prefixes, requests)
    }

    // MARK: GetObject

    /// Result of `getObject`.
    struct GetResult {
        var status: Int
        var headers: [String: String]
        var bytesWritten: Int64
    }

    /// One GET of `key` (no retry: the caller resumes from what reached the file). A 200 or 206 body streams into
    /// the handle `sink.open` returns; any other status is thrown as an `S3Error`.
    /// - Parameters:
    ///   - offset: sends `Range: bytes=<offset>-` when > 0.
    ///   - ifMatch: sends `If-Match: "<etag>"`: a 412 then means the object changed since it was listed.
    func getObject(bucket: String, key: String, offset: Int64, ifMatch: String?, sink: ResponseSink) async throws -> GetResult {
        var headers: [String: String] = [:]
        if offset > 0 { headers["range"] = "bytes=\(offset)-" }
        if let ifMatch { headers["if-match"] = "\"\(ifMatch)\"" }
        let response = try await send(bucket: bucket, key: key, query: [], headers: headers, sink: sink)
        guard response.status == 200 || response.status == 206 else {
            if response.status == 412 { throw S3Error.changedDuringDownload(bucket: bucket, key: key) }
            throw classify(response, bucket: bucket, key: key, url: describe(bucket: bucket, key: key))
        }
        return GetResult(status: response.status, headers: response.headers, bytesWritten: response.bytesToSink)
    }

    // MARK: Requests

    /// Sends a bodiless GET with retries on retryable failures (5xx, 429, timeouts, lost or refused connections).
    private func perform(bucket: String, key: String?, query: [(String, String)]) async throws -> HTTPResponse {
        var attempt = 0
        while true {
            do {
                let response = try await send(bucket: bucket, key: key, query: query, headers: [:], sink: nil)
                if response.status >= 500 || response.status == 429, attempt + 1 < retry.maxAttempts {
                    try await Task.sleep(for: retry.delay(beforeRetry: attempt))
                    attempt += 1
                    continue
                }
                return response
            } catch let error as S3Error where error.isRetryable && attempt + 1 < retry.maxAttempts {
                try await Task.sleep(for: retry.delay(beforeRetry: attempt))
                attempt += 1
            }
        }
    }

    /// Builds, signs and sends one request; maps transport failures to `S3Error`.
    private func send(bucket: String, key: String?, query: [(String, String)], headers: [String: String],
                      sink: ResponseSink?) async throws -> HTTPResponse {
        let (base, host, path) = address(bucket: bucket, key: key)
        let queryString = SignatureV4.canonicalQuery(query)
        let urlText = base + path + (queryString.isEmpty ? "" : "?" + queryString)
        guard let url = URL(string: urlText) else {
            throw S3Error.invalidURL(urlText, reason: "the key does not make a valid URL")
        }
        var request = URLRequest(url: url)
        request.httpMethod = "GET"
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        // Keep bytes as stored: a transparently decoded body would fail the size and MD5 checks.
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        if let signer {
            let signed = signer.authorizationHeaders(method: "GET", encodedPath: path, query: query, host: host,
                                                     headers: headers, date: Date())
            for (name, value) in signed { request.setValue(value, forHTTPHeaderField: name) }
        }
        do {
            return try await transport.send(request, sink: sink)
        } catch let error as URLError {
            throw mapTransportError(error, url: describe(bucket: bucket, key: key))
        }
    }

    /// (scheme://host[:port] + base path, Host header value, encoded path).
    private func address(bucket: String, key: String?) -> (String, String, String) {
        let encodedKey = key.map { SignatureV4.uriEncode($0, encodeSlash: false) }
        if let endpoint = settings.endpoint {
            let hostHeader = (endpoint.host ?? "") + (endpoint.port.map { ":\($0)" } ?? "")
            let basePath = endpoint.path == "/" ? "" : endpoint.path
            let scheme = endpoint.scheme ?? "https"
            let path = basePath + "/" + SignatureV4.uriEncode(bucket, encodeSlash: true) + (encodedKey.map { "/" + $0 } ?? "")
            return ("\(scheme)://\(hostHeader)", hostHeader, path)
        }
        let regionalHost = "s3.\(settings.region).amazonaws.com"
        if Self.isVirtualHostable(bucket) {
            let host = "\(bucket).\(regionalHost)"
            return ("https://\(host)", host, "/" + (encodedKey ?? ""))
        }
        return ("https://\(regionalHost)", regionalHost, "/" + SignatureV4.uriEncode(bucket, encodeSlash: true) + (encodedKey.map { "/" + $0 } ?? ""))
    }

    /// DNS-compatible without dots: lower-case letters, digits and `-`, 3–63 long.
    static func isVirtualHostable(_ bucket: String) -> Bool {
        (3...63).contains(bucket.utf8.count) && bucket.utf8.allSatisfy {
            (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "-")
        } && !bucket.hasPrefix("-") && !bucket.hasSuffix("-")
    }

    /// `s3://bucket/key` at the endpoint, for messages.
    private func describe(bucket: String, key: String?) -> String { "s3://\(bucket)/\(key ?? "") at \(endpointDescription)" }

    private func mapTransportError(_ error: URLError, url: String) -> S3Error {
        switch error.code {
        case .timedOut: .timedOut(url: url)
        case .cannotConnectToHost, .cannotFindHost, .dnsLookupFailed, .notConnectedToInternet:
            .endpointUnreachable(endpoint: endpointDescription, detail: Self.describe(error))
        case .cancelled: .cancelled
        default: .transport(url: url, detail: Self.describe(error))
        }
    }

    private static func describe(_ error: URLError) -> String {
        switch error.code {
        case .cannotConnectToHost: "connection refused or no route to host"
        case .cannotFindHost, .dnsLookupFailed: "unknown host"
        case .notConnectedToInternet: "no network"
        case .networkConnectionLost: "connection lost"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid:
            "TLS failure (\(error.localizedDescription))"
        default: error.localizedDescription
        }
    }

    /// The region in an S3 endpoint host name: `bucket.s3.eu-west-1.amazonaws.com`, `s3-eu-west-1.amazonaws.com`.
    static func region(fromEndpoint endpoint: String) -> String? {
        let labels = endpoint.split(separator: ".").map(String.init)
        guard let s3 = labels.firstIndex(where: { $0 == "s3" || $0.hasPrefix("s3-") }) else { return nil }
        if labels[s3].hasPrefix("s3-") { return String(labels[s3].dropFirst(3)) }
        let next = labels.index(after: s3)
        guard next < labels.endIndex, labels[next] != "amazonaws" else { return nil }
        return labels[next]
    }

    /// Maps a non-success response to the error it means (`spec`: S3 API error codes).
    func classify(_ response: HTTPResponse, bucket: String, key: String?, url: String) -> S3Error {
        Self.classify(status: response.status, headers: response.headers, body: response.body, bucket: bucket, key: key,
                      url: url, region: settings.region, endpoint: endpointDescription)
    }

    /// The error a failed S3 response means. Pure, for tests. `headers` keys are lower-case.
    static func classify(status: Int, headers: [String: String], body: Data, bucket: String, key: String?, url: String,
                         region: String, endpoint: String) -> S3Error {
        let document = S3XML.errorDocument(body)
        let code = document?.code
        let message = document?.message ?? "HTTP \(status) without an error document"
        let headerRegion = headers["x-amz-bucket-region"].flatMap { $0.isEmpty ? nil : $0 }
        let namedRegion = document?.region ?? headerRegion ?? document?.endpoint.flatMap(Self.region(fromEndpoint:))
        if status == 301 || code == "PermanentRedirect" || code == "IllegalLocationConstraintException"
            || (status == 307 && headerRegion != nil) || (code == "AuthorizationHeaderMalformed" && namedRegion != nil) {
            return .wrongRegion(bucket: bucket, requested: region, actual: namedRegion)
        }
        switch (status, code) {
        case (_, "NoSuchBucket"):
            return .noSuchBucket(bucket: bucket, endpoint: endpoint)
        case (_, "NoSuchKey"):
            return .noSuchKey(bucket: bucket, key: key ?? "")
        case (_, "InvalidAccessKeyId"), (_, "SignatureDoesNotMatch"), (_, "InvalidToken"), (_, "ExpiredToken"),
             (_, "TokenRefreshRequired"), (_, "InvalidSecurity"), (_, "AuthorizationHeaderMalformed"):
            return .credentialsRejected(code: code ?? "", message: message, endpoint: endpoint)
        case (403, _), (_, "AccessDenied"), (_, "AllAccessDisabled"), (_, "AccountProblem"):
            return .accessDenied(bucket: bucket, key: key, message: code.map { "\($0): \(message)" } ?? message)
        case (404, nil) where key == nil:
            return .noSuchBucket(bucket: bucket, endpoint: endpoint)
        case (404, nil):
            return .noSuchKey(bucket: bucket, key: key ?? "")
        default:
            return .http(status: status, code: code, message: document?.message, url: url)
        }
    }
}
