/// The two framings of a raw submission log (`spec/raw-log.md` §1).
///
/// A file holds records of one version only; nothing in the file says which (no header), so readers take it from
/// the caller or from `RawLogReader.detectVersion(path:limits:)`.
public enum RawLogVersion: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// 15-byte preamble: separator, `path_len` u16, `data_len` u32, `timestamp` u64 (`spec/raw-log.md` §1.1).
    case v1
    /// 16-byte preamble: separator, `ip_len` u8, `path_len` u16, `data_len` u32, `timestamp` u64, then the client
    /// IP before the path (`spec/raw-log.md` §1.2).
    case v2

    public var description: String { rawValue }

    /// Bytes of the fixed preamble, separator included: 15 (v1) or 16 (v2).
    public var preambleBytes: Int { self == .v1 ? 15 : 16 }

    /// The version tag in a file name (`spec/raw-log.md` §6.1): `.v1.` → v1, `.v2.` → v2, judged on the last path
    /// component only. Nil when the name has neither tag or both. Only a hint: content decides (§5.1).
    public static func nameHint(forPath path: String) -> RawLogVersion? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let v1 = name.contains(".v1."), v2 = name.contains(".v2.")
        return v1 == v2 ? nil : (v1 ? .v1 : .v2)
    }
}

/// The record separator that starts every record (`0x1E`, ASCII "record separator"; `spec/raw-log.md` §1).
public let rawLogSeparator: UInt8 = 0x1E

/// One record of a raw submission log: a submission as the ingest server stored it (`spec/raw-log.md` §1).
///
/// Fields are the stored bytes, not validated: `path` is the URL path after the `/submit/telemetry/` prefix
/// (§2, not percent-decoded), `data` is the request body exactly as received, maybe gzip (§3; inflate it with
/// `TelemetryCompression.Gzip`), `ip` is the v2 client-IP field (§4; nil for v1 records).
public struct RawRecord: Sendable, Equatable {
    /// The framing the record was read with or will be written in.
    public var version: RawLogVersion
    /// Server receive time, milliseconds since the Unix epoch, UTC (§1.1).
    public var timestamp: UInt64
    /// Stored path bytes (UTF-8 expected, not checked), at most 65,535 bytes to be encodable.
    public var path: [UInt8]
    /// v2 client IP field (X-Forwarded-For value or peer address, §4), at most 255 bytes; nil for v1. A v2 record
    /// read from a file always has a value (empty when `ip_len` is 0).
    public var ip: [UInt8]?
    /// The body as stored, at most 2^32 − 1 bytes to be encodable; gzip when it starts `1F 8B` (§3).
    public var data: [UInt8]
    /// Byte offset of the record's `0x1E` separator in its file (0-based); 0 for a record built in memory.
    /// Not encoded, so not part of what `encoded()` round-trips.
    public var offset: Int

    public init(version: RawLogVersion, timestamp: UInt64, path: [UInt8], ip: [UInt8]? = nil, data: [UInt8], offset: Int = 0) {
        self.version = version
        self.timestamp = timestamp
        self.path = path
        self.ip = ip
        self.data = data
        self.offset = offset
    }

    /// The path decoded as UTF-8; invalid sequences become U+FFFD (the stored bytes stay in `path`).
    public var pathString: String { String(decoding: path, as: UTF8.self) }

    /// The IP field decoded as UTF-8 (invalid sequences become U+FFFD); nil for v1 records.
    public var ipString: String? { ip.map { String(decoding: $0, as: UTF8.self) } }

    /// True when the body starts with the gzip magic `1F 8B` and has more than one byte (the Python reader's test,
    /// `spec/raw-log.md` §3). The data is not inflated or checked.
    public var dataLooksGzipped: Bool { data.count > 1 && data[0] == 0x1F && data[1] == 0x8B }

    /// Length of the encoded record in bytes: preamble (15 or 16) + IP (v2) + path + data (§1).
    public var encodedByteCount: Int { version.preambleBytes + (ip?.count ?? 0) + path.count + data.count }

    /// The record in its file framing (`spec/raw-log.md` §1.1 / §1.2), little-endian: separator, [`ip_len`],
    /// `path_len`, `data_len`, `timestamp`, [IP], path, data. `RawLogReader` reads it back field for field
    /// (a v2 record with `ip == nil` comes back with an empty IP).
    ///
    /// - Precondition: `path.count` ≤ 65,535; `data.count` ≤ 2^32 − 1; v2: `ip.count` ≤ 255; v1: `ip == nil`.
    ///   The ingest server enforces its smaller limits (§1.3) before building a record, so a violation is a bug.
    /// - Complexity: O(`encodedByteCount`); allocates the result once.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        append(to: &bytes)
        return bytes
    }

    /// Appends `encoded()` to `buffer` without an intermediate array (for writers batching records).
    /// - Precondition: as `encoded()`.
    public func append(to buffer: inout [UInt8]) {
        precondition(path.count <= Int(UInt16.max), "RawRecord path of \(path.count) bytes does not fit path_len (u16)")
        precondition(UInt64(data.count) <= UInt64(UInt32.max), "RawRecord data of \(data.count) bytes does not fit data_len (u32)")
        buffer.reserveCapacity(buffer.count + encodedByteCount)
        buffer.append(rawLogSeparator)
        switch version {
        case .v1:
            precondition(ip == nil, "a v1 RawRecord has no IP field")
        case .v2:
            let ipCount = ip?.count ?? 0
            precondition(ipCount <= Int(UInt8.max), "RawRecord IP of \(ipCount) bytes does not fit ip_len (u8)")
            buffer.append(UInt8(ipCount))
        }
        appendLittleEndian(UInt16(path.count), to: &buffer)
        appendLittleEndian(UInt32(data.count), to: &buffer)
        appendLittleEndian(timestamp, to: &buffer)
        if let ip, version == .v2 { buffer.append(contentsOf: ip) }
        buffer.append(contentsOf: path)
        buffer.append(contentsOf: data)
    }
}

