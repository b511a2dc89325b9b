import Foundation

/// How a dimension's values compare against range bounds (`spec/storage.md` §2, TelemetryEngine's rule;
/// docs/jobs.md "Filters"). One implementation, `AllowedValues.allows(_:as:)`, serves every place a filter is
/// evaluated (directory walk, S3 keys, raw records, jobs, `.filter`, the ping index).
public enum ValueOrder: String, Sendable, Equatable, CaseIterable {
    /// Firefox versions (Mozilla's version comparator): dot-separated parts, each `<number><letters><number>`
    /// compared part by part, numbers numerically, a missing part as `0`, a part without letters above one with
    /// them (`3.6` < `4.0b12` < `29.0` < `31.0a1` < `31.0a2` < `31.0` = `31` < `100.0`; `10.0esr` < `10.0`),
    /// `*` as a part above every number (`31.*`: every 31.x). The default of `appVersion`.
    case version
    /// Digit strings of a fixed width (build ids, dates): a bound shorter than the value is a prefix — a `min`
    /// is padded with `0`, a `max` with `9` (`{"max": "20140228"}` includes build `20140228235959`). A value
    /// that is not all digits is outside every range. The default of `appBuildID` and `submission_date`.
    case digits
    /// Decimal numbers, compared numerically; a value that is not a number is outside every range.
    case number
    /// Strings in byte order; a numeric bound compares the value's numeric reading (none: outside). The
    /// default of every other dimension.
    case text

    /// The order of a dimension the schema does not mark (`"compare"`).
    public static func `default`(forField name: String) -> ValueOrder {
        switch name {
        case "appVersion": .version
        case "appBuildID", DimensionSchema.submissionDateField: .digits
        default: .text
        }
    }
}

/// The values a dimension accepts (`spec/storage.md` §2).
///
/// Comparison for `range` depends on the dimension's `ValueOrder` (`allows(_:as:)`).
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

    /// True when `value` is allowed, range bounds compared in `order` (a dimension's `Dimension.order`; use
    /// `Dimension.allows(_:)`). Pure; O(list length) for `.list`, O(value length) for `.range`.
    public func allows(_ value: String, as order: ValueOrder) -> Bool {
        switch self {
        case .any: return true
        case let .exact(allowed): return value == allowed
        case let .list(values): return values.contains(value)
        case let .range(min, max):
            if let min, !Self.inRange(value, bound: min, isMin: true, order: order) { return false }
            if let max, !Self.inRange(value, bound: max, isMin: false, order: order) { return false }
            return true
        }
    }

    /// `isMin`: checks `bound <= value`; otherwise `value <= bound`.
    private static func inRange(_ value: String, bound: RangeBound, isMin: Bool, order: ValueOrder) -> Bool {
        let ordering: Int?   // sign of value - bound
        switch (bound, order) {
        case let (.number(b), _):
            guard let v = Double(value), !v.isNaN, !b.isNaN else { return false }
            ordering = v < b ? -1 : v > b ? 1 : 0
        case let (.string(b), .version):
            ordering = FirefoxVersion(value).compare(FirefoxVersion(b))
        case let (.string(b), .digits):
            ordering = compareDigits(value, b, padding: isMin ? "0" : "9")
        case let (.string(b), .number):
            guard let v = Double(value), let n = Double(b), !v.isNaN, !n.isNaN else { return false }
            ordering = v < n ? -1 : v > n ? 1 : 0
        case let (.string(b), .text):
            // Byte order: `==` on String would call canonically equivalent forms equal.
            ordering = value.utf8.elementsEqual(b.utf8) ? 0 : value.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
        }
        guard let ordering else { return false }
        return isMin ? ordering >= 0 : ordering <= 0
    }

    /// Compares two digit strings as fixed-width numbers: the shorter is padded on the right (`padding` for the
    /// bound, `0` for the value). Nil when either is empty or not all ASCII digits.
    private static func compareDigits(_ value: String, _ bound: String, padding: Character) -> Int? {
        let isDigits: (String) -> Bool = { !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        guard isDigits(value), isDigits(bound) else { return nil }
        let width = Swift.max(value.utf8.count, bound.utf8.count)
        let v = value + String(repeating: "0", count: width - value.utf8.count)
        let b = bound + String(repeating: padding, count: width - bound.utf8.count)
        return v == b ? 0 : v.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
    }

    /// The filter form (`spec/storage.md` §4): every string of a `.list` goes through
    /// `StorageLayout.storedValue` (the safe-file-name rule); other forms are unchanged.
    public var sanitizedForFilter: AllowedValues {
        if case let .list(values) = self { return .list(values.map(StorageLayout.storedValue)) }
        return self
    }
}

/// One schema dimension: an `info` field name (or `submission_date`), its allowed values and how its values
/// compare against range bounds.
public struct Dimension: Sendable, Equatable {
    /// The field name, e.g. `appUpdateChannel`; `submission_date` is the special date dimension.
    public var fieldName: String
    public var allowedValues: AllowedValues
    /// From the document's `"compare"` key, else `ValueOrder.default(forField:)`.
    public var order: ValueOrder
    public init(fieldName: String, allowedValues: AllowedValues, order: ValueOrder? = nil) {
        self.fieldName = fieldName
        self.allowedValues = allowedValues
        self.order = order ?? .default(forField: fieldName)
    }

