import CSimdjson
#if canImport(Glibc)
import Glibc
#endif

/// Validates a ping's JSON with simdjson and extracts the typed `info` fields the store keeps in columns.
///
/// Rules (docs/store.md): RFC 8259 JSON only (no `NaN`/`Infinity`, no trailing characters), UTF-8 only,
/// nesting at most 1024, integers within int64, top level an object. Duplicate object keys are accepted
/// (first occurrence wins, as in SQLite's JSON functions) and counted.
///
/// - Important: Not `Sendable`: owns a simdjson parser. One per thread.
public final class PingParser {
    /// Why a document was rejected; `message` names the byte offset within the JSON when known.
    public struct Rejection: Error, Equatable, Sendable {
        public enum Kind: String, Sendable { case invalidJSON = "invalid_json", invalidUTF8 = "invalid_utf8" }
        public let kind: Kind
        public let message: String
        public let offset: Int?
    }

    /// A parsed document's extracted values, valid until the next `parse` call.
    public struct Parsed {
        /// Values of `fields`, in order; `nil` when absent, null or not a scalar.
        public var values: [InfoValue?]
        /// Keys that repeat an earlier key of the same object.
        public var duplicateKeys: Int
        /// With `extractsHistograms`: the encoded storage-format histograms (`csimdjson.h`,
        /// `csj_parser_set_histograms`; read them with `EncodedHistograms`), pointing into the parser's memory:
        /// valid until the next `parse`. Empty otherwise.
        public var histograms: UnsafeRawBufferPointer
        /// Number of entries in `histograms`.
        public var histogramCount: Int
    }

    /// A scalar read from the `info` object.
    public enum InfoValue: Equatable, Sendable {
        case string(String)
        case integer(Int64)
        case real(Double)
        case bool(Bool)

        /// Text form (for dimension-like columns).
        public var text: String {
            switch self {
            case let .string(s): s
            case let .integer(i): String(i)
            case let .real(d): String(d)
            case let .bool(b): b ? "true" : "false"
            }
        }
    }

    /// The `info` field names extracted, in order.
    public let fields: [String]
    private let parser: OpaquePointer
    private var result = csj_ping()

    /// Bytes simdjson may read past a document's end when `padded` is true.
    public static var padding: Int { csj_padding() }

    /// True when `parse` also encodes the ping's storage-format histograms (`Parsed.histograms`).
    public let extractsHistograms: Bool

    /// - Parameter fields: names inside the top-level `info` object (at most 32).
    /// - Parameter histograms: also extract the histograms (for the store's column files).
    public init(fields: [String], histograms: Bool = false) {
        precondition(fields.count <= Int(CSJ_MAX_FIELDS), "PingParser: at most \(CSJ_MAX_FIELDS) info fields")
        guard let parser = csj_parser_new() else { fatalError("simdjson parser allocation failed (out of memory)") }
        self.parser = parser
        self.fields = fields
        extractsHistograms = histograms
        csj_parser_set_histograms(parser, histograms ? 1 : 0)
        var cStrings = fields.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let rc = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                csj_parser_set_fields(parser, $0, buffer.count)
            }
        }
        precondition(rc == 0)
    }

    deinit { csj_parser_free(parser) }

    /// Validates `json` without extracting fields.
    /// - Parameter requireObject: reject a top level that is not an object.
    /// - Returns: the number of duplicate object keys.
    /// - Throws: `Rejection` for a document that breaks the rules above.
    public func validate(_ json: UnsafeRawBufferPointer, padded: Bool, requireObject: Bool) throws(Rejection) -> Int {
        do {
            return try parse(json, padded: padded).duplicateKeys
        } catch {
            if !requireObject && result.status == Int32(CSJ_NOT_OBJECT.rawValue) { return Int(result.duplicate_keys) }
            throw error
        }
    }

    /// Parses and validates `json`.
    /// - Parameter padded: `json` has `PingParser.padding` readable bytes after its end (avoids a copy).
    /// - Throws: `Rejection` for a document that breaks the rules above.
    /// - Complexity: O(bytes); one pass of simdjson plus one walk of its DOM.
    public func parse(_ json: UnsafeRawBufferPointer, padded: Bool) throws(Rejection) -> Parsed {
        let empty: StaticString = ""
        let base = json.baseAddress?.assumingMemoryBound(to: CChar.self)
            ?? UnsafeRawPointer(empty.utf8Start).assumingMemoryBound(to: CChar.self)
        let status = withUnsafeMutablePointer(to: &result) { out in
            csj_parse_ping(parser, base, json.count, padded && json.baseAddress != nil ? 1 : 0, out)
        }
        if status != Int32(CSJ_OK.rawValue) {
            let message = withUnsafeBytes(of: &result.message) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            let offset = result.error_offset == Int.max || result.error_offset == size_t.max ? nil : Int(result.error_offset)
            let kind: Rejection.Kind = status == Int32(CSJ_INVALID_UTF8.rawValue) ? .invalidUTF8 : .invalidJSON
            if status == Int32(CSJ_TOO_DEEP.rawValue), offset == nil {
                throw Rejection(kind: kind, message: "nesting deeper than \(CSJ_MAX_DEPTH)", offset: nil)
            }
            throw Rejection(kind: kind, message: message, offset: offset)
        }
        var values: [InfoValue?] = []
        values.reserveCapacity(fields.count)
        withUnsafeBytes(of: &result.fields) { raw in
            let fieldValues = raw.bindMemory(to: csj_value.self)
            for index in 0..<fields.count {
                let v = fieldValues[index]
                switch Int(v.kind) {
                case Int(CSJ_STRING.rawValue):
                    let bytes = UnsafeRawBufferPointer(start: v.str, count: v.len)
                    values.append(.string(String(decoding: bytes, as: UTF8.self)))
                case Int(CSJ_INT.rawValue): values.append(.integer(v.i))
                case Int(CSJ_DOUBLE.rawValue): values.append(.real(v.d))
                case Int(CSJ_BOOL.rawValue): values.append(.bool(v.i != 0))
                default: values.append(nil)
                }
            }
        }
        return Parsed(values: values, duplicateKeys: Int(result.duplicate_keys),
                      histograms: UnsafeRawBufferPointer(start: result.histograms, count: result.histograms_len),
                      histogramCount: Int(result.histogram_count))
    }
}
