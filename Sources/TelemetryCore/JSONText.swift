/// JSON string literal text for output formats people read (RFC 8259): `"` and `\` escaped, `\n`, `\r`, `\t`
/// and other control characters escaped, everything else (non-ASCII included) written as UTF-8.
/// (The storage format's writer, `JSONValue.minimalJSON`, escapes non-ASCII too, as the seed did.)
public func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case let c where c.value < 0x20:
            let hex = String(c.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
