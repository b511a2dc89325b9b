import Foundation
import Testing
import TelemetryTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Hostile inputs at the edges (issue 18 items 2–4), through the built `telemetry`: histogram names that cannot be
/// file names, FIFOs/sockets/dangling symlinks in an input tree, empty inputs. Every run is bounded by
/// `timeout(1)`: a hang fails the test (exit 124) instead of stalling the suite.
struct HostileInputTests {
    static let bound = "30"

    static func run(_ arguments: [String]) throws -> ProcessResult {
        try runProcess("/usr/bin/timeout", ["-s", "KILL", bound, CLI.executable] + arguments, environment: ["TELEMETRY_STORE": ""])
    }

    /// One storage-format line of a saved-session ping with `histograms`.
    static func line(_ id: String, histograms: String) -> String {
        #"\#(id)\#t{"ver":2,"info":{"reason":"saved-session","OS":"Linux","appUpdateChannel":"nightly"},"histograms":{\#(histograms)}}"# + "\n"
    }

    static let layout = "saved_session/Firefox/nightly/28.0a1/20131029030201.20131029.v2.log"

    /// A raw log (`spec/raw-log.md` §1.2, v2 framing; the path stored without `/submit/telemetry/`) of one submission of `body` for document `id`.
    static func rawLog(id: String, body: String) -> [UInt8] {
        let path = Array("\(id)/saved-session/Firefox/28.0a1/nightly/20131029030201".utf8)
        let data = Array(body.utf8)
        var bytes: [UInt8] = [0x1E, 0]
        withUnsafeBytes(of: UInt16(path.count).littleEndian) { bytes += $0 }
        withUnsafeBytes(of: UInt32(data.count).littleEndian) { bytes += $0 }
        withUnsafeBytes(of: UInt64(1_383_000_000_000).littleEndian) { bytes += $0 }
        return bytes + path + data
    }

    // MARK: item 2: histogram names