@inline(__always)
private func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to buffer: inout [UInt8]) {
    var v = value.littleEndian
    withUnsafeBytes(of: &v) { buffer.append(contentsOf: $0) }
}

/// The largest field lengths a reader accepts as plausible (`spec/raw-log.md` §1.3, §5.3; conformance README
/// ruling 3). A preamble declaring more is corruption: `RawLogReader` rejects it and resynchronises one byte after
/// its separator. Lengths in bytes; defaults are the ingest server's defaults.
public struct RawLogLimits: Sendable, Equatable {
    /// Largest `path_len` accepted (default 10,240, the server's `max_path_length`).
    public var maxPathBytes: Int
    /// Largest `data_len` accepted (default 204,800, the server's `max_data_length`; the on-wire size, not the
    /// inflated size).
    public var maxDataBytes: Int
    /// Largest v2 `ip_len` accepted (default 100, the server's `max_ip_length`; longer IPs are stored as `0.0.0.0`).
    public var maxIPBytes: Int

    public init(maxPathBytes: Int = 10_240, maxDataBytes: Int = 204_800, maxIPBytes: Int = 100) {
        self.maxPathBytes = maxPathBytes
        self.maxDataBytes = maxDataBytes
        self.maxIPBytes = maxIPBytes
    }

    /// The ingest server's defaults: 10,240 path bytes, 204,800 data bytes, 100 IP bytes.
    public static let `default` = RawLogLimits()

    /// Why a preamble with these lengths is implausible, or nil when it is within the limits.
    public func rejection(ipBytes: Int, pathBytes: Int, dataBytes: Int) -> RawLogRejection? {
        if pathBytes > maxPathBytes { return .pathTooLong(bytes: pathBytes, limit: maxPathBytes) }
        if dataBytes > maxDataBytes { return .dataTooLong(bytes: dataBytes, limit: maxDataBytes) }
        if ipBytes > maxIPBytes { return .ipTooLong(bytes: ipBytes, limit: maxIPBytes) }
        return nil
    }
}

/// Why a reader rejected a preamble (`spec/raw-log.md` §5.3: C++ "Invalid Path Length" / "Invalid Data Length";
/// a record that counts as `corrupted_data`, `spec/payloads.md` §10.4). Lengths in bytes, as declared.
public enum RawLogRejection: Sendable, Equatable, CustomStringConvertible {
    /// `path_len` over `RawLogLimits.maxPathBytes`.
    case pathTooLong(bytes: Int, limit: Int)
    /// `data_len` over `RawLogLimits.maxDataBytes`.
    case dataTooLong(bytes: Int, limit: Int)
    /// v2 `ip_len` over `RawLogLimits.maxIPBytes`.
    case ipTooLong(bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case let .pathTooLong(bytes, limit): "path length \(bytes) over the limit of \(limit) bytes"
        case let .dataTooLong(bytes, limit): "data length \(bytes) over the limit of \(limit) bytes"
        case let .ipTooLong(bytes, limit): "IP length \(bytes) over the limit of \(limit) bytes"
        }
    }
}

/// Errors thrown by the raw-log reader. Every case names the file; offsets are 0-based byte offsets in it.
/// Descriptions never contain record contents (paths, bodies, IPs).
public enum RawLogError: Error, Equatable, CustomStringConvertible {
    /// `open`/`read`/`fstat` failed with `errno`.
    case io(path: String, operation: String, errno: Int32, message: String)
    /// Neither framing reads the start of the file more cleanly than the other, and the name has no `.v1.`/`.v2.`
    /// tag to break the tie (`spec/raw-log.md` §5.1).
    case undetectableVersion(path: String)
    /// Strict mode: a byte other than `0x1E` where a record should start.
    case unexpectedByte(path: String, offset: Int)
    /// Strict mode: a preamble at `offset` declares a length over the limits.
    case rejectedPreamble(path: String, offset: Int, reason: RawLogRejection)
    /// Strict mode: the file ends inside the record starting at `offset`; `expectedBytes` is the record length its
    /// preamble declares (or the preamble length when the preamble itself is cut short), `availableBytes` what the
    /// file still has from `offset`.
    case truncatedRecord(path: String, offset: Int, expectedBytes: Int, availableBytes: Int)

    public var description: String {
        switch self {
        case let .io(path, operation, errno, message): "\(path): \(operation) failed: \(message) (errno \(errno))"
        case let .undetectableVersion(path): "Could not detect file version in: '\(path)'"
        case let .unexpectedByte(path, offset): "\(path): byte \(offset) is not a record separator (0x1e)"
        case let .rejectedPreamble(path, offset, reason): "\(path): record at byte \(offset) rejected: \(reason)"
        case let .truncatedRecord(path, offset, expected, available):
            "\(path): record at byte \(offset) cut short: \(expected) bytes declared, \(available) in the file"
        }
    }
}
