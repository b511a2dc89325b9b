import Foundation
import TelemetryCompression
import TelemetryCore
import TelemetryStore

/// What `telemetry export` writes (docs/export.md).
public struct ExportOptions: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// Parquet files (`ParquetFileWriter`), `part-NNNNN.parquet`.
        case parquet
        /// gzip-compressed JSON lines, `part-NNNNN.jsonl.gz`.
        case jsonl
    }
    /// Which histograms become columns.
    public enum Histograms: Sendable, Equatable {
        case none
        case all
        case names([String])
    }

    public var format: Format
    /// The dataset's root directory (created when missing).
    public var directory: String
    /// Partition columns, outermost first: dimensions or text `info` columns. `nil`: `submission_date` when the
    /// store's schema has it, else none.
    public var partitionBy: [String]?
    /// A SQL condition on `pings` selecting the pings to export (`telemetry job --where`'s rules).
    public var whereSQL: String?
    public var histograms: Histograms
    /// Adds the payload JSON as a column (`payload`).
    public var includePayload: Bool
    /// Rows per Parquet row group (memory is bounded by this and by 64 MiB of values).
    public var rowGroupRows: Int
    /// Rows per file: a partition with more is split into `part-00000`, `part-00001`, … in `ping_id` order.
    public var maxRowsPerFile: Int

    public init(format: Format, directory: String, partitionBy: [String]? = nil, whereSQL: String? = nil,
                histograms: Histograms = .none, includePayload: Bool = false, rowGroupRows: Int = 100_000,
                maxRowsPerFile: Int = 1_000_000) {
        self.format = format
        self.directory = directory
        self.partitionBy = partitionBy
        self.whereSQL = whereSQL
        self.histograms = histograms
        self.includePayload = includePayload
        self.rowGroupRows = rowGroupRows
        self.maxRowsPerFile = maxRowsPerFile
    }
}

/// What an export wrote.
public struct ExportSummary: Sendable, Equatable {
    public var pings: Int
    public var partitions: Int
    public var files: Int
    /// Output column names in file order (partition columns are in the directory names, not in Parquet files).
    public var columns: [String]
    public var partitionBy: [String]
    /// Partition columns whose values Spark would read as numbers unless told the schema (versions, build ids).
    public var numericLookingPartitions: [String]
}

/// Exports a store's pings as a Hive-partitioned dataset (docs/export.md): one directory level per partition
/// column (`submission_date=2014-07-15/…`, values escaped by `HivePartition`), deterministic file names, each file
/// written under a hidden temporary name (`.part-00000.parquet.tmp`, which every engine skips) and renamed when
/// complete; `_schema.json` and `_ddl.sql` (Trino and Spark DDL) at the root, `_SUCCESS` last. A re-run removes
/// `_SUCCESS` first, rewrites the partitions it selects (stale `part-*` files there are removed) and leaves other
/// partitions alone; a directory holding an export with another schema is refused.
///
/// Reads the store read-only (it is opened with `readOnly: true`; nothing is ever written to it) and streams:
/// one `SELECT … ORDER BY ping_id` per partition, one row group (at most `rowGroupRows` rows) in memory.
///
/// Columns: `document_id`, the dimensions (`submission_date` as an ISO date `yyyy-MM-dd` when the store has
/// `yyyyMMdd`), the typed `info` columns, per chosen histogram `NAME` (`list<int64>` bucket counts of the ping's
/// layout) and `NAME_sum`, `NAME_log_sum`, `NAME_log_sum_squares`, `NAME_sum_squares_lo`, `NAME_sum_squares_hi`
/// (DOUBLE; NULL when the ping lacks the statistic, `-1` in the storage format), then `payload` if asked.
public final class Exporter {
    public let storePath: String
    public let options: ExportOptions
    private let store: Store

    /// Opens the store at `storePath` read-only.
    /// - Throws: `StoreError` (no store, unsupported version, …).
    public init(storePath: String, options: ExportOptions) throws {
        self.storePath = storePath
        self.options = options
        store = try Store(path: storePath, create: false, readOnly: true)
    }

    // MARK: plan