    /// True when this dimension allows `value` (`AllowedValues.allows(_:as:)` in this dimension's order).
    public func allows(_ value: String) -> Bool { allowedValues.allows(value, as: order) }
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

    /// Names of the dimension that holds the ping type: `reason` in the seed's schema (`spec/storage.md` §2),
    /// `docType` in unified-ping schemas.
    public static let pingTypeFields = ["reason", "docType"]

    /// The dimension that holds the ping type (the first of `pingTypeFields` in this schema), nil when the
    /// schema has none. Duplicates are keyed on (document id, ping type) (docs/store.md "Duplicates").
    public var pingTypeField: String? { fieldNames.first { Self.pingTypeFields.contains($0) } }

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
        try Self.rejectUnknownKeys(root, known: ["version", "dimensions"], source: source, context: "the document")
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
            try Self.rejectUnknownKeys(dim, known: ["field_name", "allowed_values", "compare"], source: source, context: "dimension '\(name)'")
            var order: ValueOrder?
            if let mark = dim["compare"] {
                guard let text = mark as? String, let parsed = ValueOrder(rawValue: text) else {
                    throw CoreError.invalidSchema(path: source, reason: "\(name): compare must be one of \(ValueOrder.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
                }
                order = parsed
            }
            dimensions.append(Dimension(fieldName: name, allowedValues: try Self.parseAllowed(
                dim["allowed_values"], source: source, field: name), order: order))
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
            try rejectUnknownKeys(object, known: ["min", "max"], source: source, context: "\(field): the range")
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

    /// A key the format does not define is an error naming it: a misspelt bound (`{"mn": "28"}`) would otherwise
    /// widen the selection silently.
    private static func rejectUnknownKeys(_ object: [String: Any], known: Set<String>, source: String, context: String) throws {
        let unknown = object.keys.filter { !known.contains($0) }.sorted()
        guard let first = unknown.first else { return }
        throw CoreError.invalidSchema(path: source, reason: "unknown key '\(first)' in \(context) (allowed: \(known.sorted().joined(separator: ", ")))")
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
            var object: [String: Any] = ["field_name": dim.fieldName, "allowed_values": allowed]
            if dim.order != .default(forField: dim.fieldName) { object["compare"] = dim.order.rawValue }
            return object
        }
        let object: [String: Any] = ["version": version, "dimensions": dims]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    /// This schema as a filter: list values sanitised (`spec/storage.md` §4).
    public var asFilter: DimensionSchema {
        DimensionSchema(version: version, dimensions: dimensions.map {
            Dimension(fieldName: $0.fieldName, allowedValues: $0.allowedValues.sanitizedForFilter, order: $0.order)
        })
    }

    /// `value` if dimension `index` allows it, else `OTHER`.
    public func allowedValue(_ value: String, at index: Int) -> String {
        guard dimensions.indices.contains(index) else { return Self.other }
        return dimensions[index].allows(value) ? value : Self.other
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

/// A Firefox version for range comparison (Mozilla's `nsVersionComparator`): parts split on `.`, each
/// `<number a><string b><number c><rest d>`; a missing number is 0, `*` as `a` is above every number, a missing
/// string is above any string.
struct FirefoxVersion {
    struct Part {
        var a = 0, b: String? = nil, c = 0, d: String? = nil
    }
    let parts: [Part]

    init(_ text: String) {
        parts = text.split(separator: ".", omittingEmptySubsequences: false).map { Self.part(Substring($0)) }
    }

    private static func part(_ text: Substring) -> Part {
        var part = Part()
        var rest = text[...]
        if rest == "*" { part.a = Int.max; return part }
        func number() -> Int {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(digits.count)
            return digits.isEmpty ? 0 : Int(digits.prefix(18)) ?? Int.max
        }
        part.a = number()
        if rest.isEmpty { return part }
        if rest.first == "+" { part.a += 1; part.b = "pre"; return part }   // "1.5+" = "1.6pre", as Mozilla's
        let letters = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == "+" || $0 == "-")) }
        part.b = String(letters)
        rest = rest.dropFirst(letters.count)
        part.c = number()
        if !rest.isEmpty { part.d = String(rest) }
        return part
    }

    /// -1, 0 or 1.
    func compare(_ other: FirefoxVersion) -> Int {
        for index in 0..<max(parts.count, other.parts.count) {
            let x = index < parts.count ? parts[index] : Part(), y = index < other.parts.count ? other.parts[index] : Part()
            if x.a != y.a { return x.a < y.a ? -1 : 1 }
            if let r = Self.compareStrings(x.b, y.b), r != 0 { return r }
            if x.c != y.c { return x.c < y.c ? -1 : 1 }
            if let r = Self.compareStrings(x.d, y.d), r != 0 { return r }
        }
        return 0
    }

    /// A missing string is above any string.
    private static func compareStrings(_ x: String?, _ y: String?) -> Int? {
        switch (x, y) {
        case (nil, nil): return 0
        case (nil, _): return 1
        case (_, nil): return -1
        case let (x?, y?): return x == y ? 0 : x.utf8.lexicographicallyPrecedes(y.utf8) ? -1 : 1
        }
    }
}
