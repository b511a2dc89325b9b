import Foundation
import TelemetryCore
import TelemetryJobs
import TelemetryStore
import TelemetryTestSupport

/// A temporary store holding one imported storage tree.
final class ImportedStore: @unchecked Sendable {   // immutable after init
    let directory = TemporaryDirectory("jobs-test")
    let path: String

    init(root: String, histogramColumns: Bool = true) throws {
        path = directory.path + "/jobs.db"
        let store = try Store(path: path, create: true)
        var options = ImportOptions(jobs: 2)
        options.histogramColumns = histogramColumns
        _ = try Importer(store: store, options: options).run(roots: [root])
    }

    static func sample() throws -> ImportedStore { try ImportedStore(root: Fixtures.repoPath("datasets/sample/storage")) }
    static func real() throws -> ImportedStore { try ImportedStore(root: Fixtures.sharedPath("datasets/real/storage")) }

    /// Runs a `queries/` script and returns its (key, value) rows as text.
    func twin(_ script: String, parameters: [String: SQLValue] = [:]) throws -> [OutputRecord] {
        let sql = try String(contentsOfFile: Fixtures.repoPath("queries/" + script), encoding: .utf8)
        let store = try Store(path: path, create: false, readOnly: true)
        var records: [OutputRecord] = []
        try store.forEachStatement(sql, parameters: parameters) { statement in
            while try statement.step() {
                records.append(OutputRecord(key: Self.text(statement.value(0)), value: Self.text(statement.value(1))))
            }
        }
        return records
    }

    /// Single-column integer query.
    func int(_ sql: String) throws -> Int64 {
        try Store(path: path, create: false, readOnly: true).connection.scalarInt(sql) ?? -1
    }

    static func text(_ value: SQLValue) -> String {
        switch value {
        case .null: "NULL"
        case let .integer(i): String(i)
        case let .real(d): String(d)
        case let .text(t): t
        case let .blob(b): String(decoding: b, as: UTF8.self)
        }
    }
}

/// EXPECTED.json of the committed sample.
enum SampleExpectations {
    static func load() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.repoPath("datasets/sample/EXPECTED.json")))
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }
    static func counts(_ expected: [String: Any], _ key: String) -> [String: Int] {
        ((expected[key] as? [String: Any]) ?? [:]).mapValues { ($0 as? NSNumber)?.intValue ?? -1 }
    }
}
