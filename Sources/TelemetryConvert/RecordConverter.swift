import Foundation
import TelemetryCompression
import TelemetryCore

/// A raw record converted to a storage-format line and its place in the layout.
public struct ConvertedRecord: Sendable {
    /// Path component 0.
    public var documentID: String
    /// The converted payload as minimal JSON.
    public var json: String
    /// Raw dimension values in schema order (`submission_date` from the record's timestamp, UTC), before the
    /// schema's allowed values are applied.
    public var dimensions: [String]
    /// The converted `info` fields as text.
    public var info: [String: String]
    /// Warnings: histogram names dropped (`unknown_histogram`) or converted with a differing declaration
    /// (`definition_mismatch`), and duplicate object keys in the payload.
    public var unknownHistograms: [String]
    public var mismatchedHistograms: [String]
    public var duplicateKeys: Int
}

/// The outcome of converting one record (`spec/payloads.md` §9, §10.4).
public enum RecordOutcome: Sendable {
    case converted(ConvertedRecord)
    case rejected(PayloadRejection)
}

/// Turns raw submissions into storage-format records: path → document id and dimensions, gzip body inflated
/// (at most `maxUncompressedBytes`), JSON validated, payload converted (`PayloadConverter`).
///
/// - Important: Not `Sendable`: owns a simdjson parser. One per thread; they may share one `PayloadConverter`.
public final class RecordConverter {
    public let schema: DimensionSchema
    public let payloadConverter: PayloadConverter
    /// Per-record inflate limit (`max_uncompressed`, default 1,048,576 bytes; `spec/payloads.md` §10.4).
    public let maxUncompressedBytes: Int
    private let parser = PingParser(fields: [])

    public init(schema: DimensionSchema, payloadConverter: PayloadConverter, maxUncompressedBytes: Int = 1_048_576) {
        self.schema = schema
        self.payloadConverter = payloadConverter
        self.maxUncompressedBytes = maxUncompressedBytes
    }

    /// True for exactly one lower-case UUID, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$` (§10.1).
    static func isLowercaseUUID(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                guard (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) else { return false }
            }
        }
        return true
    }

    /// Converts one raw-log record.
    public func convert(_ record: RawRecord, source: String) -> RecordOutcome {
        let components = record.pathString.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard components.count == 6, !components[0].isEmpty else {
            if components.count == 1, Self.isLowercaseUUID(components[0]) {
                return .rejected(PayloadRejection(.uuidOnlyPath, "Path is only a document id: \(Self.brief(record.pathString))"))
            }
            let reason = components.first?.isEmpty == true && components.count == 6
                ? "Empty document id in path: \(Self.brief(record.pathString))"
                : "Invalid path (\(components.count) components, expected 6): \(Self.brief(record.pathString))"
            return .rejected(PayloadRejection(.invalidPath, reason))
        }
        var body = record.data
        if Gzip.isGzip(body) {
            do {
                body = try Gzip.inflate(body, limit: maxUncompressedBytes, source: "\(source): record at byte \(record.offset)")
            } catch let error as CompressionError {
                if error.exceededOutputLimit != nil {
                    return .rejected(PayloadRejection(.corruptedData, "uncompressed size exceeds \(maxUncompressedBytes)"))
                }
                return .rejected(PayloadRejection(.corruptedData, "gzip body does not inflate: \(error)"))
            } catch {
                return .rejected(PayloadRejection(.corruptedData, "gzip body does not inflate: \(error)"))
            }
        } else if body.count > maxUncompressedBytes {
            return .rejected(PayloadRejection(.corruptedData, "uncompressed size exceeds \(maxUncompressedBytes)"))
        }
        guard !body.isEmpty else { return .rejected(PayloadRejection(.emptyData, "Empty payload")) }
        return convert(documentID: components[0], json: body, submissionDate: Self.submissionDate(milliseconds: record.timestamp),
                       ip: record.ipString)
    }

    /// Converts one payload given as JSON bytes (the text form `<document id>\t<json>`, or a record's body).
    public func convert(documentID: String, json: [UInt8], submissionDate: String, ip: String? = nil) -> RecordOutcome {
        let parsed: Result<(value: JSONValue, duplicateKeys: Int), PingParser.Rejection> = json.withUnsafeBytes { bytes in
            do throws(PingParser.Rejection) {
                return .success(try JSONValue.parse(bytes, validatingWith: parser, padded: false))
            } catch {
                return .failure(error)
            }
        }
        let document: (value: JSONValue, duplicateKeys: Int)
        switch parsed {
        case let .success(value): document = value
        case let .failure(error): return .rejected(PayloadRejection(.conversionError, "Payload is not valid JSON: \(error.message)"))
        }
        let converted: ConvertedPayload
        do {
            converted = try payloadConverter.convert(document.value, ip: ip)
        } catch {
            return .rejected(error)
        }
        let dimensions = schema.dimensions(fromInfo: converted.info, submissionDate: submissionDate)
        return .converted(ConvertedRecord(documentID: documentID, json: JSONValue.object(converted.payload).minimalJSON,
                                          dimensions: dimensions, info: converted.info,
                                          unknownHistograms: converted.unknownHistograms,
                                          mismatchedHistograms: converted.mismatchedHistograms,
                                          duplicateKeys: document.duplicateKeys))
    }

    /// `yyyyMMdd` (UTC) of a timestamp in milliseconds since the epoch (`spec/storage.md` §2.1).
    public static func submissionDate(milliseconds: UInt64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d%02d%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
    }

    static func brief(_ text: String) -> String { text.count > 200 ? String(text.prefix(200)) + "…" : text }
}

extension PingParser.Rejection: CustomStringConvertible {
    public var description: String { message }
}
