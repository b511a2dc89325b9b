import Foundation
import TelemetryCompression
import TelemetryConvert
import TelemetryCore
import TelemetryTestSupport

/// Converts Foundation JSON (as JSONSerialization returns it) to `JSONValue`, for comparing vectors.
func jsonValue(fromFoundation any: Any) -> JSONValue {
    switch any {
    case is NSNull: return .null
    case let number as NSNumber:
        let type = String(cString: number.objCType)
        if type == "c" { return .bool(number.boolValue) }
        if type == "d" || type == "f" { return .double(number.doubleValue) }
        return .int(number.int64Value)
    case let string as String: return .string(string)
    case let array as [Any]: return .array(array.map(jsonValue(fromFoundation:)))
    case let dictionary as [String: Any]:
        return .object(JSONObject(dictionary.keys.sorted().map { JSONMember(key: $0, value: jsonValue(fromFoundation: dictionary[$0]!) ) }))
    default: return .null
    }
}

/// Structural equality of JSON values: object member order ignored, numbers compared as numbers.
func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case let (.object(x), .object(y)):
        guard x.members.count == y.members.count else { return false }
        return x.members.allSatisfy { member in y[member.key].map { sameJSON(member.value, $0) } ?? false }
    case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { sameJSON($0, $1) }
    case let (.int(x), .int(y)): return x == y
    case (.int, .double), (.double, .int), (.double, .double): return a.numberValue == b.numberValue
    default: return a == b
    }
}

/// Value at a dotted path (keys may contain dots themselves: tries the longest key first).
func value(at path: String, in root: JSONValue) -> JSONValue? {
    if path.isEmpty { return root }
    guard case let .object(object) = root else { return nil }
    let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    for count in stride(from: parts.count, through: 1, by: -1) {
        let key = parts[0..<count].joined(separator: ".")
        if let child = object[key] {
            let rest = parts[count...].joined(separator: ".")
            if let found = value(at: rest, in: child) { return found }
        }
    }
    return nil
}

/// A histogram cache directory laid out `<repo>/<rev>/Histograms.json` from a conformance fixture list.
func makeHistogramCache(_ revisions: [[String: Any]], in directory: TemporaryDirectory) throws -> String {
    let root = directory.path + "/cache"
    for revision in revisions {
        guard let repo = revision["repo"] as? String, let rev = revision["rev"] as? String else { continue }
        let target = directory.file("cache/\(repo)/\(rev)/Histograms.json")
        if let file = revision["file"] as? String {
            try FileManager.default.copyItem(atPath: Fixtures.sharedPath(file), toPath: target)
        } else if let inline = revision["inline"] {
            try JSONSerialization.data(withJSONObject: inline).write(to: URL(fileURLWithPath: target))
        }
    }
    return root
}

/// A payload converter over a cache directory (offline).
func payloadConverter(cache: String) -> PayloadConverter {
    PayloadConverter(compact: HistogramCompactor.compacting(with: RevisionCache(cacheDirectory: cache)))
}
