import Foundation

/// The values a dimension accepts (`spec/storage.md` §2).
///
/// Comparison for `range` follows the spec's rule for TelemetryEngine: strings compare as strings
/// (lexicographic, byte order), numbers numerically; a string value against numeric bounds (or the
/// reverse) compares the value's numeric reading when it has one, else it is not allowed.
public enum AllowedValues: Sendable, Equatable {
    /// `"*"`: any value.
    case any
    /// A bare string other than `"*"`: exactly that value.
    case exact(String)
    /// An array of strings: any listed value.
    case list([String])
    /// `{"min": x, "max": y}`, both inclusive, either optional.
    case range(min: RangeBound?, max: RangeBound?)

    /// One bound of a `range`.
    public enum RangeBound: Sendable, Equatable {
        case string(String)
        case number(Double)
    }

    /// True when `value` is allowed. Pure; O(list length) for `.list`.
    public func allows(_ value: String) -> Bool {
        switch self {
        case .any: return true
        case let .exact(allowed): return value == allowed
        case let .list(values): return values.contains(value)
        case let .range(min, max):
            if let min, !Self.compare(min, lessOrEqual: value, boundFirst: true) { return false }
            if let max, !Self.compare(max, lessOrEqual: value, boundFirst: false) { return false }
            return true
        }
    }

    /// `boundFirst`: checks `bound <= value`; otherwise `value <= bound`.
    private static func compare(_ bound: RangeBound, lessOrEqual value: String, boundFirst: Bool) -> Bool {
        switch bound {
        case let .string(b):
            // Byte order throughout: `==` on String would call canonically equivalent forms equal.
            return boundFirst ? !value.utf8.lexicographicallyPrecedes(b.utf8) : !b.utf8.lexicographicallyPrecedes(value.utf8)
        case let .number(b):
            guard let v = Double(value) else { return false }
            return boundFirst ? b <= v : v <= b
        }
    }

    /// The filter form (`spec/storage.md` §4): every string of a `.list` goes through
    /// `StorageLayout.storedValue` (the safe-file-name rule); other forms are unchanged.
    public var sanitizedForFilter: AllowedValues {
        if case let .list(values) = self { return .list(values.map(StorageLayout.storedValue)) }
        return self
    }
}

/// One schema dimension: an `info` field name (or `submission_date`) and its allowed values.
public struct Dimension: Sendable, Equatable {
    /// The field name, e.g. `appUpdateChannel`; `submission_date` is the special date dimension.
    public var fieldName: String
    public var allowedValues: AllowedValues
    public init(fieldName: String, allowedValues: AllowedValues) {
        self.fieldName = fieldName
        self.allowedValues = allowedValues
    }
}

/// A telemetry dimension schema or job filter (`spec/storage.md` §2 and §4): the ordered dimensions
/// that partition pings into the storage layout, each with its allowed values.
public struct DimensionSchema: Sendable, Equatable {
    /// Value stored for a dimension whose value is not allowed.
    public static let other = "OTHER"
    /// Value used for a field missing from `info` (before the allowed-values check).
    public static let unknown = "UNKNOWN"
    /// Name of the date dimension (UTC `yyyyMMdd`).
    public static let submissionDateField = "submission_date"

    /// Schema document `version` (required in the file).
    public var version: Int
    /// Dimensions in layout order; the last is normally `submission_date`.
    public var dimensions: [Dimension]

    public init(version: Int = 1, dimensions: [Dimension]) {
        self.version = version
        self.dimensions = dimensions
    }

    /// The seed's production schema (`datasets/real/schemas/telemetry_schema.json`), the default.
    public static let seed = DimensionSchema(version: 1, dimensions: [
        Dimension(fieldName: "reason", allowedValues: .list([
            "idle-daily", "saved-session", "android-anr-report", "ftu", "loop", "flash-video", "appusage", "main",
        ])),
        Dimension(fieldName: "appName", allowedValues: .list(["Firefox", "Fennec", "Thunderbird", "FirefoxOS", "B2G"])),
        Dimension(fieldName: "appUpdateChannel", allowedValues: .list(["release", "beta", "nightly", "aurora"])),
        Dimension(fieldName: "appVersion", allowedValues: .any),
        Dimension(fieldName: "appBuildID", allowedValues: .any),
        Dimension(fieldName: submissionDateField, allowedValues: .any),
    ])

    /// Field names in order.
    public var fieldNames: [String] { dimensions.map(\.fieldName) }

