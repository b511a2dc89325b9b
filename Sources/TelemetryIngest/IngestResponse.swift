import NIOHTTP1

/// Every answer the ingest endpoint gives: the one HTTP status table of `TelemetryIngest` (STYLE §3,
/// `spec/raw-log.md` §7.1, `docs/ingest.md`). Bodies are `text/plain`, the seed's wording where the seed had one.
/// Messages never echo the path, the body or the client IP.
public enum IngestResponse: Sendable, Equatable {
    /// 200 `OK`: the record was written to the log (§7.1 row 7) or `GET /status`.
    case ok
    /// 200, Prometheus text (`GET /metrics`, TelemetryEngine addition).
    case metrics(String)
    /// 202 `Request too large (<n> bytes). Limit is <max> bytes. Server will discard submission.` (row 2): 202, not
    /// 413, so clients do not retry; nothing is stored.
    case requestTooLarge(bytes: Int, limit: Int)
    /// 202 `Path too long (<n> bytes). Limit is <max> bytes` (row 5); nothing is stored.
    case pathTooLong(bytes: Int, limit: Int)
    /// 400: `Content-Length` negative or unparsable, or any other malformed HTTP (row 1a); the connection closes.
    case badRequest
    /// 404 `Not Found`: a GET other than `/status` and `/metrics`, or a POST outside the prefix (row 4).
    case notFound
    /// 405 `Wrong request type`: a method other than GET and POST (row 3).
    case wrongMethod
    /// 408 `Request timeout`: the body did not arrive within the request timeout (TelemetryEngine addition); the
    /// connection closes.
    case requestTimeout
    /// 411 `Missing content length`: no `Content-Length`, `Content-Length: 0`, or an empty chunked body (row 1).
    case missingContentLength
    /// 500 with the OS error message: appending the record failed (row 6); nothing of it stays in the log.
    case writeFailed(message: String)
    /// 503 `Server busy, try again later`: the write queue is full (row 5a); clients retry.
    case busy
    /// 503 `Server shutting down`: the log is closed for shutdown.
    case shuttingDown

    /// The HTTP status.
    public var status: HTTPResponseStatus {
        switch self {
        case .ok, .metrics: .ok
        case .requestTooLarge, .pathTooLong: .accepted
        case .badRequest: .badRequest
        case .notFound: .notFound
        case .wrongMethod: .methodNotAllowed
        case .requestTimeout: .requestTimeout
        case .missingContentLength: .lengthRequired
        case .writeFailed: .internalServerError
        case .busy, .shuttingDown: .serviceUnavailable
        }
    }

    /// The response body.
    public var message: String {
        switch self {
        case .ok: "OK"
        case let .metrics(text): text
        case let .requestTooLarge(bytes, limit):
            "Request too large (\(bytes) bytes). Limit is \(limit) bytes. Server will discard submission."
        case let .pathTooLong(bytes, limit): "Path too long (\(bytes) bytes). Limit is \(limit) bytes"
        case .badRequest: "Bad request"
        case .notFound: "Not Found"
        case .wrongMethod: "Wrong request type"
        case .requestTimeout: "Request timeout"
        case .missingContentLength: "Missing content length"
        case let .writeFailed(message): message
        case .busy: "Server busy, try again later"
        case .shuttingDown: "Server shutting down"
        }
    }

    /// The stats log's `message` (§7.2): the body, except for `/metrics`, whose text would swamp the log.
    public var statsMessage: String {
        if case .metrics = self { return "OK" }
        return message
    }

    /// `Content-Type` of the response.
    public var contentType: String {
        if case .metrics = self { return "text/plain; version=0.0.4" }
        return "text/plain"
    }

    /// True when the connection is closed after this response whatever the request asked for: the rest of the
    /// byte stream cannot be trusted (400) or the request never ended (408).
    public var closesConnection: Bool {
        switch self {
        case .badRequest, .requestTimeout: true
        default: false
        }
    }
}
