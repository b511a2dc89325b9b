import Foundation
import TelemetryCore
import TelemetryStore

/// The session-wide filter (`.filter FILE`): a job filter (`spec/storage.md` §4) applied to queries and imports.
///
/// Queries: the filter shadows the `pings` table with a TEMP view of the same name,
/// `CREATE TEMP VIEW pings AS SELECT * FROM main.pings WHERE <predicate>`. SQLite resolves an unqualified name in
/// `temp` before `main`, so every query that says `pings` sees only the filtered rows, and `main.pings` still
/// reaches them all. Views of the store that read `pings` (`pings_dedup`, `duplicate_documents`) are resolved inside
/// the `main` schema, so each gets a TEMP twin with the same definition, which then reads the filtered view. The
/// TEMP objects live in the connection only: nothing is written to the store, and they vanish with the session.
/// Writing to `pings` fails while a filter is set ("cannot modify pings because it is a view"); `main.pings`
/// works. Imports: `.import` passes the filter to the importer, which skips the files it excludes unopened.
public struct SessionFilter: Sendable, Equatable {
    /// The filter file, as given to `.filter`.
    public var path: String
    /// The filter as read; matched position by position against the store's dimensions.
    public var schema: DimensionSchema

    /// The filter read from `path`.
    public init(path: String, schema: DimensionSchema) {
        self.path = path
        self.schema = schema
    }

    /// Name of the view that shadows the table.
    static let viewName = "pings"

    /// The SQL condition on `main.pings` rows that the filter allows, e.g.
    /// `"appUpdateChannel" IN ('nightly','aurora') AND "appBuildID" IN ('20131015030204', …)`; `1` when it allows all.
    ///
    /// Values are compared with the filter's sanitised form (`DimensionSchema.asFilter`), as the storage layout
    /// and so the store's dimension columns hold them. Lists, exact values and string bounds of a `text`
    /// dimension become SQL (SQLite's BINARY collation is the same byte order); every other range (versions,
    /// digit strings, numbers: `ValueOrder`) is evaluated by `Dimension.allows` — the one rule of every filter —
    /// over the store's distinct values, which the condition then lists.
    /// - Parameter distinctValues: the store's distinct values of a dimension column (only called for such ranges).
    /// - Complexity: O(dimensions) plus one `distinctValues` call per such range.
    static func predicate(filter: DimensionSchema, columns: [String], distinctValues: (String) throws -> [String]) rethrows -> String {
        var terms: [String] = []
        for (index, dimension) in filter.asFilter.dimensions.enumerated() where index < columns.count {
            let column = Store.quote(columns[index])
            switch dimension.allowedValues {
            case .any:
                continue
            case let .exact(value):
                terms.append("\(column) = \(literal(value))")
            case let .list(values):
                terms.append(values.isEmpty ? "0" : "\(column) IN (\(values.map(literal).joined(separator: ", ")))")
            case let .range(min, max):
                let numeric = [min, max].contains { if case .number? = $0 { true } else { false } }
                if numeric || dimension.order != .text {
                    let allowed = try distinctValues(columns[index]).filter { dimension.allows($0) }
                    terms.append(allowed.isEmpty ? "0" : "\(column) IN (\(allowed.map(literal).joined(separator: ", ")))")
                } else {
                    if case let .string(low)? = min { terms.append("\(column) >= \(literal(low))") }
                    if case let .string(high)? = max { terms.append("\(column) <= \(literal(high))") }
                }
            }
        }
        return terms.isEmpty ? "1" : terms.joined(separator: " AND ")
    }

    /// The text values of the first column of the first result.
    static func textColumn(_ results: [Store.QueryResult]) -> [String] {
        (results.first?.rows ?? []).compactMap { row -> String? in
            if case let .text(value)? = row.first { return value }
            return nil
        }
    }

    /// A SQL string literal.
    static func literal(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "''") + "'" }

    /// Creates (or re-creates) the TEMP views on `store`'s connection.
    /// - Throws: `ShellError.filterMismatch` when the dimension counts differ; `StoreError.sqlite`.
    func apply(to store: Store) throws {
        guard schema.dimensions.count == store.schema.dimensions.count else {
            throw ShellError.filterMismatch(path: path, filterDimensions: schema.dimensions.count,
                                            storeDimensions: store.schema.dimensions.count)
        }
        try Self.remove(from: store)
        let condition = try Self.predicate(filter: schema, columns: store.schema.fieldNames) { column in
            let quoted = Store.quote(column)
            return Self.textColumn(try store.query("SELECT DISTINCT \(quoted) FROM main.pings ORDER BY \(quoted)"))
        }
        var sql = "CREATE TEMP VIEW \(Self.viewName) AS SELECT * FROM main.pings WHERE \(condition);\n"
        for (_, definition) in try Self.mainViewsReadingPings(store) {
            guard let range = definition.range(of: #"^\s*CREATE\s+VIEW\s+"#, options: [.regularExpression, .caseInsensitive]) else {
                continue
            }
            sql += "CREATE TEMP VIEW " + definition[range.upperBound...] + ";\n"
        }
        try store.connection.execute(sql)
    }

    /// Drops the TEMP views, if any (`.filter clear`, before an import writes to `pings`).
    static func remove(from store: Store) throws {
        let names = textColumn(try store.query("SELECT name FROM temp.sqlite_schema WHERE type = 'view'"))
        let views: [(name: String, sql: String)] = try mainViewsReadingPings(store)
        let ours = Set([viewName] + views.map { $0.name })
        for name in names where ours.contains(name) {
            try store.connection.execute("DROP VIEW temp.\(Store.quote(name))")
        }
    }

    /// The store's own views whose definition mentions `pings` as a word: `(name, CREATE VIEW … text)`.
    static func mainViewsReadingPings(_ store: Store) throws -> [(name: String, sql: String)] {
        let rows = try store.query("SELECT name, sql FROM main.sqlite_schema WHERE type = 'view' ORDER BY name").first?.rows ?? []
        return rows.compactMap { row in
            guard row.count == 2, case let .text(name) = row[0], case let .text(sql) = row[1], name != viewName,
                  sql.range(of: #"\bpings\b"#, options: [.regularExpression, .caseInsensitive]) != nil else { return nil }
            return (name, sql)
        }
    }
}
