import Foundation
import Testing
import TelemetryConvert
import TelemetryTestSupport

/// `RevisionCache` against a live histogram server on 127.0.0.1 (`spec/histograms.md` §5, §6): a small Python
/// `http.server` that answers `GET /histograms?revision=<url>` for known revisions and 404 otherwise, logging
/// every request path. Loopback only; the server exits by itself after two minutes if the test dies.
struct RevisionServerTests {
    static let served = "https://hg.mozilla.org/releases/mozilla-release/rev/a55c55edf302"
    static let missing = "https://hg.mozilla.org/releases/mozilla-release/rev/0488055e9f9f"
    static let garbage = "https://hg.mozilla.org/mozilla-central/rev/badbadbadbad"

    static let script = #"""
    import http.server, os, signal, sys, threading, urllib.parse
    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # the test runner may hand SIGTERM down ignored or blocked
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    root, log = sys.argv[1], sys.argv[2]
    files = {sys.argv[3]: "Histograms.json", sys.argv[4]: "garbage.txt"}
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            with open(log, "a") as f:
                f.write(self.path + "\n")
            url = urllib.parse.urlparse(self.path)
            revision = urllib.parse.parse_qs(url.query).get("revision", [None])[0]
            if url.path == "/histograms" and revision in files:
                body = open(os.path.join(root, files[revision]), "rb").read()
                self.send_response(200)
            else:
                body = ("Not Found: %s" % revision).encode()
                self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Timer(120, os._exit, args=(0,)).start()
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """#

    /// A running server process and its request log.
    final class Server {
        let process = Process()
        let port: Int
        let logPath: String

        init(in directory: TemporaryDirectory) throws {
            let scriptPath = try directory.write("server/histogram_server.py", text: RevisionServerTests.script)
            let raw = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedPath(
                "datasets/real/histograms/tags/FIREFOX_AURORA_23_BASE/Histograms.json")))
            try directory.write("server/Histograms.json", [UInt8](raw))
            try directory.write("server/garbage.txt", text: "this is not json")
            logPath = directory.file("server/requests.log")
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", scriptPath, directory.url.appendingPathComponent("server").path, logPath,
                                 RevisionServerTests.served, RevisionServerTests.garbage]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            // The first line is the port; bounded so a server that never starts cannot hang the test.
            let line = LineBox()
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                var data = Data()
                while !data.contains(0x0A) {
                    let chunk = output.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    data.append(chunk)
                }
                line.set(String(decoding: data, as: UTF8.self))
                done.signal()
            }
            guard done.wait(timeout: .now() + 30) == .success,
                  let port = Int(line.value.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                process.terminate()
                throw HistogramFixtures.FixtureError("histogram server did not start: '\(line.value)'")
            }
            self.port = port
        }

        var url: String { "http://127.0.0.1:\(port)" }

        /// Request paths received so far.
        var requests: [String] {
            ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        /// Stops the server: SIGTERM, then SIGKILL after 5 s (only this process, by its id).
        func stop() {
            guard process.isRunning else { return }
            process.terminate()
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        deinit { stop() }

        private final class LineBox: @unchecked Sendable {   // written once before `done.signal()`, read after
            private(set) var value = ""
            func set(_ text: String) { value = text }
        }
    }

    @Test(.timeLimit(.minutes(5)))   // a hang guard: in the full parallel suite on 2 cores this test can wait minutes for a thread
    func fetchesSubstitutesCachesAndRemembersFailures() throws {
        let directory = TemporaryDirectory("histogram-server")
        let server = try Server(in: directory)
        defer { server.stop() }
        let cacheDirectory = directory.url.appendingPathComponent("cache").path
        let cache = RevisionCache(cacheDirectory: cacheDirectory, histogramServer: server.url, fetchTimeout: .seconds(10))

        // Fetched, substituted, saved atomically, memoised.
        let definitions = try cache.definitions(forRevisionURL: Self.served)
        #expect(definitions.count == 524)
        #expect(try definitions.definition(named: "GC_REASON_2").bucketCount == 102, "substituted before parsing")
        let revision = try RevisionURL(parsing: Self.served)
        let cachePath = revision.cachePath(in: cacheDirectory)
        let raw = try String(contentsOfFile: Fixtures.sharedPath(
            "datasets/real/histograms/tags/FIREFOX_AURORA_23_BASE/Histograms.json"), encoding: .utf8)
        #expect(try String(contentsOfFile: cachePath, encoding: .utf8) == HistogramDefinitions.applyingServerSubstitutions(to: raw))
        #expect(try FileManager.default.contentsOfDirectory(atPath: (cachePath as NSString).deletingLastPathComponent)
                == ["Histograms.json"], "no temporary file left behind")
        #expect(try cache.definitions(forRevisionURL: Self.served) == definitions)
        #expect(server.requests == ["/histograms?revision=" + Self.served.addingPercentEncoding(
            withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789-._~"))!])

        // A revision the server does not have (404): unknown_revision, asked once, every record still rejected.
        for _ in 0..<3 {
            #expect(throws: PayloadRejection(.unknownRevision, "Failed to fetch histograms for URL: \(Self.missing)")) {
                try cache.definitions(forRevisionURL: Self.missing)
            }
        }
        // A 200 answer that is not a definitions file: unknown_revision, nothing cached.
        #expect(throws: PayloadRejection(.unknownRevision, "Failed to fetch histograms for URL: \(Self.garbage)")) {
            try cache.definitions(forRevisionURL: Self.garbage)
        }
        #expect(!FileManager.default.fileExists(atPath: try RevisionURL(parsing: Self.garbage).cachePath(in: cacheDirectory)))
        #expect(server.requests.count == 3)
        var statistics = cache.statistics
        #expect(statistics.fetches == 3 && statistics.fetchFailures == 2 && statistics.unavailableLookups == 4)
        #expect(statistics.memoryHits == 1 && statistics.diskLoads == 0 && statistics.cacheWriteFailures == 0)

        // Server stopped: the cached revision still loads from disk; anything else is unknown_revision.
        server.stop()
        let later = RevisionCache(cacheDirectory: cacheDirectory, histogramServer: server.url, fetchTimeout: .seconds(10))
        #expect(try later.definitions(forRevisionURL: Self.served).count == 524)
        #expect(throws: PayloadRejection(.unknownRevision, "Failed to fetch histograms for URL: \(Self.missing)")) {
            try later.definitions(forRevisionURL: Self.missing)
        }
        statistics = later.statistics
        #expect(statistics.diskLoads == 1 && statistics.fetches == 1 && statistics.fetchFailures == 1)

        // A server configured without a cache directory: fetched definitions are only memoised.
        let unreachable = RevisionCache(cacheDirectory: nil, histogramServer: server.url, fetchTimeout: .seconds(10))
        #expect(throws: PayloadRejection.self) { try unreachable.definitions(forRevisionURL: Self.served) }
    }
}