    @Test func histogramNamesThatCannotBeFileNames() throws {
        let directory = TemporaryDirectory("e2e-names")
        let long = String(repeating: "X", count: 300)
        let lines = Self.line("a", histograms: #""\#(long)":[1,2,3,-1,-1,-1,-1],"GOOD":[1,0,1,-1,-1,-1,-1]"#)
            + Self.line("b", histograms: #""a/b/../c":[4,0,4,-1,-1,-1,-1],"GOOD":[1,0,1,-1,-1,-1,-1]"#)
            + Self.line("c", histograms: #""GOOD":[1,0,1,-1,-1,-1,-1]"#)
        try directory.write("storage/" + Self.layout, text: lines)
        let store = directory.file("names.db")
        let imported = try Self.run(["import", directory.file("storage"), "--store", store])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("Imported 3 pings"), "\(imported.stdout)")
        let sql = "SELECT histogram_sum(ping_id, '\(long)'), histogram_sum(ping_id, 'a/b/../c'), histogram_sum(ping_id, 'GOOD') FROM pings"
        let expected = "[1,2,3,-1,-1,-1,-1]\t[4,0,4,-1,-1,-1,-1]\t[3,0,3,-1,-1,-1,-1]\n"
        let query = try Self.run(["query", sql, "--store", store, "--format", "tsv", "--no-header"])
        #expect(query.stdout == expected, "\(query.stderr)")
        let job = try Self.run(["job", "histogram-by-channel", "--histogram", long, "--store", store])
        #expect(job.status == 0, "\(job.stderr)")
        #expect(job.stdout.contains("nightly"), "\(job.stdout)")
        // --no-histogram-columns, then reindex (it failed store-wide), then the same answers.
        let second = directory.file("second.db")
        #expect(try Self.run(["import", directory.file("storage"), "--store", second, "--no-histogram-columns"]).status == 0)
        let reindex = try Self.run(["reindex", "--store", second])
        #expect(reindex.status == 0, "\(reindex.stderr)")
        #expect(try Self.run(["query", sql, "--store", second, "--format", "tsv", "--no-header"]).stdout == expected)
    }

    /// A ping with more histogram names than the process may open descriptors still imports (the column writer
    /// keeps no file open per column).
    @Test func moreHistogramNamesThanDescriptors() throws {
        let directory = TemporaryDirectory("e2e-many-names")
        let names = (0..<600).map { "\"N\($0)\":[1,0,1,-1,-1,-1,-1]" }.joined(separator: ",")
        try directory.write("storage/" + Self.layout, text: Self.line("many", histograms: names))
        let store = directory.file("many.db")
        let result = try runProcess("/bin/sh", ["-c", "ulimit -n 256 && exec /usr/bin/timeout -s KILL \(Self.bound) \"$0\" \"$@\"",
                                                CLI.executable, "import", directory.file("storage"), "--store", store],
                                    environment: ["TELEMETRY_STORE": ""])
        #expect(result.status == 0, "\(result.stderr)")
        let count = try Self.run(["query", "SELECT histogram_count(ping_id, 'N599') FROM pings", "--store", store, "--format", "csv", "--no-header"])
        #expect(count.stdout == "1\n", "\(count.stderr)")
    }

    // MARK: item 3: FIFOs, sockets, dangling symlinks

    /// A tree holding a good file and, beside it, a FIFO, a socket, a dangling symlink and a symlink out of the tree.
    static func treeWithSpecialFiles(_ directory: TemporaryDirectory, good: (String, [UInt8])) throws -> String {
        let parent = directory.path + "/tree"
        try directory.write("tree/" + good.0, good.1)
        let folder = ((parent + "/" + good.0) as NSString).deletingLastPathComponent
        #expect(mkfifo(folder + "/fifo.v2.log", 0o644) == 0)
        let socketPath = folder + "/socket.v2.log"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socketPath.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0, "bind \(socketPath): errno \(errno)")
        close(fd)
        #expect(symlink(folder + "/gone.v2.log", folder + "/dangling.v2.log") == 0)
        let outside = try directory.write("outside.v2.log", Array("z\t{}\n".utf8))
        #expect(symlink(outside, folder + "/escape.v2.log") == 0)
        return parent
    }

    @Test func importSkipsWhatIsNotARegularFile() throws {
        let directory = TemporaryDirectory("e2e-fifo")
        let root = try Self.treeWithSpecialFiles(directory, good: (Self.layout, Array(Self.line("good", histograms: "").utf8)))
        let store = directory.file("fifo.db")
        let result = try Self.run(["import", root, "--store", store])
        #expect(result.status == 1, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("Imported 1 pings"), "\(result.stdout)")
        for (name, reason) in [("fifo", "a FIFO"), ("socket", "a socket"), ("dangling", "a dangling symlink"), ("escape", "a symlink to a path outside")] {
            #expect(result.stdout.contains("\(name).v2.log: skipped: \(reason)"), "\(name): \(result.stdout)")
        }
        // A FIFO named directly is skipped too.
        let fifo = try #require(FileManager.default.enumerator(atPath: root)?.allObjects.compactMap { $0 as? String }.first { $0.hasSuffix("fifo.v2.log") })
        let direct = try Self.run(["import", root + "/" + fifo, "--store", store])
        #expect(direct.status == 1 && direct.stdout.contains("skipped: a FIFO"), "\(direct.stdout) \(direct.stderr)")
    }

    @Test func convertSkipsWhatIsNotARegularFile() throws {
        let directory = TemporaryDirectory("e2e-fifo-convert")
        let body = #"{"ver":1,"info":{"reason":"saved-session","appName":"Firefox","appVersion":"28.0a1","appUpdateChannel":"nightly","appBuildID":"20131029030201"}}"#
        let root = try Self.treeWithSpecialFiles(directory, good: ("raw/good.v2.log", Self.rawLog(id: "0ab8723b-6fb3-455b-b34b-04d97482fda2", body: body)))
        let out = directory.file("out/x")
        let result = try Self.run(["convert", root, "--out", (out as NSString).deletingLastPathComponent])
        #expect(result.status == 1, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("1 converted"), "\(result.stdout)")
        for (name, reason) in [("fifo", "a FIFO"), ("socket", "a socket"), ("dangling", "a dangling symlink"), ("escape", "a symlink to a path outside")] {
            #expect(result.stdout.contains("\(name).v2.log: skipped: \(reason)"), "\(name): \(result.stdout)")
        }
    }

    // MARK: item 4: empty inputs

    @Test func emptyInputsAreNotedNotErrors() throws {
        let directory = TemporaryDirectory("e2e-empty")
        let store = directory.file("empty.db")
        let emptyRaw = try directory.write("in/empty-raw.v2.log", [])
        let emptyStorage = try directory.write("storage/" + Self.layout, [])
        let emptyXZ = directory.file("in/nothing.xz")
        #expect(try runProcess("/bin/sh", ["-c", "printf '' | xz -c > '\(emptyXZ)'"]).status == 0)
        for path in [emptyRaw, emptyStorage, emptyXZ] {
            let result = try Self.run(["import", path, "--store", store])
            #expect(result.status == 0, "\(path): \(result.stdout) \(result.stderr)")
            #expect(result.stdout.contains("\(path): empty file"), "\(result.stdout)")
            #expect(!result.stdout.contains("path_error"), "\(result.stdout)")
        }
        let emptyDirectory = directory.file("nothing/x")
        let folder = (emptyDirectory as NSString).deletingLastPathComponent
        let result = try Self.run(["import", folder, "--store", store])
        #expect(result.status == 1, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("\(folder): no file to import there"), "\(result.stdout)")
    }
}
