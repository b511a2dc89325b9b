/// Errors thrown by `TelemetryS3`: URLs and settings, credentials, S3 responses, transfers and the local cache.
///
/// Descriptions name the bucket, key, endpoint or file concerned and S3's own error code and message; they never
/// contain a secret access key, a session token or a signature.
public enum S3Error: Error, Equatable, CustomStringConvertible {
    /// A `s3://BUCKET[/PREFIX]` argument that does not parse.
    case invalidURL(String, reason: String)
    /// An `--endpoint-url` (or `AWS_ENDPOINT_URL…`, `endpoint_url`) that is not an http(s) URL.
    case invalidEndpoint(String, reason: String)
    /// No credentials anywhere in `searched` (environment variables, shared files) and anonymous access was not asked for.
    case noCredentials(searched: [String])
    /// `--profile` or `AWS_PROFILE` names a profile that neither shared file defines.
    case profileNotFound(profile: String, files: [String])
    /// A profile exists but has no static keys (SSO, assumed-role and `credential_process` profiles are not supported).
    case profileWithoutKeys(profile: String, file: String)
    /// S3 refused the credentials themselves (`InvalidAccessKeyId`, `SignatureDoesNotMatch`, `InvalidToken`,
    /// `ExpiredToken`, …): `code` is S3's error code.
    case credentialsRejected(code: String, message: String, endpoint: String)
    /// The credentials are valid but not allowed to do this (`AccessDenied`, HTTP 403).
    case accessDenied(bucket: String, key: String?, message: String)
    /// The bucket does not exist (`NoSuchBucket`).
    case noSuchBucket(bucket: String, endpoint: String)
    /// The object does not exist (`NoSuchKey`, HTTP 404).
    case noSuchKey(bucket: String, key: String)
    /// The bucket lives in another region than the one requests were signed for: HTTP 301 `PermanentRedirect` or
    /// 400 `AuthorizationHeaderMalformed`. `actual` is the region S3 named (header `x-amz-bucket-region` or the
    /// `<Region>` element), nil when it named none.
    case wrongRegion(bucket: String, requested: String, actual: String?)
    /// No connection could be made to the endpoint (refused, unknown host, no route), after the retries.
    case endpointUnreachable(endpoint: String, detail: String)
    /// A request timed out (no data for the request timeout), after the retries.
    case timedOut(url: String)
    /// Another transport failure (connection lost, TLS), after the retries.
    case transport(url: String, detail: String)
    /// Any other HTTP failure; `code` and `message` are from S3's XML error document when there was one.
    case http(status: Int, code: String?, message: String?, url: String)
    /// A response that is not what the S3 API specifies (unparsable XML, a missing `Content-Range`, …).
    case invalidResponse(url: String, detail: String)
    /// A downloaded object's byte count differs from the listing's `Size` (or the response's length).
    case sizeMismatch(key: String, expectedBytes: Int64, actualBytes: Int64)
    /// A downloaded single-part object whose MD5 is not its ETag.
    case checksumMismatch(key: String, expectedETag: String, actualMD5: String)
    /// The object changed on the server after it was listed (HTTP 412 to the `If-Match` of the listed ETag).
    case changedDuringDownload(bucket: String, key: String)
    /// A local file operation in the cache failed.
    case io(path: String, detail: String)
    /// The operation was cancelled (Ctrl-C); partial downloads are kept for the next run.
    case cancelled

    public var description: String {
        switch self {
        case let .invalidURL(url, reason): "\(url): not an S3 URL: \(reason) (expected s3://BUCKET[/PREFIX])"
        case let .invalidEndpoint(url, reason): "\(url): invalid endpoint URL: \(reason)"
        case let .noCredentials(searched):
            "no AWS credentials found (looked in: \(searched.joined(separator: ", "))); set AWS_ACCESS_KEY_ID and "
                + "AWS_SECRET_ACCESS_KEY, choose a profile with --profile or AWS_PROFILE, or pass --no-sign-request for a public bucket"
        case let .profileNotFound(profile, files): "AWS profile '\(profile)' not found in \(files.joined(separator: " or "))"
        case let .profileWithoutKeys(profile, file):
            "AWS profile '\(profile)' in \(file) has no aws_access_key_id/aws_secret_access_key "
                + "(SSO, role and credential_process profiles are not supported; export the keys instead)"
        case let .credentialsRejected(code, message, endpoint):
            "\(endpoint) refused the credentials: \(code): \(message)"
        case let .accessDenied(bucket, key, message):
            "access denied to s3://\(bucket)/\(key ?? ""): \(message)"
        case let .noSuchBucket(bucket, endpoint): "no such bucket: \(bucket) (at \(endpoint))"
        case let .noSuchKey(bucket, key): "no such key: s3://\(bucket)/\(key)"
        case let .wrongRegion(bucket, requested, actual?):
            "bucket \(bucket) is in region \(actual), not \(requested): use --region \(actual)"
        case let .wrongRegion(bucket, requested, nil):
            "bucket \(bucket) is not in region \(requested) and S3 did not say which it is in: pass --region"
        case let .endpointUnreachable(endpoint, detail): "cannot reach \(endpoint): \(detail)"
        case let .timedOut(url): "\(url): timed out"
        case let .transport(url, detail): "\(url): \(detail)"
        case let .http(status, code, message, url):
            "\(url): HTTP \(status)" + (code.map { " \($0)" } ?? "") + (message.map { ": \($0)" } ?? "")
        case let .invalidResponse(url, detail): "\(url): unexpected response: \(detail)"
        case let .sizeMismatch(key, expected, actual): "\(key): expected \(expected) bytes, got \(actual)"
        case let .checksumMismatch(key, etag, md5): "\(key): content MD5 \(md5) does not match the ETag \(etag)"
        case let .changedDuringDownload(bucket, key):
            "s3://\(bucket)/\(key) changed on the server while it was being fetched; run the import again"
        case let .io(path, detail): "\(path): \(detail)"
        case .cancelled: "cancelled"
        }
    }

    /// True for failures worth retrying with backoff: 5xx, 429, S3's `RequestTimeout`/`SlowDown`, timeouts,
    /// lost connections and refused connections (a server restarting).
    public var isRetryable: Bool {
        switch self {
        case .timedOut, .transport, .endpointUnreachable: true
        case let .http(status, code, _, _):
            status >= 500 || status == 429 || code == "RequestTimeout" || code == "SlowDown" || code == "InternalError"
        case .sizeMismatch, .checksumMismatch: true   // a damaged transfer: fetch again from the start
        default: false
        }
    }
}
