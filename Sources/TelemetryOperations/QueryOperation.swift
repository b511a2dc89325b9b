import Foundation
import TelemetryStore

/// Errors of the use-case layer, for both front doors.
public enum OperationError: Error, Equatable, CustomStringConvertible {
    /// A statement names a parameter that has no value (`--param`, `.param set`): a typo would otherwise run
    /// with NULL and give an empty answer. `name` has its prefix (`:day`, `@day`, `$day`, `?2`, or `?` for a
    /// bare one).
    case unboundParameter(name: String, statement: String)
    /// Import paths that select no file at all (a misspelt directory, an S3 prefix with no key under it).
    case nothingSelected(paths: [String])
    /// A `--param` item that is not `name=value`.
    case malformedParameter(String)

    public var description: String {
        switch self {
        case let .unboundParameter(name, statement):
            "parameter \(name) has no value (give it with --param \(name.dropFirst())=VALUE or .param set \(name.dropFirst()) VALUE; "
                + "NULL is allowed) in: \(statement)"
        case let .nothingSelected(paths):
            "\(paths.joined(separator: ", ")): no file to import there"
        case let .malformedParameter(item):
            "--param wants name=value, got '\(item)'"
        }
    }
}

/// SQL execution for `telemetry query`, `telemetry run` and the REPL.
public enum QueryOperation {
    /// Prepares each statement of `sql` in turn, binds `parameters` (keys without prefix, `Store.forEachStatement`),
    /// checks that every parameter the statement names has a value, and passes it to `body`, which steps it.
    /// - Throws: `OperationError.unboundParameter` for a parameter without a value (before the statement runs);
    ///   `Store.QueryError` as `Store.forEachStatement` does; what `body` throws.
    public static func forEachStatement(_ sql: String, on store: Store, parameters: [String: SQLValue] = [:],
                                        _ body: (Statement) throws -> Void) throws {
        try store.forEachStatement(sql, parameters: parameters) { statement in
            for name in statement.parameterNames {
                guard let name else { throw OperationError.unboundParameter(name: "?", statement: statement.sql) }
                if parameters[String(name.dropFirst())] == nil {
                    throw OperationError.unboundParameter(name: name, statement: statement.sql)
                }
            }
            try body(statement)
        }
    }

    /// A parameter's value from its text (`--param name=value`, `.param set name value`): `NULL`; `'…'` is text
    /// (quotes removed, `''` → `'`); an integer or a real number; anything else, the empty text included, is text
    /// as written. (`20131015` is an integer, which still equals the text `'20131015'` in a `TEXT` column: SQLite
    /// applies the column's affinity.)
    public static func parameterValue(_ text: String) -> SQLValue {
        if text.uppercased() == "NULL" { return .null }
        if text.count >= 2, text.hasPrefix("'"), text.hasSuffix("'") {
            return .text(String(text.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'"))
        }
        if let integer = Int64(text) { return .integer(integer) }
        if text.contains(where: \.isNumber), text.allSatisfy({ $0.isNumber || "+-.eE".contains($0) }), let real = Double(text) {
            return .real(real)
        }
        return .text(text)
    }

    /// `--param name=value` items as parameters by name without prefix (`:day`, `@day`, `day` → `day`).
    /// - Throws: `OperationError.malformedParameter` for an item without `=` or without a name.
    public static func parameters(_ items: [String]) throws -> [String: SQLValue] {
        var parameters: [String: SQLValue] = [:]
        for item in items {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else { throw OperationError.malformedParameter(item) }
            var name = String(item[..<equals])
            if let first = name.first, ":@$?".contains(first) { name.removeFirst() }
            parameters[name] = parameterValue(String(item[item.index(after: equals)...]))
        }
        return parameters
    }

    /// Runs every statement of `sql` and collects the result of each that returns columns.
    public static func results(_ sql: String, on store: Store, parameters: [String: SQLValue] = [:]) throws -> [Store.QueryResult] {
        var results: [Store.QueryResult] = []
        try forEachStatement(sql, on: store, parameters: parameters) { statement in
            let columnCount = statement.columnCount
            var result = Store.QueryResult(columns: (0..<columnCount).map { statement.columnName($0) }, rows: [])
            while try statement.step() { result.rows.append((0..<columnCount).map { statement.value($0) }) }
            if columnCount > 0 { results.append(result) }
        }
        return results
    }
}
