import Foundation
import TelemetryCore

/// Output formats for job results.
public enum JobOutputFormat: String, Sendable, CaseIterable {
    /// `key` + field separator + `value` + record separator (defaults TAB and LF; `setupReduce` may change them).
    case tsv
    /// RFC 4180 rows `key,value`, quoted when needed, CRLF-free (LF).
    case csv
    /// A JSON array of `{"key": …, "value": …}` objects, both strings.
    case json

    /// Renders `result` in this format.
    public func render(_ result: JobResult) -> String {
        switch self {
        case .tsv:
            return result.records.map { $0.key + result.fieldSeparator + $0.value + result.recordSeparator }.joined()
        case .csv:
            return result.records.map { Self.csvField($0.key) + "," + Self.csvField($0.value) + "\n" }.joined()
        case .json:
            let rows = result.records.map { "{\"key\":\(Self.jsonString($0.key)),\"value\":\(Self.jsonString($0.value))}" }
            return "[" + rows.joined(separator: ",\n ") + "]\n"
        }
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func jsonString(_ text: String) -> String { jsonQuoted(text) }
}
