import Foundation
import TelemetryCore
import TelemetryStore

/// Output formats for query results. `table` is for people; the others are for other tools.
public enum OutputFormat: String, CaseIterable, Sendable {
    /// Aligned columns with a header rule; numbers right-aligned. Cells are truncated only when `maxWidth` is set.
    case table
    /// RFC 4180 CSV (CRLF-free: rows end with LF), header row when headers are on.
    case csv
    /// Tab-separated; tabs, newlines and backslashes inside values escaped as `\t`, `\n`, `\\`.
    case tsv
    /// A JSON array of objects (one per row), RFC 8259: non-finite reals become `null`, blobs hex strings.
    case json
    /// A GitHub-flavoured Markdown table, always with its header row; numeric columns right-aligned (`--:`),
    /// `|` escaped as `\|`, line breaks inside a value as `<br>`. Never truncated.
    case markdown
    /// One `column = value` line per column, names right-aligned, a blank line between rows (sqlite3's
    /// `.mode line`): for wide rows. Never truncated.
    case line
}

/// Renders `Store.QueryResult`s as text (docs/cli.md "Output formats").
public struct ResultRenderer: Sendable {
    public var format: OutputFormat
    public var headers: Bool
    /// Terminal width to fit `table` output into (cells truncated with "…"); nil = never truncate.
    public var maxWidth: Int?

    public init(format: OutputFormat, headers: Bool = true, maxWidth: Int? = nil) {
        self.format = format
        self.headers = headers
        self.maxWidth = maxWidth
    }

    /// The rendered text, ending with a newline unless empty.
    public func render(_ result: Store.QueryResult) -> String {
        switch format {
        case .table: renderTable(result)
        case .csv: renderCSV(result)
        case .tsv: renderTSV(result)
        case .json: renderJSON(result)
        case .markdown: renderMarkdown(result)
        case .line: renderLines(result)
        }
    }

    /// Plain text of a value (no quoting): NULL is empty in csv/tsv and `NULL` in tables.
    static func text(_ value: SQLValue, nullText: String) -> String {
        switch value {
        case .null: nullText
        case let .integer(i): String(i)
        case let .real(d): formatReal(d)
        case let .text(s): s
        case let .blob(bytes): "x'" + bytes.map { String(format: "%02x", $0) }.joined() + "'"
        }
    }

