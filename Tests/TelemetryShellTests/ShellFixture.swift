import Foundation
import Testing
import TelemetryShell
import TelemetryStore
import TelemetryTestSupport

/// A small store built from a few storage lines, plus a second tree to import, a filter file and a private $HOME.
///
/// `storage/` (imported into `store.db` by `TelemetryStore.Importer` when the fixture is made):
///
/// | file | pings |
/// |---|---|
/// | `saved_session/Firefox/nightly/28.0a1/20131029030201.20131029…` | doc-1 WINNT, doc-2 Linux |
/// | `saved_session/Firefox/release/25.0/20131025151332.20131030…` | doc-3 WINNT, doc-4 Darwin |
/// | `idle_daily/Firefox/beta/26.0/20131028111111.20131030…` | doc-5 WINNT, and one line without a tab |
///
/// `more/` (not imported): doc-6 (saved_session beta 20131031, Darwin), doc-7 (idle_daily release 20131031).
/// `filter.json` allows `saved-session` pings submitted on 20131030 or later.
final class ShellFixture {
    let directory = TemporaryDirectory("shell-test")
    var storage: String { directory.path + "/storage" }
    var more: String { directory.path + "/more" }
    var store: String { directory.path + "/store.db" }
    var filter: String { directory.path + "/filter.json" }
    /// `$HOME` for the shell under test (history file, `~/`).
    var home: String { directory.path + "/home" }

    static let payloads = [
        #"{"ver":2,"info":{"reason":"saved-session","OS":"WINNT","arch":"x86","memsize":4096,"cpucount":4},"histograms":{"GC_MS":[0,2,1,0,3,-1,-1],"TABS_OPEN":[1,0,0,1,-1,-1]},"keyedHistograms":{"ADDON_SHIM":{"a@b":[0,1,0,1,-1,-1]}}}"#,
        #"{"ver":2,"info":{"reason":"saved-session","OS":"Linux","arch":"x86-64","memsize":8192,"cpucount":8},"histograms":{"GC_MS":[1,0,0,0,0,-1,-1]}}"#,
        #"{"ver":2,"info":{"reason":"saved-session","OS":"WINNT","arch":"x86","memsize":2048,"cpucount":2},"histograms":{"GC_MS":[0,0,5,0,10,-1,-1],"PAGE_LOAD_MS":[3,1,-1,-1]}}"#,
        #"{"ver":2,"info":{"reason":"saved-session","OS":"Darwin","arch":"x86-64","memsize":16384,"cpucount":8},"histograms":{"TABS_OPEN":[0,2,0,2,-1,-1]}}"#,
        #"{"ver":2,"info":{"reason":"idle-daily","OS":"WINNT","arch":"x86","memsize":1024,"cpucount":1},"histograms":{}}"#,
    ]

    /// Writes the trees and the filter, and imports `storage/` into `store.db`.
    init() throws {
        let p = Self.payloads
        try directory.write("storage/saved_session/Firefox/nightly/28.0a1/20131029030201.20131029.v2.log.00000000000000000000000000000001",
                            text: "doc-1\t\(p[0])\ndoc-2\t\(p[1])\n")
        try directory.write("storage/saved_session/Firefox/release/25.0/20131025151332.20131030.v2.log.00000000000000000000000000000002",
                            text: "doc-3\t\(p[2])\ndoc-4\t\(p[3])\n")
        try directory.write("storage/idle_daily/Firefox/beta/26.0/20131028111111.20131030.v2.log.00000000000000000000000000000003",
                            text: "doc-5\t\(p[4])\nthis line has no tab\n")
        try directory.write("more/saved_session/Firefox/beta/26.0/20131028111111.20131031.v2.log.00000000000000000000000000000004",
                            text: "doc-6\t\(p[3])\n")
        try directory.write("more/idle_daily/Firefox/release/25.0/20131025151332.20131031.v2.log.00000000000000000000000000000005",
                            text: "doc-7\t\(p[4])\n")
        try directory.write("filter.json", text: """
            {"version": 1, "dimensions": [
              {"field_name": "reason", "allowed_values": ["saved-session"]},
              {"field_name": "appName", "allowed_values": "*"},
              {"field_name": "appUpdateChannel", "allowed_values": "*"},
              {"field_name": "appVersion", "allowed_values": "*"},
              {"field_name": "appBuildID", "allowed_values": "*"},
              {"field_name": "submission_date", "allowed_values": {"min": "20131030"}}
            ]}
            """)
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let summary = try Importer(store: try Store(path: store, create: true), options: ImportOptions(jobs: 1)).run(roots: [storage])
        #expect(summary.pings == 5 && summary.badLineCount == 1, "fixture import: \(summary)")
    }

    /// Runs `telemetry ARGUMENTS` with `script` on standard input (a regular file, so not a terminal) in the
    /// fixture's directory, with `HOME` pointing into it and `TELEMETRY_STORE` blank.
    func telemetry(_ arguments: [String], stdin script: String = "") throws -> ProcessResult {
        try runProcess(Fixtures.telemetryExecutable, arguments, stdin: script,
                       environment: ["HOME": home, "TELEMETRY_STORE": "", "COLUMNS": "80"], currentDirectory: directory.path)
    }

    /// Runs `script` through `telemetry --store store.db` (the REPL in script mode).
    func script(_ script: String, store: String? = nil) throws -> ProcessResult {
        try telemetry(["--store", store ?? self.store], stdin: script)
    }

    /// The fixture directory's path replaced by `$DIR`, for exact comparisons.
    func masked(_ text: String) -> String {
        text.replacingOccurrences(of: directory.path, with: "$DIR")
    }
}

/// Compares text exactly; on a difference records the first differing line of each.
func expectText(_ actual: String, _ expected: String, _ label: String = "output", sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual != expected else { return }
    let a = actual.components(separatedBy: "\n"), e = expected.components(separatedBy: "\n")
    var detail = "(same lines; whitespace at the end differs)"
    for index in 0..<max(a.count, e.count) {
        let left = index < e.count ? e[index] : "<end>"
        let right = index < a.count ? a[index] : "<end>"
        if left != right {
            detail = "line \(index + 1):\n  expected: \(left)\n  actual:   \(right)"
            break
        }
    }
    Issue.record("\(label) differs. \(detail)\n--- actual ---\n\(actual)--- end ---", sourceLocation: sourceLocation)
}
