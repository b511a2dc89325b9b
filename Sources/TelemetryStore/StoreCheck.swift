import Foundation

/// `telemetry check` and the REPL's `.check` (docs/store.md "Checking a store"): verifies a store and its
/// derived files without changing anything, and says which command repairs what it finds.
public enum StoreCheck {
    /// One thing found: what was checked, whether it is damaged, what was seen, and the repairing command.
    public struct Finding: Sendable, Equatable {
        /// `sqlite`, `source_files`, `columns`, `ping_index`.
        public var area: String
        public var isDamage: Bool
        public var message: String
        /// The command that repairs it (nil when nothing needs repairing).
        public var repair: String?
    }

    /// The findings of one check, in the order checked.
    public struct Report: Sendable, Equatable {
        public var storePath: String
        public var findings: [Finding] = []
        /// True when anything is damaged: the command then exits with status 1.
        public var hasDamage: Bool { findings.contains { $0.isDamage } }

        /// One line per finding (`ok` or `DAMAGED`), then the repair commands.
        public var text: String {
            var out = ""
            for finding in findings {
                out += "\(finding.isDamage ? "DAMAGED" : "ok     ") \(finding.area): \(finding.message)\n"
            }
            let repairs = findings.compactMap(\.repair)
            if repairs.isEmpty {
                out += "\(storePath): no damage found.\n"
            } else {
                out += "To repair:\n" + repairs.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }.map { "  \($0)\n" }.joined()
            }
            return out
        }
    }

    /// Checks `store` (opened read-only or not; nothing is written).
    /// - Parameter full: SQLite's `integrity_check` (every index entry against its row) instead of `quick_check`.
    /// - Throws: `StoreError` when the store cannot be read at all.
    public static func run(store: Store, full: Bool = false) throws -> Report {
        var report = Report(storePath: store.path)
        let quoted = "'" + store.path.replacingOccurrences(of: "'", with: "'\\''") + "'"

        // 1. SQLite's own structure: pages, b-trees, and (full) every index against its table.
        let pragma = full ? "integrity_check" : "quick_check"
        var problems: [String] = []
        let statement = try store.connection.prepare("PRAGMA \(pragma)(100)")
        while try statement.step() { if let line = statement.columnText(0), line != "ok" { problems.append(line) } }
        if problems.isEmpty {
            report.findings.append(Finding(area: "sqlite", isDamage: false, message: "\(pragma): ok", repair: nil))
        } else {
            let indexOnly = problems.allSatisfy { $0.contains("index") }
            report.findings.append(Finding(
                area: "sqlite", isDamage: true,
                message: "\(pragma): \(problems.count) problem(s), first: \(problems[0])",
                repair: indexOnly ? "telemetry query --store \(quoted) \"REINDEX\"   (rebuilds the damaged indexes from the tables)"
                                  : "the table pages are damaged: import the source files into a new store (telemetry import ROOT --store NEW.db)"))
        }
        if !full && problems.isEmpty {
            report.findings.append(Finding(area: "sqlite", isDamage: false,
                                           message: "index entries not compared with their rows (--full does)", repair: nil))
        }

        // 2. Every imported file's rows are present, and no file is left half imported.
        let files = try store.connection.prepare("""
            SELECT f.file_id, f.path, f.base, f.status, f.record_count, (SELECT count(*) FROM main.pings p WHERE p.file_id = f.file_id)
            FROM main.source_files f ORDER BY f.path
            """)
        var fileCount = 0, missing: [(path: String, base: String, fileID: Int64, detail: String)] = []
        while try files.step() {
            fileCount += 1
            let status = files.columnText(3) ?? ""
            let expected = files.columnInt64(4), present = files.columnInt64(5)
            if status == "importing" || expected != present {
                missing.append((files.columnText(1) ?? "", files.columnText(2) ?? "", files.columnInt64(0),
                                status == "importing" ? "left 'importing'" : "\(present) of \(expected) rows"))
            }
        }
        if missing.isEmpty {
            report.findings.append(Finding(area: "source_files", isDamage: false,
                                           message: "\(fileCount) imported file(s), every one's rows present", repair: nil))
        }
        for file in missing.prefix(20) {
            report.findings.append(Finding(
                area: "source_files", isDamage: true, message: "\(file.path): \(file.detail)",
                repair: "telemetry query --store \(quoted) \"DELETE FROM pings WHERE file_id = \(file.fileID); DELETE FROM source_files WHERE file_id = \(file.fileID)\" && telemetry import '\(file.base)' --store \(quoted)"))
        }

        // 3. Histogram column files: committed lengths and headers, then each column's CRC-64 and row structure.
        do {
            if try ColumnMaintenance.check(store: store, repair: false) == nil {
                report.findings.append(Finding(area: "columns", isDamage: true,
                                               message: "column files missing, short or out of date",
                                               repair: "telemetry reindex --store \(quoted)"))
            } else {
                let columns = try HistogramColumns.open(store: store, repair: false)
                var count = 0, damaged: [String] = []
                for name in columns.names {
                    for column in columns.column(named: name) {
                        count += 1
                        do { _ = try column.rows() } catch { damaged.append("\(error)") }
                    }
                }
                if damaged.isEmpty {
                    report.findings.append(Finding(area: "columns", isDamage: false,
                                                   message: "\(count) column file(s): lengths and CRC-64 match the committed state", repair: nil))
                }
                for message in damaged.prefix(20) {
                    report.findings.append(Finding(area: "columns", isDamage: true, message: message,
                                                   repair: "telemetry reindex --store \(quoted)"))
                }
            }
        } catch {
            report.findings.append(Finding(area: "columns", isDamage: true, message: "\(error)", repair: "telemetry reindex --store \(quoted)"))
        }

        // 4. The ping index: absent or out of date is normal (rebuilt when a job needs it); unreadable is damage.
        let indexPath = PingIndex.filePath(storePath: store.path)
        if !FileManager.default.fileExists(atPath: indexPath) {
            report.findings.append(Finding(area: "ping_index", isDamage: false, message: "absent (built by the next job)", repair: nil))
        } else if let index = PingIndex.load(path: indexPath) {
            let current = index.generation == (try store.pingGeneration())
            report.findings.append(Finding(area: "ping_index", isDamage: false,
                                           message: current ? "\(index.pingIDs.count) pings, current"
                                                            : "out of date (rebuilt by the next job)", repair: nil))
        } else {
            report.findings.append(Finding(area: "ping_index", isDamage: true, message: "\(indexPath): damaged (checksum or format)",
                                           repair: "telemetry reindex --store \(quoted)"))
        }
        return report
    }
}