    enum Source {
        case documentID(statementColumn: Int32)
        case dimension(statementColumn: Int32, isDate: Bool)
        case text(statementColumn: Int32)
        case integer(statementColumn: Int32)
        case buckets(histogram: Int)
        case statistic(histogram: Int, index: Int)
        case payload(statementColumn: Int32)
    }

    struct Plan {
        var columns: [ParquetColumn]
        var sources: [Source]
        var selectList: [String]
        var partitionBy: [String]
        var histogramNames: [String]
        var histogramRows: [[HistogramRows]]
        /// Owns the mappings `histogramRows` point into: kept alive as long as the plan.
        var histogramColumns: HistogramColumns?
    }

    static let statisticNames = ["sum", "log_sum", "log_sum_squares", "sum_squares_lo", "sum_squares_hi"]

    func makePlan() throws -> Plan {
        let dimensions = store.schema.fieldNames
        let textInfo = store.activeInfoColumns.filter { $0.sqlType == "TEXT" }.map(\.name)
        let partitionable = dimensions + textInfo
        let partitionBy = options.partitionBy
            ?? (dimensions.contains(DimensionSchema.submissionDateField) ? [DimensionSchema.submissionDateField] : [])
        for name in partitionBy where !partitionable.contains(name) {
            throw ExportError.unknownPartitionColumn(name: name, known: partitionable)
        }
        var plan = Plan(columns: [], sources: [], selectList: ["ping_id"], partitionBy: partitionBy, histogramNames: [], histogramRows: [], histogramColumns: nil)
        func select(_ column: String) -> Int32 {
            plan.selectList.append(Store.quote(column))
            return Int32(plan.selectList.count - 1)
        }
        plan.columns.append(ParquetColumn(name: "document_id", kind: .string, optional: false))
        plan.sources.append(.documentID(statementColumn: select("document_id")))
        for name in dimensions where !partitionBy.contains(name) {
            plan.columns.append(ParquetColumn(name: name, kind: .string, optional: false))
            plan.sources.append(.dimension(statementColumn: select(name), isDate: name == DimensionSchema.submissionDateField))
        }
        for info in store.activeInfoColumns where !partitionBy.contains(info.name) {
            let integer = info.sqlType == "INTEGER"
            plan.columns.append(ParquetColumn(name: info.name, kind: integer ? .int64 : .string, optional: true))
            plan.sources.append(integer ? .integer(statementColumn: select(info.name)) : .text(statementColumn: select(info.name)))
        }
        let names: [String]
        switch options.histograms {
        case .none: names = []
        case .all, .names:
            let columns: HistogramColumns
            do { columns = try HistogramColumns.open(store: store, repair: false) } catch {
                throw ExportError.histogramColumns(message: "\(error) (run 'telemetry reindex')")
            }
            plan.histogramColumns = columns
            if case let .names(requested) = options.histograms {
                for name in requested where columns.column(named: name).isEmpty { throw ExportError.unknownHistogram(name: name) }
                var seen = Set<String>()
                names = requested.filter { seen.insert($0).inserted }
            } else {
                names = columns.names
            }
            for name in names {
                do { plan.histogramRows.append(try columns.column(named: name).map { try $0.rows() }) } catch {
                    throw ExportError.histogramColumns(message: "\(error) (run 'telemetry reindex')")
                }
            }
        }
        plan.histogramNames = names
        for (histogramIndex, name) in names.enumerated() {
            plan.columns.append(ParquetColumn(name: name, kind: .int64List, optional: true))
            plan.sources.append(.buckets(histogram: histogramIndex))
            for (statisticIndex, statistic) in Self.statisticNames.enumerated() {
                plan.columns.append(ParquetColumn(name: name + "_" + statistic, kind: .double, optional: true))
                plan.sources.append(.statistic(histogram: histogramIndex, index: statisticIndex))
            }
        }
        if options.includePayload {
            plan.columns.append(ParquetColumn(name: "payload", kind: .string, optional: false))
            plan.sources.append(.payload(statementColumn: select("payload")))
        }
        var seen = Set<String>()
        for name in plan.columns.map(\.name) + partitionBy where !seen.insert(name.lowercased()).inserted {
            throw ExportError.columnNameClash(name: name)
        }
        return plan
    }

    // MARK: run

