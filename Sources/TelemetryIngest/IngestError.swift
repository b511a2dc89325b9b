#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors thrown by `TelemetryIngest` (environment and configuration; bad requests are HTTP statuses, not errors:
/// see `IngestResponse`). Descriptions never contain payload contents, request paths or client IPs.
public enum IngestError: Error, Equatable, CustomStringConvertible {
    /// A file operation (`open`, `write`, `fsync`, `rename`, `ftruncate`, …) on `path` failed with `errno`.
    case io(path: String, operation: String, errno: Int32, message: String)
    /// The JSON configuration file (`spec/raw-log.md` §7.3) at `path` cannot be used: `reason` says why.
    case invalidConfiguration(path: String, reason: String)
    /// A configuration value is out of range (`key` names the flag or config key).
    case invalidValue(key: String, reason: String)
    /// The listening socket could not be bound to `host`:`port`.
    case bindFailed(host: String, port: Int, message: String)
    /// The server was asked to start twice, or used after `shutdown()`.
    case notRunning

    public var description: String {
        switch self {
        case let .io(path, operation, errno, message): "\(path): \(operation) failed: \(message) (errno \(errno))"
        case let .invalidConfiguration(path, reason): "\(path): invalid configuration: \(reason)"
        case let .invalidValue(key, reason): "\(key): \(reason)"
        case let .bindFailed(host, port, message): "cannot listen on \(host):\(port): \(message)"
        case .notRunning: "the ingest server is not running"
        }
    }

    /// The OS message alone (`strerror`), which is what a 500 response carries (`spec/raw-log.md` §7.1 row 6);
    /// the full description for other cases.
    public var responseMessage: String {
        if case let .io(_, _, _, message) = self { return message }
        return description
    }

    /// True when the failure is the disk (or quota, or file-size limit) being full: retrying later can work.
    public var isOutOfSpace: Bool {
        if case let .io(_, _, code, _) = self { return code == ENOSPC || code == EDQUOT || code == EFBIG }
        return false
    }

    /// `IngestError.io` for the current `errno`.
    static func current(_ path: String, _ operation: String) -> IngestError {
        let code = errno
        return .io(path: path, operation: operation, errno: code, message: String(cString: strerror(code)))
    }
}
