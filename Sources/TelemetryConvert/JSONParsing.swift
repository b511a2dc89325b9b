#if canImport(Glibc)
import Glibc
#endif

extension JSONValue {
    /// Parses one JSON document into a `JSONValue`, with `PingParser`'s rules (RFC 8259, UTF-8, nesting at most
    /// 1024, integers within int64, top level any value). The bytes are validated by simdjson first, so the
    /// builder below can assume well-formed input.
    /// - Parameters:
    ///   - parser: a `PingParser` to validate with (one per thread); its extracted fields are ignored.
    ///   - padded: `bytes` has `PingParser.padding` readable bytes after its end.
    /// - Returns: the value and the number of duplicate object keys found.
    /// - Throws: `PingParser.Rejection` naming the first offending byte.
    /// - Complexity: O(bytes); allocates the tree.
    public static func parse(_ bytes: UnsafeRawBufferPointer, validatingWith parser: PingParser, padded: Bool = false,
                             requireObject: Bool = false) throws(PingParser.Rejection) -> (value: JSONValue, duplicateKeys: Int) {
        let validated = try parser.validate(bytes, padded: padded, requireObject: requireObject)
        var builder = JSONBuilder(bytes: bytes)
        return (builder.value(), validated)
    }

    /// Parses `text` (convenience for tests and small documents).
    public static func parse(_ text: String) throws(PingParser.Rejection) -> JSONValue {
        let parser = PingParser(fields: [])
        var copy = text
        var result: Result<JSONValue, PingParser.Rejection> = .success(.null)
        copy.withUTF8 { buffer in
            do throws(PingParser.Rejection) {
                result = .success(try parse(UnsafeRawBufferPointer(buffer), validatingWith: parser).value)
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }
}

/// Builds a `JSONValue` from bytes already validated as JSON. Never reads past `bytes.count`.
struct JSONBuilder {
    let base: UnsafePointer<UInt8>
    let count: Int
    var index = 0

    init(bytes: UnsafeRawBufferPointer) {
        base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        count = bytes.count
    }

    @inline(__always) mutating func skipSpace() {
        while index < count {
            let c = base[index]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { index += 1 } else { break }
        }
    }

    mutating func value() -> JSONValue {
        skipSpace()
        guard index < count else { return .null }
        switch base[index] {
        case UInt8(ascii: "{"):
            index += 1
            var members: [JSONMember] = []
            skipSpace()
            if index < count && base[index] == UInt8(ascii: "}") { index += 1; return .object(JSONObject(members)) }
            while index < count {
                skipSpace()
                let key = string()
                skipSpace()
                index += 1   // ':'
                let v = value()
                members.append(JSONMember(key: key, value: v))
                skipSpace()
                if index < count && base[index] == UInt8(ascii: ",") { index += 1; continue }
                index += 1   // '}'
                break
            }
            return .object(JSONObject(members))
        case UInt8(ascii: "["):
            index += 1
            var values: [JSONValue] = []
            skipSpace()
            if index < count && base[index] == UInt8(ascii: "]") { index += 1; return .array(values) }
            while index < count {
                values.append(value())
                skipSpace()
                if index < count && base[index] == UInt8(ascii: ",") { index += 1; continue }
                index += 1   // ']'
                break
            }
            return .array(values)
        case UInt8(ascii: "\""):
            return .string(string())
        case UInt8(ascii: "t"): index += 4; return .bool(true)
        case UInt8(ascii: "f"): index += 5; return .bool(false)
        case UInt8(ascii: "n"): index += 4; return .null
        default:
            return number()
        }
    }

    mutating func number() -> JSONValue {
        let start = index
        var isInteger = true
        while index < count {
            let c = base[index]
            if (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") { index += 1; continue }
            if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") {
                isInteger = false; index += 1; continue
            }
            break
        }
        if isInteger {
            var negative = false
            var position = start
            if base[position] == UInt8(ascii: "-") { negative = true; position += 1 }
            var magnitude: UInt64 = 0
            while position < index {
                magnitude = magnitude &* 10 &+ UInt64(base[position] - 0x30)
                position += 1
            }
            // Validated within int64: -2^63 … 2^63-1.
            return .int(negative ? Int64(bitPattern: 0 &- magnitude) : Int64(bitPattern: magnitude))
        }
        // strtod needs a NUL-terminated string: copy the (short) literal.
        var literal = [CChar](repeating: 0, count: index - start + 1)
        for offset in 0..<(index - start) { literal[offset] = CChar(bitPattern: base[start + offset]) }
        return .double(strtod(literal, nil))
    }

    mutating func string() -> String {
        index += 1   // opening quote
        let start = index
        var hasEscape = false
        while index < count {
            let c = base[index]
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") { hasEscape = true; index += 2; continue }
            index += 1
        }
        let end = min(index, count)
        index = end + 1   // closing quote
        let raw = UnsafeBufferPointer(start: base + start, count: end - start)
        if !hasEscape { return String(decoding: raw, as: UTF8.self) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            let c = raw[i]
            if c != UInt8(ascii: "\\") { bytes.append(c); i += 1; continue }
            let e = i + 1 < raw.count ? raw[i + 1] : 0
            i += 2
            switch e {
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar = hex4(raw, i)
                i += 4
                if scalar >= 0xD800 && scalar < 0xDC00, i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u") {
                    let low = hex4(raw, i + 2)
                    if low >= 0xDC00 && low < 0xE000 {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"   // a lone surrogate becomes U+FFFD
                bytes.append(contentsOf: String(unicode).utf8)
            default: bytes.append(e)   // \" \\ \/
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func hex4(_ raw: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 where at + offset < raw.count {
            let c = raw[at + offset]
            let digit: UInt32 = c >= 0x61 ? UInt32(c) - 0x61 + 10 : c >= 0x41 ? UInt32(c) - 0x41 + 10 : UInt32(c) - 0x30
            value = value << 4 | (digit & 0xF)
        }
        return value
    }
}
