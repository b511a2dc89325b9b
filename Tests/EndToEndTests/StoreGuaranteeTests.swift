import Foundation
import Testing
import TelemetryStore
import TelemetryTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The store's guarantees (docs/store.md "Guarantees"), each checked against a clean run: one writer at a time,
/// atomic creation, kills, full disks, read-only opening, bounded temporary storage. Issue 12's failures 1, 6, 8
/// and 9 and issue 18's item 5 each have a test here. Small and bounded: one generated tree of 300 pings.
@Suite(.serialized)
struct StoreGuaranteeTests {
    /// A generated storage tree (300 pings in 140 files, gen_pings.py seed 3), made once per process.
    static let treeDirectory = TemporaryDirectory("guarantees-tree")
    static let tree: Result<String, Error> = Result {
        let out = treeDirectory.file("gen")
        let result = try runProcess("/usr/bin/env", ["python3", Fixtures.sharedPath("tools/gen_pings.py"), "--pings", "300",
                                                     "--format", "storage", "--seed", "3", "--out", out])
        guard result.status == 0 else { throw StoreError.inputNotFound(path: "gen_pings.py: \(result.stderr)") }
        return out + "/storage"
    }

    /// Every regular file under `root`, sorted.
    static func files(_ root: String) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: root)
        var files: [String] = []
        while let relative = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(root + "/" + relative)
            }
        }
        return files.sorted()
    }

    /// What a store holds, as text: per file (relative path) its status and rows, the ping count, distinct
    /// documents, and GC_MS from the histogram columns (histogram_count and histogram_sum) — equal texts mean
    /// equal stores for every question the tests ask.
    static func signature(_ store: String, root: String) throws -> String {
        let sql = """
            SELECT substr(f.path, length(f.base) + 2), f.status, f.record_count, (SELECT count(*) FROM pings p WHERE p.file_id = f.file_id)
              FROM source_files f WHERE f.status <> 'path_error' ORDER BY 1;
            SELECT count(*), count(DISTINCT document_id), histogram_count(ping_id, 'GC_MS'), histogram_sum(ping_id, 'GC_MS') FROM pings;
            """
        let result = try CLI.run(["query", sql, "--store", store, "--format", "tsv", "--no-header"])
        #expect(result.status == 0, "query failed: \(result.stderr)")
        return result.stdout
    }

    /// The signature of one clean import of the tree (computed once).
    static let clean: Result<String, Error> = Result {
        let root = try tree.get()
        let directory = TemporaryDirectory("guarantees-clean")
        let store = directory.file("clean.db")
        let result = try CLI.run(["import", root, "--store", store, "--jobs", "2"])
        guard result.status == 0 else { throw StoreError.inputNotFound(path: "clean import: \(result.stderr)") }
        return try signature(store, root: root)
    }

    // MARK: One writer at a time (failures 1 and 8)

    @Test func twoImportsOfDisjointHalvesAtOnceEqualOneImport() throws {
        let root = try Self.tree.get()
        let clean = try Self.clean.get()
        #expect(clean.contains("\t"), "clean signature is empty")
        let all = Self.files(root)
        let directory = TemporaryDirectory("guarantees-halves")
        let store = directory.file("halves.db")
        let first = try ChildProcess(CLI.executable, ["import"] + all.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
                                     + ["--store", store, "--jobs", "1"], environment: ["TELEMETRY_STORE": ""],
                                     stderr: directory.file("first.err"))
        let second = try ChildProcess(CLI.executable, ["import"] + all.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
                                      + ["--store", store, "--jobs", "1"], environment: ["TELEMETRY_STORE": ""],
                                      stderr: directory.file("second.err"))
        #expect(first.wait() == 0, "\((try? String(contentsOfFile: directory.file("first.err"), encoding: .utf8)) ?? "")")
        #expect(second.wait() == 0, "\((try? String(contentsOfFile: directory.file("second.err"), encoding: .utf8)) ?? "")")
        #expect(try Self.signature(store, root: root) == clean)
    }

    @Test func theSameTreeImportedTwiceAtOnceIsImportedOnce() throws {
        let root = try Self.tree.get()
        let clean = try Self.clean.get()
        let directory = TemporaryDirectory("guarantees-twice")
        let store = directory.file("twice.db")
        let processes = try (0..<2).map { index in
            try ChildProcess(CLI.executable, ["import", root, "--store", store, "--jobs", "1"], environment: ["TELEMETRY_STORE": ""],
                             stderr: directory.file("\(index).err"))
        }
        for process in processes { #expect(process.wait() == 0) }
        #expect(try Self.signature(store, root: root) == clean)
        #expect(try CLI.scalar("SELECT count(*) FROM source_files WHERE status = 'importing'", store: store) == 0)
        let messages = (0..<2).compactMap { try? String(contentsOfFile: directory.file("\($0).err"), encoding: .utf8) }.joined()
        #expect(!messages.contains("database is locked"))
    }

    @Test func reindexAndImportAtOnceLeaveCorrectColumns() throws {
        let root = try Self.tree.get()
        let clean = try Self.clean.get()
        let directory = TemporaryDirectory("guarantees-reindex")
        let store = directory.file("r.db")
        let all = Self.files(root)
        let half = Array(all.prefix(all.count / 2))
        #expect(try CLI.run(["import"] + half + ["--store", store]).status == 0)
        let reindex = try ChildProcess(CLI.executable, ["reindex", "--store", store], environment: ["TELEMETRY_STORE": ""],
                                       stderr: directory.file("reindex.err"))
        let importing = try ChildProcess(CLI.executable, ["import", root, "--store", store, "--jobs", "1"],
                                         environment: ["TELEMETRY_STORE": ""], stderr: directory.file("import.err"))
        #expect(reindex.wait() == 0, "\((try? String(contentsOfFile: directory.file("reindex.err"), encoding: .utf8)) ?? "")")
        #expect(importing.wait() == 0, "\((try? String(contentsOfFile: directory.file("import.err"), encoding: .utf8)) ?? "")")
        #expect(try Self.signature(store, root: root) == clean)
    }

    @Test func aSecondWriterWaitsWithAMessageOrFailsClearly() throws {
        let root = try Self.tree.get()
        let directory = TemporaryDirectory("guarantees-wait")
        let store = directory.file("w.db")
        #expect(try CLI.run(["import", Self.files(root)[0], "--store", store]).status == 0)
        // Hold the writer lock as another process would, naming a made-up import.
        let fd = open(store + ".lock", O_RDWR | O_CREAT, 0o644)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        _ = ftruncate(fd, 0)
        _ = Array("424242 import\n".utf8).withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        let immediate = try CLI.run(["import", root, "--store", store, "--wait", "0"])
        #expect(immediate.status == 2)
        #expect(immediate.stderr.contains("the import by pid 424242 is still writing this store"), "\(immediate.stderr)")
        #expect(immediate.stderr.contains(store))
        let waited = try CLI.run(["reindex", "--store", store, "--wait", "0.3"])
        #expect(waited.status == 2)
        #expect(waited.stderr.contains("waiting for the import by pid 424242"), "\(waited.stderr)")
        // Readers are never blocked.
        #expect(try CLI.scalar("SELECT count(*) FROM source_files", store: store) == 1)
        flock(fd, LOCK_UN)
        #expect(try CLI.run(["import", root, "--store", store, "--wait", "0"]).status == 0)
    }

    // MARK: Crashes (failure 6) and full disks

    @Test func aKillAtAnyMomentOfStoreCreationLeavesNoStoreOrAValidOne() throws {
        let root = try Self.tree.get()
        let clean = try Self.clean.get()
        let directory = TemporaryDirectory("guarantees-create")
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<8 {
            let store = directory.file("c\(attempt).db")
            let process = try ChildProcess(CLI.executable, ["import", root, "--store", store, "--jobs", "1"],
                                           environment: ["TELEMETRY_STORE": ""])
            usleep(UInt32.random(in: 0...(attempt < 4 ? 40_000 : 150_000), using: &generator))
            process.send(SIGKILL)
            process.wait()
            if FileManager.default.fileExists(atPath: store) {
                let probe = try CLI.run(["query", "SELECT count(*) FROM store_meta WHERE key IN ('layout_version', 'schema')",
                                         "--store", store, "--format", "csv", "--no-header"])
                #expect(probe.status == 0 && probe.stdout == "2\n", "attempt \(attempt): \(probe.stderr)")
            }
            if attempt == 7 || attempt == 2 {
                #expect(try CLI.run(["import", root, "--store", store]).status == 0)
                #expect(try Self.signature(store, root: root) == clean, "attempt \(attempt)")
            }
        }
    }

    /// Runs `telemetry arguments` with RLIMIT_FSIZE at `bytes` (SIGXFSZ ignored, so writes fail with EFBIG as a
    /// full disk makes them fail with ENOSPC).
    static func runWithFileSizeLimit(_ bytes: Int, _ arguments: [String], stdin: String? = nil) throws -> ProcessResult {
        try runProcess("/bin/sh", ["-c", "trap '' XFSZ; exec /usr/bin/prlimit --fsize=\(bytes) \"$@\"", "sh", CLI.executable] + arguments,
                       stdin: stdin, environment: ["TELEMETRY_STORE": ""])
    }

    @Test func aFullDiskDuringImportLosesNothingAndTheNextRunCompletes() throws {
        let root = try Self.tree.get()
        let clean = try Self.clean.get()
        let directory = TemporaryDirectory("guarantees-full")
        let store = directory.file("full.db")
        let full = try Self.runWithFileSizeLimit(400_000, ["import", root, "--store", store, "--jobs", "1"])
        #expect(full.status == 2, "\(full.stdout)\(full.stderr)")
        #expect(full.stderr.contains(store) || full.stderr.contains(".columns/"), "\(full.stderr)")
        #expect(!full.stderr.contains("database is locked"))
        #expect(try CLI.run(["import", root, "--store", store]).status == 0)
        #expect(try Self.signature(store, root: root) == clean)
    }

    @Test func aFullDiskForQueryAndJobOutputIsAnErrorNamingTheFile() throws {
        let root = try Self.tree.get()
        let directory = TemporaryDirectory("guarantees-output")
        let store = directory.file("o.db")
        #expect(try CLI.run(["import", root, "--store", store]).status == 0)
        let query = try Self.runWithFileSizeLimit(100_000, ["query", "SELECT document_id, payload FROM pings", "--store", store])
        #expect(query.status == 2, "\(query.stderr)")
        #expect(query.stderr.contains("standard output: write failed"), "\(query.stderr)")
        // A real ENOSPC: /dev/full.
        let toFull = try runProcess("/bin/sh", ["-c", "exec \"$0\" query 'SELECT count(*) FROM pings' --store \"$1\" > /dev/full",
                                                CLI.executable, store], environment: ["TELEMETRY_STORE": ""])
        #expect(toFull.status == 2, "\(toFull.stderr)")
        #expect(toFull.stderr.contains("standard output: write failed: No space left on device"), "\(toFull.stderr)")
        let job = try CLI.run(["job", "pings-per-day", "--store", store, "--output", "/dev/full"])
        #expect(job.status == 2, "\(job.stderr)")
        #expect(job.stderr.contains("/dev/full: write failed: No space left on device"), "\(job.stderr)")
        #expect(FileManager.default.fileExists(atPath: "/dev/full"))
        let output = directory.file("job.tsv")
        let limited = try Self.runWithFileSizeLimit(100_000, ["job", "dimensions-dump", "--store", store, "--output", output,
                                                              "--format", "json"])
        #expect(limited.status == 2 || limited.status == 0, "\(limited.stderr)")
        if limited.status == 2 {
            #expect(limited.stderr.contains("\(output): write failed"), "\(limited.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output), "a partial output file was left")
        }
        // The REPL's .output: the failure is reported naming the file (it used to stop silently at the limit).
        let redirected = directory.file("repl.txt")
        let shell = try Self.runWithFileSizeLimit(100_000, ["repl", "--store", store],
                                                  stdin: ".output \(redirected)\nSELECT payload FROM pings;\n.output /dev/full\nSELECT 1;\n.output\nSELECT 42;\n")
        #expect(shell.stderr.contains("\(redirected): cannot write: File too large"), "\(shell.stderr)")
        #expect(shell.stderr.contains("/dev/full: cannot write: No space left on device"), "\(shell.stderr)")
        #expect(shell.stdout.contains("42"))
        #expect(shell.status != 0)
    }

    // MARK: Read-only opening (issue 18 item 5)

    @Test func queryNeverWritesIntoAFileThatIsNotAStore() throws {
        let directory = TemporaryDirectory("guarantees-notastore")
        let empty = try directory.write("empty.db", [])
        let text = try directory.write("notes.db", text: "not a database\n")
        for (path, size) in [(empty, 0), (text, 15)] {
            let result = try CLI.run(["query", "SELECT 1", "--store", path])
            #expect(result.status == 2)
            #expect(result.stderr.contains("\(path): not a telemetry store"), "\(result.stderr)")
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.size] as? NSNumber)?.intValue == size, "\(path) was written to")
            #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
        }
        let imported = try CLI.run(["import", try Self.tree.get(), "--store", empty])
        #expect(imported.status == 2 && imported.stderr.contains("not a telemetry store"), "\(imported.stderr)")
    }

    @Test func aStoreTheUserCanOnlyReadCanBeQueried() throws {
        let root = try Self.tree.get()
        let directory = TemporaryDirectory("guarantees-readonly")
        let storeDirectory = directory.file("ro")
        try FileManager.default.createDirectory(atPath: storeDirectory, withIntermediateDirectories: true)
        let store = storeDirectory + "/ro.db"
        #expect(try CLI.run(["import", root, "--store", store]).status == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: store))
        chmod(store, 0o444)
        chmod(storeDirectory, 0o555)
        chmod(directory.url.path, 0o755)
        defer { chmod(storeDirectory, 0o755); chmod(store, 0o644) }
        // As root permissions do not stop writes: run the query as nobody.
        let prefix = getuid() == 0 ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CLI.executable]
                                   : [CLI.executable]
        let result = try runProcess(prefix[0], Array(prefix.dropFirst()) + ["query", "SELECT count(*) FROM pings", "--store", store,
                                                                             "--format", "csv", "--no-header"],
                                    environment: ["TELEMETRY_STORE": ""])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "300\n")
        let write = try runProcess(prefix[0], Array(prefix.dropFirst()) + ["query", "DELETE FROM pings", "--store", store],
                                   environment: ["TELEMETRY_STORE": ""])
        #expect(write.status != 0)
        #expect(write.stderr.contains(store), "\(write.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: store)) == before)
    }

    // MARK: Memory, check, wrong roots (failure 9)

    @Test func temporaryStorageIsOnDisk() throws {
        let directory = TemporaryDirectory("guarantees-temp")
        let store = try Store(path: directory.file("t.db"), create: true)
        #expect(try store.connection.scalarInt("PRAGMA temp_store") == 1)   // FILE, not MEMORY (2)
        let reader = try Store(path: directory.file("t.db"), create: false, readOnly: true)
        #expect(try reader.connection.scalarInt("PRAGMA temp_store") == 1)
    }

    @Test func anImportFromTheWrongRootDoesNotPoisonTheRightOne() throws {
        let root = try Self.tree.get()
        let clean = try Self.clean.get()
        let directory = TemporaryDirectory("guarantees-wrongroot")
        let store = directory.file("wr.db")
        // The parent of the root: every path has one directory too many, a path_error.
        let wrong = try CLI.run(["import", (root as NSString).deletingLastPathComponent, "--store", store])
        #expect(wrong.status == 1, "\(wrong.stdout)\(wrong.stderr)")
        let right = try CLI.run(["import", root, "--store", store])
        #expect(right.status == 0, "\(right.stdout)\(right.stderr)")
        #expect(try Self.signature(store, root: root) == clean)
    }

    // MARK: telemetry check (failure 9)

    @Test func checkFindsAFlippedIndexPageAndADamagedColumnAndNamesTheRepair() throws {
        let root = try Self.tree.get()
        let directory = TemporaryDirectory("guarantees-check")
        let store = directory.file("k.db")
        #expect(try CLI.run(["import", root, "--store", store]).status == 0)
        let healthy = try CLI.run(["check", "--store", store, "--full"])
        #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
        #expect(healthy.stdout.contains("no damage found"))
        let shell = try runProcess(CLI.executable, ["repl", "--store", store], stdin: ".check\n", environment: ["TELEMETRY_STORE": ""])
        #expect(shell.stdout.contains("no damage found"), "\(shell.stdout)\(shell.stderr)")
        let j1 = "SELECT appUpdateChannel, count(*) FROM pings GROUP BY appUpdateChannel"
        let before = try CLI.run(["query", j1, "--store", store, "--format", "csv"]).stdout

        // A flipped bit in a key of the channel index (300 short keys: one leaf page, its root).
        let pageSize = try #require(try CLI.scalar("PRAGMA page_size", store: store))
        let rootPage = try #require(try CLI.scalar("SELECT rootpage FROM sqlite_master WHERE name = 'pings_dim_appUpdateChannel'", store: store))
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: store)))
        let page = (rootPage - 1) * pageSize..<(rootPage * pageSize)
        let needle = Array("release".utf8)
        let at = try #require(page.reversed().first { start in start + needle.count <= page.upperBound && Array(bytes[start..<start + needle.count]) == needle },
                              "no 'release' key in the index's root page")
        bytes[at] ^= 0x04   // 'r' → 'v'
        try Data(bytes).write(to: URL(fileURLWithPath: store))
        let wrong = try CLI.run(["query", j1, "--store", store, "--format", "csv"]).stdout
        #expect(wrong != before, "the damage did not change J1: the test damages the wrong page")
        let damaged = try CLI.run(["check", "--store", store, "--full"])
        #expect(damaged.status == 1, "\(damaged.stdout)\(damaged.stderr)")
        #expect(damaged.stdout.contains("DAMAGED sqlite"), "\(damaged.stdout)")
        #expect(damaged.stdout.contains("REINDEX"), "\(damaged.stdout)")
        #expect(try CLI.run(["query", "REINDEX", "--store", store]).status == 0)
        #expect(try CLI.run(["query", j1, "--store", store, "--format", "csv"]).stdout == before)

        // A flipped bit inside a column file's committed rows: found by check, repaired by reindex.
        let columns = store + ".columns"
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: columns).max { a, b in
            let size = { (file: String) in ((try? FileManager.default.attributesOfItem(atPath: columns + "/" + file))?[.size] as? NSNumber)?.intValue ?? 0 }
            return size(a) < size(b)
        })
        var column = try [UInt8](Data(contentsOf: URL(fileURLWithPath: columns + "/" + name)))
        column[column.count - 3] ^= 0x01
        try Data(column).write(to: URL(fileURLWithPath: columns + "/" + name))
        let badColumn = try CLI.run(["check", "--store", store])
        #expect(badColumn.status == 1, "\(badColumn.stdout)\(badColumn.stderr)")
        #expect(badColumn.stdout.contains("DAMAGED columns"), "\(badColumn.stdout)")
        #expect(badColumn.stdout.contains("telemetry reindex"), "\(badColumn.stdout)")
        #expect(try CLI.run(["reindex", "--store", store]).status == 0)
        let repaired = try CLI.run(["check", "--store", store, "--full"])
        #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
    }
}
