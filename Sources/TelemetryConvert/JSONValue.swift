/// A JSON document as the converter manipulates it (`spec/payloads.md`): object member order is kept,
/// integers stay exact (`Int64`), other numbers are `Double`.
///
/// Duplicate keys: `JSONObject` keeps every member as parsed; lookups return the first occurrence (the rule
/// of SQLite's JSON functions and simdjson), and `minimalJSON` writes them all.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integer literal (no fraction, no exponent) within the int64 range.
    case int(Int64)
    /// Any other number; always finite.
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// Member `key` of an object (first occurrence), nil otherwise.
    public subscript(key: String) -> JSONValue? {
        if case let .object(object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    public var objectValue: JSONObject? { if case let .object(o) = self { return o } else { return nil } }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a } else { return nil } }
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// Integer value of `.int`, or of a `.double` that is integral and in range.
    public var integerValue: Int64? {
        switch self {
        case let .int(i): return i
        case let .double(d) where d.rounded() == d && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }

    /// The value as a number, for either numeric case.
    public var numberValue: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }
}

/// One member of a JSON object.
public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue
    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// A JSON object with its members in document order.
public struct JSONObject: Sendable, Equatable {
    public var members: [JSONMember]

    public init(_ members: [JSONMember] = []) { self.members = members }

    /// First member named `key`. Setting replaces the first occurrence (dropping later duplicates) or appends;
    /// setting nil removes every occurrence.
    /// - Complexity: O(member count).
    public subscript(key: String) -> JSONValue? {
        get { members.first(where: { $0.key == key })?.value }
        set {
            guard let newValue else { members.removeAll { $0.key == key }; return }
            if let index = members.firstIndex(where: { $0.key == key }) {
                members[index].value = newValue
                if members[(index + 1)...].contains(where: { $0.key == key }) {
                    let tail = members[(index + 1)...].filter { $0.key != key }
                    members.removeSubrange((index + 1)...)
                    members.append(contentsOf: tail)
                }
            } else {
                members.append(JSONMember(key: key, value: newValue))
            }
        }
    }

    public var keys: [String] { members.map(\.key) }
    public var isEmpty: Bool { members.isEmpty }
    public func contains(_ key: String) -> Bool { members.contains { $0.key == key } }
}

extension JSONValue {
    /// Minimal JSON (no spaces: separators `,` and `:`), as the storage format wants (`spec/storage.md` §1).
    /// Non-ASCII characters and control characters are written as `\uXXXX` escapes (surrogate pairs above
    /// U+FFFF), as the seed's Python writer did, so storage files are pure ASCII;
    /// doubles in the shortest form that reads back as the same value.
    public var minimalJSON: String {
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the minimal JSON of this value to `out` as UTF-8 (pure ASCII) bytes.
    /// - Complexity: O(size of the output); appends to a byte buffer (no per-value `String` building except
    ///   for doubles).
    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: Self.nullBytes)
        case let .bool(b): out.append(contentsOf: b ? Self.trueBytes : Self.falseBytes)
        case let .int(i): Self.appendInteger(i, to: &out)
        case let .double(d): out.append(contentsOf: Self.format(d).utf8)
        case let .string(s): Self.writeString(s, to: &out)
        case let .array(values):
            out.append(UInt8(ascii: "["))
            var first = true
            for value in values {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(object):
            out.append(UInt8(ascii: "{"))
            var first = true
            for member in object.members {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                Self.writeString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let nullBytes = Array("null".utf8)
    private static let trueBytes = Array("true".utf8)
    private static let falseBytes = Array("false".utf8)

    /// Decimal digits of `value` (exact for the whole Int64 range).
    static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value >= 0 && value < 10 { out.append(UInt8(ascii: "0") + UInt8(value)); return }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            if value < 0 { out.append(UInt8(ascii: "-")) }
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// Shortest round-trip text of a finite double; integral values keep a `.0` (JSON has one number type,
    /// but the fraction tells readers it was a float).
    static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        return d.description   // Swift prints the shortest representation that round-trips, e.g. 873.474196434021, 1e-05
    }

    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var plain = true
        for byte in s.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C || byte >= 0x80 { plain = false; break }
        if plain {
            out.append(contentsOf: s.utf8)
        } else {
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\""))
                case "\\": out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\\"))
                case "\n": out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
                case "\r": out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
                case "\t": out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
                case "\u{08}": out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "b"))
                case "\u{0C}": out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "f"))
                case let c where c.value < 0x20 || c.value >= 0x80:
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        appendEscape(0xD800 + (v >> 10), to: &out)
                        appendEscape(0xDC00 + (v & 0x3FF), to: &out)
                    } else {
                        appendEscape(c.value, to: &out)
                    }
                default: out.append(UInt8(truncatingIfNeeded: scalar.value))
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(_ unit: UInt32, to out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "u"))
        for shift in stride(from: 12, through: 0, by: -4) { out.append(hex[Int((unit >> UInt32(shift)) & 0xF)]) }
    }
}
