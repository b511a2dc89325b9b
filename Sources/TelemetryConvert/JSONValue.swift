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
        var out = ""
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .double(d): out += Self.format(d)
        case let .string(s): Self.writeString(s, to: &out)
        case let .array(values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                value.write(to: &out)
            }
            out += "]"
        case let .object(object):
            out += "{"
            for (index, member) in object.members.enumerated() {
                if index > 0 { out += "," }
                Self.writeString(member.key, to: &out)
                out += ":"
                member.value.write(to: &out)
            }
            out += "}"
        }
    }

    /// Shortest round-trip text of a finite double; integral values keep a `.0` (JSON has one number type,
    /// but the fraction tells readers it was a float).
    static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        return d.description   // Swift prints the shortest representation that round-trips, e.g. 873.474196434021, 1e-05
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        var plain = true
        for byte in s.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C || byte >= 0x80 { plain = false; break }
        if plain {
            out += s
        } else {
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                case let c where c.value < 0x20 || c.value >= 0x80:
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        appendEscape(0xD800 + (v >> 10), to: &out)
                        appendEscape(0xDC00 + (v & 0x3FF), to: &out)
                    } else {
                        appendEscape(c.value, to: &out)
                    }
                default: out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func appendEscape(_ unit: UInt32, to out: inout String) {
        let hex = String(unit, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