    /// Writes the dataset.
    /// - Throws: `ExportError.noPings` before touching the directory when nothing is selected; `ExportError`
    ///   for options the store cannot satisfy, I/O and values that cannot be written exactly; `StoreError`.
    public func run() throws -> ExportSummary {
        let plan = try makePlan()
        let condition: String
        if let whereSQL = options.whereSQL, !whereSQL.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            try PingIndex.checkSingleExpression(whereSQL, on: store.connection)
            condition = PingIndex.condition(whereSQL)
        } else {
            condition = "1"
        }
        let total = try store.connection.scalarInt("SELECT count(*) FROM pings WHERE \(condition)") ?? 0
        guard total > 0 else { throw ExportError.noPings(whereSQL: options.whereSQL) }

        // Distinct partitions, in a stable order.
        var partitions: [[String?]] = []
        if plan.partitionBy.isEmpty {
            partitions = [[]]
        } else {
            let columns = plan.partitionBy.map(Store.quote).joined(separator: ", ")
            let statement = try store.connection.prepare("SELECT DISTINCT \(columns) FROM pings WHERE \(condition) ORDER BY \(columns)")
            while try statement.step() {
                partitions.append((0..<Int32(plan.partitionBy.count)).map { statement.isNull($0) ? nil : statement.columnText($0) })
            }
        }

        let fm = FileManager.default
        let root = options.directory
        do { try fm.createDirectory(atPath: root, withIntermediateDirectories: true) } catch {
            throw ExportError.io(path: root, operation: "mkdir", errno: (error as NSError).code == 0 ? EIO : Int32((error as NSError).code))
        }
        let schemaText = schemaJSON(plan)
        let schemaPath = root + "/_schema.json"
        if let existing = try? String(contentsOfFile: schemaPath, encoding: .utf8), existing != schemaText {
            throw ExportError.schemaChanged(directory: root)
        }
        try removeIfPresent(root + "/_SUCCESS")
        try writeAtomically(schemaText, to: schemaPath)   // first, so a half-done re-run still says its schema

