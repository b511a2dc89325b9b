import Foundation
import TelemetryStore

/// Names the shell offers and lists: tables, columns, SQL functions, dimension values, histogram names.
///
/// Everything is read from the store on first use and cached until `invalidate()` (after `.open`, `.import`,
/// `.filter`, or a statement that changed the schema). Histogram names come from a sample of at most
/// `histogramSampleSize` pings spread evenly over the `pings` rowids, because listing the keys of every payload
/// (`json_each` over all pings) takes minutes on a big store.
///
/// - Important: Not `Sendable`: use it on the session's thread (completion runs there, inside `el_gets`).
public final class Catalog {
    /// Pings whose payloads are read to find histogram names.
    public static let histogramSampleSize = 400
    /// Most distinct values kept per dimension column for completion.
    public static let dimensionValueLimit = 1000

    /// One histogram name found in the sample.
    public struct Histogram: Sendable, Equatable {
        /// The histogram's name (`SAMPLE_GC_MS`).
        public var name: String
        /// True for a keyed histogram (`keyedHistograms`).
        public var keyed: Bool
        /// Sampled pings that carry it.
        public var pings: Int
    }

    /// The histograms found and how many pings were read to find them.
    public struct HistogramSample: Sendable, Equatable {
        /// Sorted by name, then plain before keyed.
        public var histograms: [Histogram]
        /// Pings read.
        public var sampledPings: Int
        /// False when the store (or the filtered view) has more pings than were read.
        public var isComplete: Bool
    }

    /// Names of the session's `.param` values (without prefix), kept current by the session.
    public var parameterNames: [String] = []

    /// The store names are read from; setting it clears the caches.
    public var store: Store? { didSet { invalidate() } }

    private var tables: [String]?
    private var columns: [String]?
    private var functions: [String]?
    private var histogramSample: HistogramSample?
    private var dimensionValues: [String: [String]] = [:]

    /// A catalog reading `store` (nothing to offer while it is `nil`).
    public init(store: Store?) { self.store = store }

    /// Forgets everything read so far.
    public func invalidate() {
        tables = nil
        columns = nil
        functions = nil
        histogramSample = nil
        dimensionValues = [:]
    }

    /// Tables and views of `main` and `temp` (without SQLite's own), sorted.
    public func tableNames() -> [String] {
        if let tables { return tables }
        let names = strings("""
            SELECT name FROM main.sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
            UNION SELECT name FROM temp.sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
            ORDER BY 1
            """)
        tables = names
        return names
    }

    /// Column names of every table and view, distinct, sorted.
    public func columnNames() -> [String] {
        if let columns { return columns }
        var set = Set<String>()
        for table in tableNames() {
            set.formUnion(strings("SELECT name FROM pragma_table_info(\(SessionFilter.literal(table)))"))
        }
        let sorted = set.sorted()
        columns = sorted
        return sorted
    }

    /// SQL functions the connection knows (SQLite's and any the store registered), sorted.
    public func functionNames() -> [String] {
        if let functions { return functions }
        let names = strings("SELECT DISTINCT name FROM pragma_function_list ORDER BY name")
        functions = names
        return names
    }

    /// Distinct values of the dimension (or indexed info) column `column` in `main.pings`, sorted; at most
    /// `dimensionValueLimit`. Empty for a column that is neither (scanning an unindexed column would be slow).
    public func values(ofDimension column: String) -> [String] {
        if let cached = dimensionValues[column] { return cached }
        guard let store else { return [] }
        let indexed = store.schema.fieldNames + ["os", "update_channel"]
        guard let name = indexed.first(where: { $0.caseInsensitiveCompare(column) == .orderedSame }) else { return [] }
        let quoted = Store.quote(name)
        let values = strings("SELECT DISTINCT \(quoted) FROM main.pings WHERE \(quoted) IS NOT NULL ORDER BY 1 LIMIT \(Self.dimensionValueLimit)")
        dimensionValues[column] = values
        return values
    }

