import Foundation
import TelemetryCompression
import TelemetryCore
import TelemetryStore
import TelemetryTestSupport

/// A temporary storage-layout tree plus a store to import it into.
final class LayoutFixture {
    let directory = TemporaryDirectory("store-test")
    var root: String { directory.path + "/storage" }
    var storePath: String { directory.path + "/test.db" }

    /// Standard layout path for the seed schema.
    static func layoutPath(reason: String = "saved_session", app: String = "Firefox", channel: String = "nightly",
                           version: String = "28.0a1", build: String = "20131029030201", date: String = "20131029",
                           id: String = "0ab8723b6fb3455bb34b04d97482fda2", suffix: String = "xz") -> String {
        "\(reason)/\(app)/\(channel)/\(version)/\(build).\(date).v2.log.\(id).\(suffix)"
    }

    /// Writes `bytes` xz-compressed (or plain when `compress` is false) at `relative` under the root.
    @discardableResult
    func write(_ relative: String, bytes: [UInt8], compress: Bool = true) throws -> String {
        let path = directory.file("storage/" + relative)
        if compress {
            let writer = try XZWriter(path: path)
            try bytes.withUnsafeBytes { try writer.write($0) }
            try writer.finish()
        } else {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        return path
    }

    @discardableResult
    func write(_ relative: String, text: String, compress: Bool = true) throws -> String {
        try write(relative, bytes: Array(text.utf8), compress: compress)
    }

    func openStore(schema: DimensionSchema? = nil) throws -> Store {
        try Store(path: storePath, create: true, schema: schema)
    }

    func importAll(options: ImportOptions = ImportOptions(jobs: 2), roots: [String]? = nil) throws -> ImportSummary {
        let store = try openStore()
        return try Importer(store: store, options: options).run(roots: roots ?? [root])
    }
}

extension Store {
    /// Rows of a query as text cells ("NULL" for null), for compact assertions.
    func rows(_ sql: String) throws -> [[String]] {
        try query(sql).last?.rows.map { row in
            row.map { value -> String in
                switch value {
                case .null: "NULL"
                case let .integer(i): String(i)
                case let .real(d): String(d)
                case let .text(s): s
                case let .blob(b): "blob(\(b.count))"
                }
            }
        } ?? []
    }

    func int(_ sql: String) throws -> Int64? { try connection.scalarInt(sql) }
}

/// A minimal storage line.
func line(_ id: String, _ json: String) -> String { "\(id)\t\(json)\n" }