        let predicates = plan.partitionBy.enumerated().map { "\(Store.quote($0.element)) IS ?\($0.offset + 1)" }
        let sql = "SELECT \(plan.selectList.joined(separator: ", ")) FROM pings WHERE \(condition)"
            + predicates.map { " AND " + $0 }.joined() + " ORDER BY ping_id"
        let statement = try store.connection.prepare(sql)
        // Value tuples by directory: NULL and '' share Hive's default partition, so one directory may hold several.
        var directories: [String] = []
        var tuples: [String: [[String?]]] = [:]
        for values in partitions {
            let directory = try partitionDirectory(root: root, columns: plan.partitionBy, values: values)
            if tuples[directory] == nil { directories.append(directory) }
            tuples[directory, default: []].append(values)
        }
        var files = 0
        var pings = 0
        for directory in directories {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let written = try writePartition(plan: plan, statement: statement, tuples: tuples[directory] ?? [], directory: directory)
            files += written.files.count
            pings += written.pings
            try removeStale(in: directory, keeping: Set(written.files))
        }
        try writeAtomically(ddl(plan), to: root + "/_ddl.sql")
        try writeAtomically("", to: root + "/_SUCCESS")
        let numeric = plan.partitionBy.filter { ["appVersion", "appBuildID"].contains($0) }
        return ExportSummary(pings: pings, partitions: partitions.count, files: files,
                             columns: plan.columns.map(\.name), partitionBy: plan.partitionBy,
                             numericLookingPartitions: numeric)
    }

    private func partitionDirectory(root: String, columns: [String], values: [String?]) throws -> String {
        var path = root
        for (column, value) in zip(columns, values) {
            let shown = column == DimensionSchema.submissionDateField ? value.map(Self.isoDate) : value
            path += "/" + (try HivePartition.directory(column: column, value: shown))
        }
        return path
    }

    /// `yyyyMMdd` → `yyyy-MM-dd`; anything else unchanged.
    static func isoDate(_ value: String) -> String {
        let bytes = Array(value.utf8)
        guard bytes.count == 8, bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return value }
        return String(decoding: bytes[0..<4], as: UTF8.self) + "-" + String(decoding: bytes[4..<6], as: UTF8.self) + "-"
            + String(decoding: bytes[6..<8], as: UTF8.self)
    }

    // MARK: one partition

    private func fileName(_ index: Int) -> String {
        let number = String(index)
        return "part-" + String(repeating: "0", count: max(0, 5 - number.count)) + number
            + (options.format == .parquet ? ".parquet" : ".jsonl.gz")
    }

    /// A file being written: Parquet or gzip JSON lines, under its temporary name.
    private enum OpenFile {
        case parquet(ParquetFileWriter)
        case jsonl(GzipWriter)
    }

    /// Writes the pings of every value tuple in `tuples` (in that order, each in `ping_id` order) into `directory`.
    private func writePartition(plan: Plan, statement: Statement, tuples: [[String?]], directory: String)
        throws -> (files: [String], pings: Int) {
        var files: [String] = []
        var current: (file: OpenFile, temporary: String, final: String)?
        var rowsInFile = 0
        var pings = 0
        var hints = plan.histogramRows.map { Array(repeating: 0, count: $0.count) }
        let metadata = [("telemetry.export.schema", schemaJSON(plan))]

        func finish() throws {
            guard let open = current else { return }
            switch open.file {
            case let .parquet(writer): try writer.close()
            case let .jsonl(writer):
                do { try writer.finish(sync: true) } catch { throw ExportError.io(path: open.temporary, operation: "write", errno: EIO) }
            }
            guard rename(open.temporary, open.final) == 0 else { throw ExportError.io(path: open.final, operation: "rename", errno: errno) }
            files.append((open.final as NSString).lastPathComponent)
            current = nil
        }

        for partitionValues in tuples {
        statement.reset()
        for (index, value) in partitionValues.enumerated() { try statement.bind(value, at: Int32(index + 1)) }
        // The JSON text of the partition columns, for JSON lines.
        let partitionJSON = zip(plan.partitionBy, partitionValues).map { column, value -> String in
            let shown = column == DimensionSchema.submissionDateField ? value.map(Self.isoDate) : value
            return jsonQuoted(column) + ":" + (shown.map(jsonQuoted) ?? "null")
        }

        while try statement.step() {
            if current == nil || rowsInFile >= options.maxRowsPerFile {
                try finish()
                let name = fileName(files.count)
                let temporary = directory + "/." + name + ".tmp"
                switch options.format {
                case .parquet:
                    current = (.parquet(try ParquetFileWriter(path: temporary, columns: plan.columns, rowGroupRows: options.rowGroupRows,
                                                              metadata: metadata)), temporary, directory + "/" + name)
                case .jsonl:
                    do { current = (.jsonl(try GzipWriter(path: temporary)), temporary, directory + "/" + name) } catch {
                        throw ExportError.io(path: temporary, operation: "open", errno: errno)
                    }
                }
                rowsInFile = 0
            }
            let pingID = statement.columnInt64(0)
            let documentID = statement.columnText(1) ?? ""
            // Each histogram's row for this ping (at most one layout carries it).
            var located: [(rows: HistogramRows, row: Int)?] = []
            located.reserveCapacity(plan.histogramRows.count)
            for histogramIndex in plan.histogramRows.indices {
                var found: (rows: HistogramRows, row: Int)?
                for (layoutIndex, rows) in plan.histogramRows[histogramIndex].enumerated() {
                    if let row = rows.row(of: pingID, hint: hints[histogramIndex][layoutIndex]) {
                        hints[histogramIndex][layoutIndex] = row + 1
                        found = (rows, row)
                        break
                    }
                }
                located.append(found)
            }
            var statistics: [[Double?]] = []
            for (histogramIndex, entry) in located.enumerated() {
                guard let entry else { statistics.append([]); continue }
                var values: [Double?] = []
                var failure: ExportError?
                entry.rows.forEachStatistic(row: entry.row) { _, statistic in
                    switch statistic {
                    case let .integer(value):
                        if value == -1 { values.append(nil) }
                        else if value.magnitude > 1 << 53 {
                            failure = failure ?? .statisticNotExact(histogram: plan.histogramNames[histogramIndex], documentID: documentID, value: value)
                            values.append(nil)
                        } else { values.append(Double(value)) }
                    case let .real(value): values.append(value)
                    }
                }
                if let failure { throw failure }
                statistics.append(values)
            }

            switch current!.file {
            case let .parquet(writer):
                for (columnIndex, source) in plan.sources.enumerated() {
                    switch source {
                    case let .documentID(column): writer.set(columnIndex, string: statement.columnText(column) ?? "")
                    case let .dimension(column, isDate):
                        let value = statement.columnText(column) ?? ""
                        writer.set(columnIndex, string: isDate ? Self.isoDate(value) : value)
                    case let .text(column): writer.set(columnIndex, string: statement.isNull(column) ? nil : statement.columnText(column))
                    case let .integer(column):
                        writer.set(columnIndex, int64: statement.isNull(column) ? nil : statement.columnInt64(column))
                    case let .buckets(histogram):
                        writer.set(columnIndex, list: located[histogram].map { $0.rows.counts(row: $0.row) })
                    case let .statistic(histogram, index):
                        writer.set(columnIndex, double: statistics[histogram].isEmpty ? nil : statistics[histogram][index])
                    case let .payload(column): writer.set(columnIndex, string: statement.columnText(column) ?? "")
                    }
                }
                try writer.endRow()
            case let .jsonl(writer):
                var fields: [String] = []
                fields.reserveCapacity(plan.sources.count + partitionJSON.count)
                for (columnIndex, source) in plan.sources.enumerated() {
                    let key = jsonQuoted(plan.columns[columnIndex].name) + ":"
                    switch source {
                    case let .documentID(column): fields.append(key + jsonQuoted(statement.columnText(column) ?? ""))
                    case let .dimension(column, isDate):
                        let value = statement.columnText(column) ?? ""
                        fields.append(key + jsonQuoted(isDate ? Self.isoDate(value) : value))
                    case let .text(column):
                        fields.append(key + (statement.isNull(column) ? "null" : jsonQuoted(statement.columnText(column) ?? "")))
                    case let .integer(column):
                        fields.append(key + (statement.isNull(column) ? "null" : String(statement.columnInt64(column))))
                    case let .buckets(histogram):
                        let text = located[histogram].map { "[" + $0.rows.counts(row: $0.row).map(String.init).joined(separator: ",") + "]" }
                        fields.append(key + (text ?? "null"))
                    case let .statistic(histogram, index):
                        let value = statistics[histogram].isEmpty ? nil : statistics[histogram][index]
                        fields.append(key + (value.map(Self.jsonNumber) ?? "null"))
                    case let .payload(column): fields.append(key + (statement.columnText(column) ?? "null"))   // JSON as imported
                    }
                }
                fields.insert(contentsOf: partitionJSON, at: min(fields.count, 1))
                do { try writer.write("{" + fields.joined(separator: ",") + "}\n") } catch {
                    throw ExportError.io(path: current!.temporary, operation: "write", errno: EIO)
                }
            }
            rowsInFile += 1
            pings += 1
        }
        }
        try finish()
        withExtendedLifetime(plan.histogramColumns) {}
        return (files, pings)
    }

    /// A double as JSON: integral values without a fraction (`12`, not `12.0`), others in Swift's shortest form.
    static func jsonNumber(_ value: Double) -> String {
        if value.rounded() == value && value.magnitude < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    // MARK: files

    private func removeIfPresent(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw ExportError.io(path: path, operation: "unlink", errno: errno) }
    }

    /// Removes `part-*` data files not written by this run and temporary files of killed runs.
    private func removeStale(in directory: String, keeping written: Set<String>) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names {
            let isData = name.hasPrefix("part-") && (name.hasSuffix(".parquet") || name.hasSuffix(".jsonl.gz"))
            let isTemporary = name.hasPrefix(".part-") && name.hasSuffix(".tmp")
            if (isData && !written.contains(name)) || isTemporary { try removeIfPresent(directory + "/" + name) }
        }
    }

    private func writeAtomically(_ text: String, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = directory + "/." + (path as NSString).lastPathComponent + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else {
            throw ExportError.io(path: temporary, operation: "create", errno: errno == 0 ? EIO : errno)
        }
        guard rename(temporary, path) == 0 else { throw ExportError.io(path: path, operation: "rename", errno: errno) }
    }

    // MARK: schema and DDL

    private static func typeName(_ column: ParquetColumn) -> String {
        switch column.kind {
        case .string: "string"
        case .int64: "int64"
        case .double: "double"
        case .int64List: "list<int64>"
        }
    }

    /// `_schema.json`: the dataset's columns in file order and its partition columns (always strings), one
    /// field per line; independent of the selection, so a re-run with another `--where` compares equal.
    func schemaJSON(_ plan: Plan) -> String {
        var lines: [String] = []
        lines.append("{")
        lines.append("  \"format\": \"telemetry-export\", \"version\": 1,")
        lines.append("  \"file_format\": \(jsonQuoted(options.format.rawValue)),")
        lines.append("  \"partition_escaping\": \"hive\",")
        let partitions = plan.partitionBy.map { "    {\"name\": \(jsonQuoted($0)), \"type\": \"string\"}" }
        lines.append("  \"partition_by\": [" + (partitions.isEmpty ? "]," : "\n" + partitions.joined(separator: ",\n") + "\n  ],"))
        let columns = plan.columns.map {
            "    {\"name\": \(jsonQuoted($0.name)), \"type\": \(jsonQuoted(Self.typeName($0))), \"nullable\": \($0.optional)}"
        }
        lines.append("  \"columns\": [\n" + columns.joined(separator: ",\n") + "\n  ]")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `_ddl.sql`: `CREATE TABLE` for Trino's Hive connector (partition columns last, as Trino requires) and for
    /// Spark SQL, with the dataset's absolute path as location (edit it for `s3://`).
    func ddl(_ plan: Plan) -> String {
        let location = (options.directory as NSString).standardizingPath
        let absolute = location.hasPrefix("/") ? location : FileManager.default.currentDirectoryPath + "/" + location
        func trino(_ column: ParquetColumn) -> String {
            switch column.kind {
            case .string: "varchar"
            case .int64: "bigint"
            case .double: "double"
            case .int64List: "array(bigint)"
            }
        }
        func spark(_ column: ParquetColumn) -> String {
            switch column.kind {
            case .string: "STRING"
            case .int64: "BIGINT"
            case .double: "DOUBLE"
            case .int64List: "ARRAY<BIGINT>"
            }
        }
        let trinoColumns = plan.columns.map { "  \"\($0.name)\" \(trino($0))" } + plan.partitionBy.map { "  \"\($0)\" varchar" }
        let sparkColumns = plan.columns.map { "  `\($0.name)` \(spark($0))" } + plan.partitionBy.map { "  `\($0)` STRING" }
        // Trino folds identifiers to lower case: partitioned_by must name them so, and partition discovery must
        // match the directories (`appUpdateChannel=…`) case-insensitively (sync_partition_metadata's 4th argument).
        let partitionList = plan.partitionBy.map { "'\($0.lowercased())'" }.joined(separator: ", ")
        var text = "-- Generated by telemetry export (docs/export.md). Partition columns are strings: never let an engine infer them.\n\n"
        if options.format == .parquet {
            text += "-- Trino (Hive connector); then: CALL system.sync_partition_metadata('telemetry', 'pings', 'FULL', false);\n"
            text += "CREATE TABLE hive.telemetry.pings (\n" + trinoColumns.joined(separator: ",\n") + "\n)\nWITH (\n"
            text += "  format = 'PARQUET',\n  external_location = 'file://\(absolute)'"
            text += plan.partitionBy.isEmpty ? "\n);\n\n" : ",\n  partitioned_by = ARRAY[\(partitionList)]\n);\n\n"
            text += "-- Spark SQL; then: MSCK REPAIR TABLE pings;\n"
            text += "CREATE TABLE pings (\n" + sparkColumns.joined(separator: ",\n") + "\n)\nUSING parquet\n"
            if !plan.partitionBy.isEmpty { text += "PARTITIONED BY (" + plan.partitionBy.map { "`\($0)`" }.joined(separator: ", ") + ")\n" }
            text += "LOCATION 'file://\(absolute)';\n"
        } else {
            text += "-- JSON lines (gzip): each object also holds the partition columns.\n"
            text += "-- DuckDB: SELECT * FROM read_json('\(absolute)/**/*.jsonl.gz', hive_partitioning = false);\n"
        }
        return text
    }
}
