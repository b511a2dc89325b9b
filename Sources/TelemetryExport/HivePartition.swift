import TelemetryCore

/// Hive-style partition directories (`column=value`), as Spark, Trino, DuckDB and pyarrow discover them.
///
/// A value is escaped the way Hive's `FileUtils.escapePathName` does (and Spark's `ExternalCatalogUtils`, whose
/// `unescapePathName` readers apply): `%XX` (upper-case hex of the byte) for control characters, `"`, `#`, `%`,
/// `'`, `*`, `/`, `:`, `=`, `?`, `\`, DEL, `{`, `[`, `]`, `^`, and also space, `<`, `>`, `|` (Spark escapes those on
/// Windows; pyarrow and DuckDB decode them alike). Other characters, non-ASCII included, stay as UTF-8: Spark
/// decodes `%XX` byte by byte into UTF-16 code units, so percent-encoding a multi-byte character would not
/// survive it. NULL is Hive's `__HIVE_DEFAULT_PARTITION__` (every engine reads it back as NULL), and so is the
/// empty string, which no engine can tell from NULL.
///
/// A value already in the storage layout's stored form (`StorageLayout.storedValue(v) == v`: every dimension value
/// our own convert writes) goes through the one path-component rule, `StorageLayout.pathComponent(_:position:
/// .directory)`, whose only escapes (`%2F`, a leading `.` as `%2E`) every engine decodes the same way. Any other
/// value (typed `info` columns come from payloads: `x/../y`, `ночь 夜`, `a=b`) is escaped as above instead, because
/// that rule sanitises such values (`[^a-zA-Z0-9_/.]` → `_`), which would merge distinct values into one partition.
enum HivePartition {
    static let defaultPartitionName = "__HIVE_DEFAULT_PARTITION__"

    /// The escaped form of `value` (nil: NULL).
    static func escape(_ value: String?) -> String {
        guard let value, !value.isEmpty else { return defaultPartitionName }
        if StorageLayout.storedValue(value) == value { return StorageLayout.pathComponent(value, position: .directory) }
        var out = ""
        for scalar in value.unicodeScalars {
            if scalar.value < 0x80 && mustEscape(UInt8(scalar.value)) {
                out += "%" + hex(UInt8(scalar.value))
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Inverse of `escape` (`%XX` of an ASCII byte decoded; `__HIVE_DEFAULT_PARTITION__` is nil).
    static func unescape(_ component: String) -> String? {
        if component == defaultPartitionName { return nil }
        let scalars = Array(component.unicodeScalars)
        var out = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            if scalars[index] == "%", index + 2 < scalars.count,
               let byte = UInt8(String(String.UnicodeScalarView(scalars[index + 1...index + 2])), radix: 16) {
                out.append(UnicodeScalar(byte))
                index += 3
            } else {
                out.append(scalars[index])
                index += 1
            }
        }
        return String(out)
    }

    /// `column=escaped value`.
    /// - Throws: `ExportError.partitionValueTooLong` when it would not fit in one path component.
    static func directory(column: String, value: String?) throws -> String {
        let component = escape(column) + "=" + escape(value)
        guard component.utf8.count <= 255 else {
            throw ExportError.partitionValueTooLong(column: column, bytes: component.utf8.count)
        }
        return component
    }

    private static func mustEscape(_ byte: UInt8) -> Bool {
        if byte < 0x20 || byte == 0x7F { return true }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "#"), UInt8(ascii: "%"), UInt8(ascii: "'"), UInt8(ascii: "*"),
             UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: "\\"),
             UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "^"),
             UInt8(ascii: " "), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "|"):
            return true
        default:
            return false
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