    /// Parses a schema or filter document.
    /// - Parameter source: names the document in errors (a path, or `"<inline>"`).
    /// - Throws: `CoreError.schemaNotJSON` when `data` is not JSON; `CoreError.invalidSchema` for a
    ///   wrong structure (missing `version`, `dimensions` not a list, a bad `allowed_values`, ...).
    public init(json data: Data, source: String) throws {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw CoreError.schemaNotJSON(path: source, detail: "\(error.localizedDescription)")
        }
        // A document that is not an object (`["a"]`, the seed's invalid_schema.json) has no version either:
        // same message as the C++ worker (`spec/storage.md` §2).
        guard let root = object as? [String: Any], let versionValue = root["version"] else {
            throw CoreError.invalidSchema(path: source, reason: "version element is missing")
        }
        guard let number = versionValue as? NSNumber, !isJSONBoolean(versionValue), let version = Int(exactly: number.doubleValue) else {
            throw CoreError.invalidSchema(path: source, reason: "version must be an integer")
        }
        guard let list = root["dimensions"] as? [Any] else {
            throw CoreError.invalidSchema(path: source, reason: "dimensions must be a list")
        }
        var dimensions: [Dimension] = []
        for (index, item) in list.enumerated() {
            guard let dim = item as? [String: Any], let name = dim["field_name"] as? String, !name.isEmpty else {
                throw CoreError.invalidSchema(path: source, reason: "dimensions[\(index)] needs a string field_name")
            }
            dimensions.append(Dimension(fieldName: name, allowedValues: try Self.parseAllowed(
                dim["allowed_values"], source: source, field: name)))
        }
        self.init(version: version, dimensions: dimensions)
    }

    /// Reads and parses a schema file.
    /// - Throws: `CoreError.fileNotFound`, `CoreError.unreadableFile`, or as `init(json:source:)`.
    public init(contentsOf path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw CoreError.fileNotFound(path: path) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CoreError.unreadableFile(path: path, detail: error.localizedDescription)
        }
        try self.init(json: data, source: path)
    }

    private static func parseAllowed(_ value: Any?, source: String, field: String) throws -> AllowedValues {
        switch value {
        case let s as String: return s == "*" ? .any : .exact(s)
        case let list as [Any]:
            var strings: [String] = []
            for item in list {
                if let s = item as? String { strings.append(s) }
                else if let n = item as? NSNumber, !isJSONBoolean(item) { strings.append(n.stringValue) }
                else { throw CoreError.invalidSchema(path: source, reason: "\(field): allowed_values list holds a non-string") }
            }
            return .list(strings)
        case let object as [String: Any]:
            func bound(_ key: String) throws -> AllowedValues.RangeBound? {
                switch object[key] {
                case nil, is NSNull: return nil
                case let s as String: return .string(s)
                case let n as NSNumber where !isJSONBoolean(n): return .number(n.doubleValue)
                default: throw CoreError.invalidSchema(path: source, reason: "\(field): \(key) must be a string or number")
                }
            }
            return .range(min: try bound("min"), max: try bound("max"))
        default:
            throw CoreError.invalidSchema(path: source, reason: "\(field): allowed_values must be \"*\", a string, a list or {min, max}")
        }
    }

    /// The schema as a JSON document (the same shape `init(json:source:)` reads); the store keeps it.
    public func jsonData() -> Data {
        let dims: [[String: Any]] = dimensions.map { dim in
            let allowed: Any
            switch dim.allowedValues {
            case .any: allowed = "*"
            case let .exact(s): allowed = s
            case let .list(values): allowed = values
            case let .range(min, max):
                var object: [String: Any] = [:]
                for (key, b) in [("min", min), ("max", max)] {
                    switch b {
                    case let .string(s)?: object[key] = s
                    case let .number(n)?: object[key] = n
                    case nil: break
                    }
                }
                allowed = object
            }
            return ["field_name": dim.fieldName, "allowed_values": allowed]
        }
        let object: [String: Any] = ["version": version, "dimensions": dims]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    /// This schema as a filter: list values sanitised (`spec/storage.md` §4).
    public var asFilter: DimensionSchema {
        DimensionSchema(version: version, dimensions: dimensions.map {
            Dimension(fieldName: $0.fieldName, allowedValues: $0.allowedValues.sanitizedForFilter)
        })
    }

    /// `value` if dimension `index` allows it, else `OTHER`.
    public func allowedValue(_ value: String, at index: Int) -> String {
        guard dimensions.indices.contains(index) else { return Self.other }
        return dimensions[index].allowedValues.allows(value) ? value : Self.other
    }

    /// Applies allowed values to a dimension list: disallowed → `OTHER`; missing trailing values → `OTHER`;
    /// extra values are dropped. Result has exactly `dimensions.count` elements.
    public func apply(_ values: [String]) -> [String] {
        dimensions.indices.map { index in
            index < values.count ? allowedValue(values[index], at: index) : Self.other
        }
    }

    /// Raw dimension values for a record (`spec/storage.md` §2.1): `submission_date` from the argument,
    /// any other field from `info` (stringified) or `UNKNOWN`. Not filtered, not sanitised.
    public func dimensions(fromInfo info: [String: String], submissionDate: String) -> [String] {
        dimensions.map { dim in
            dim.fieldName == Self.submissionDateField ? submissionDate : (info[dim.fieldName] ?? Self.unknown)
        }
    }

    /// Looks up named fields in a dimension list.
    /// - Parameters:
    ///   - limitToAllowed: disallowed values become `OTHER`.
    ///   - sanitize: values go through `StorageLayout.storedValue`.
    /// - Throws: `CoreError.unknownDimension` for a name the schema does not define.
    public func fields(_ names: [String], in values: [String], limitToAllowed: Bool, sanitize: Bool) throws -> [String: String] {
        var result: [String: String] = [:]
        for name in names {
            guard let index = dimensions.firstIndex(where: { $0.fieldName == name }) else {
                throw CoreError.unknownDimension(name: name, known: fieldNames)
            }
            var value = index < values.count ? values[index] : Self.other
            if limitToAllowed { value = allowedValue(value, at: index) }
            if sanitize { value = StorageLayout.storedValue(value) }
            result[name] = value
        }
        return result
    }
}

/// True for a JSON `true`/`false` as Foundation's JSONSerialization returns it (an NSNumber of ObjC type 'c'
/// on Linux, where `is Bool` also matches plain numbers).
func isJSONBoolean(_ value: Any) -> Bool {
    guard let number = value as? NSNumber else { return false }
    return String(cString: number.objCType) == "c"
}