    /// Dimension column names of the store, in schema order.
    public var dimensionNames: [String] { store?.schema.fieldNames ?? [] }

    /// Histogram names in a sample of the (possibly filtered) `pings`; cached.
    /// - Throws: `StoreError.sqlite` (e.g. interrupted).
    /// - Complexity: one index seek per sampled ping plus parsing its payload once (`json_extract` caches the
    ///   parse across the four paths); about 50 ms for 400 pings of 50 KB.
    public func histograms() throws -> HistogramSample {
        if let histogramSample { return histogramSample }
        guard let store else { return HistogramSample(histograms: [], sampledPings: 0, isComplete: true) }
        let n = Self.histogramSampleSize
        let bounds = try store.query("SELECT min(ping_id), max(ping_id), (SELECT count(*) FROM (SELECT 1 FROM pings LIMIT \(n + 1))) FROM pings")
        guard let row = bounds.first?.rows.first, row.count == 3, case let .integer(low) = row[0], case let .integer(high) = row[1],
              case let .integer(upTo) = row[2] else {
            let empty = HistogramSample(histograms: [], sampledPings: 0, isComplete: true)
            histogramSample = empty
            return empty
        }
        let sql = """
            WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < \(n)),
            picked AS (
                SELECT DISTINCT (SELECT ping_id FROM pings WHERE ping_id >= \(low) + (\(high) - \(low)) * k.i / \(max(n - 1, 1))
                                 ORDER BY ping_id LIMIT 1) AS id FROM k),
            sample AS MATERIALIZED (
                SELECT p.ping_id, json_extract(p.payload, '$.histograms') AS h, json_extract(p.payload, '$.keyedHistograms') AS kh,
                       json_extract(p.payload, '$.payload.histograms') AS ph, json_extract(p.payload, '$.payload.keyedHistograms') AS pkh
                FROM picked JOIN pings p ON p.ping_id = picked.id)
            SELECT NULL, NULL, count(*) FROM sample
            UNION ALL
            SELECT key, keyed, count(DISTINCT ping_id) FROM (
                SELECT sample.ping_id, e.key AS key, 0 AS keyed FROM sample, json_each(sample.h) e
                UNION ALL SELECT sample.ping_id, e.key, 1 FROM sample, json_each(sample.kh) e
                UNION ALL SELECT sample.ping_id, e.key, 0 FROM sample, json_each(sample.ph) e
                UNION ALL SELECT sample.ping_id, e.key, 1 FROM sample, json_each(sample.pkh) e)
            WHERE key IS NOT NULL
            GROUP BY key, keyed
            ORDER BY 1, 2
            """
        var sampled = 0
        var found: [Histogram] = []
        for row in try store.query(sql).first?.rows ?? [] where row.count == 3 {
            switch (row[0], row[1], row[2]) {
            case let (.null, .null, .integer(count)): sampled = Int(count)
            case let (.text(name), .integer(keyed), .integer(pings)): found.append(Histogram(name: name, keyed: keyed != 0, pings: Int(pings)))
            default: continue
            }
        }
        let result = HistogramSample(histograms: found, sampledPings: sampled, isComplete: upTo <= Int64(n))
        histogramSample = result
        return result
    }

    /// Histogram names for completion; empty when the sample cannot be read.
    public func histogramNames() -> [String] {
        var seen = Set<String>()
        return ((try? histograms().histograms) ?? []).map(\.name).filter { seen.insert($0).inserted }
    }

    /// First column of `sql` as strings; empty on any error (completion must never fail loudly).
    private func strings(_ sql: String) -> [String] {
        guard let store, let result = try? store.query(sql).first else { return [] }
        return result.rows.compactMap { row in
            switch row.first {
            case let .text(s)?: s
            case let .integer(i)?: String(i)
            default: nil
            }
        }
    }
}