    /// Shortest text that reads back as the same double (Swift's description), `inf`/`-inf`/`nan` as text.
    static func formatReal(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        if d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    private func renderTable(_ result: Store.QueryResult) -> String {
        let columnCount = result.columns.count
        guard columnCount > 0 else { return "" }
        var cells = result.rows.map { row in row.map { Self.flatten(Self.text($0, nullText: "NULL")) } }
        let numeric: [Bool] = (0..<columnCount).map { column in
            result.rows.allSatisfy { row in
                switch row[column] { case .integer, .real, .null: true; default: false }
            } && !result.rows.isEmpty
        }
        var widths = (0..<columnCount).map { column in
            max(headers ? result.columns[column].count : 0, cells.map { $0[column].count }.max() ?? 0)
        }
        if let maxWidth {
            // Shrink the widest columns until the row fits (2 spaces between columns), never below 3.
            let separators = 2 * (columnCount - 1)
            while widths.reduce(0, +) + separators > maxWidth {
                guard let widest = widths.indices.max(by: { widths[$0] < widths[$1] }), widths[widest] > 3 else { break }
                widths[widest] -= 1
            }
            cells = cells.map { row in row.enumerated().map { Self.truncate($0.element, to: widths[$0.offset]) } }
        }
        func line(_ values: [String], alignNumbers: Bool) -> String {
            values.enumerated().map { column, value in
                let pad = String(repeating: " ", count: max(0, widths[column] - value.count))
                return alignNumbers && numeric[column] ? pad + value : value + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = ""
        if headers {
            let names = result.columns.enumerated().map { Self.truncate($0.element, to: widths[$0.offset]) }
            out += line(names, alignNumbers: true) + "\n"
            out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        }
        for row in cells { out += line(row, alignNumbers: true) + "\n" }
        return out
    }

    /// `text` on one line: line breaks and tabs become spaces, so that a multi-line value cannot break a table row.
    static func flatten(_ text: String) -> String {
        guard text.contains(where: { $0.isNewline || $0 == "\t" }) else { return text }
        return String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 })
    }

    static func truncate(_ text: String, to width: Int) -> String {
        let flat = flatten(text)
        guard flat.count > width else { return flat }
        return String(flat.prefix(max(0, width - 1))) + "…"
    }

    private func renderCSV(_ result: Store.QueryResult) -> String {
        func quote(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var out = ""
        if headers && !result.columns.isEmpty { out += result.columns.map(quote).joined(separator: ",") + "\n" }
        for row in result.rows { out += row.map { quote(Self.text($0, nullText: "")) }.joined(separator: ",") + "\n" }
        return out
    }

    private func renderTSV(_ result: Store.QueryResult) -> String {
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\t", with: "\\t")
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
        }
        var out = ""
        if headers && !result.columns.isEmpty { out += result.columns.map(escape).joined(separator: "\t") + "\n" }
        for row in result.rows { out += row.map { escape(Self.text($0, nullText: "")) }.joined(separator: "\t") + "\n" }
        return out
    }

    private func renderJSON(_ result: Store.QueryResult) -> String {
        var out = "["
        for (rowIndex, row) in result.rows.enumerated() {
            out += rowIndex == 0 ? "\n  {" : ",\n  {"
            for (column, value) in row.enumerated() {
                if column > 0 { out += ", " }
                out += Self.jsonString(result.columns[column]) + ": " + Self.jsonValue(value)
            }
            out += "}"
        }
        out += result.rows.isEmpty ? "]\n" : "\n]\n"
        return out
    }

    private func renderMarkdown(_ result: Store.QueryResult) -> String {
        guard !result.columns.isEmpty else { return "" }
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|")
                .replacingOccurrences(of: "\r\n", with: "<br>").replacingOccurrences(of: "\n", with: "<br>")
        }
        let header = result.columns.map(escape)
        let cells = result.rows.map { row in row.map { escape(Self.text($0, nullText: "NULL")) } }
        let numeric: [Bool] = result.columns.indices.map { column in
            !result.rows.isEmpty && result.rows.allSatisfy { row in
                switch row[column] { case .integer, .real, .null: true; default: false }
            }
        }
        let widths = result.columns.indices.map { column in
            max(3, header[column].count, cells.map { $0[column].count }.max() ?? 0)
        }
        func line(_ values: [String]) -> String {
            "| " + values.enumerated().map { column, value in
                let pad = String(repeating: " ", count: max(0, widths[column] - value.count))
                return numeric[column] ? pad + value : value + pad
            }.joined(separator: " | ") + " |\n"
        }
        var out = line(header)
        out += "|" + widths.indices.map { column in
            numeric[column] ? String(repeating: "-", count: widths[column] + 1) + ":" : String(repeating: "-", count: widths[column] + 2)
        }.joined(separator: "|") + "|\n"
        for row in cells { out += line(row) }
        return out
    }

    private func renderLines(_ result: Store.QueryResult) -> String {
        let nameWidth = result.columns.map(\.count).max() ?? 0
        var out = ""
        for (rowIndex, row) in result.rows.enumerated() {
            if rowIndex > 0 { out += "\n" }
            for (column, value) in row.enumerated() {
                let name = result.columns[column]
                out += String(repeating: " ", count: nameWidth - name.count) + name + " = " + Self.text(value, nullText: "NULL") + "\n"
            }
        }
        return out
    }

    static func jsonValue(_ value: SQLValue) -> String {
        switch value {
        case .null: "null"
        case let .integer(i): String(i)
        case let .real(d): d.isFinite ? "\(d)" : "null"
        case let .text(s): jsonString(s)
        case let .blob(bytes): jsonString(bytes.map { String(format: "%02x", $0) }.joined())
        }
    }

    static func jsonString(_ s: String) -> String { jsonQuoted(s) }
}
