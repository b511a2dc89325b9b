import Foundation
import TelemetryS3
import TelemetryTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Why the moto fixture could not run. Thrown, so the test fails (never skips) when moto is missing.
struct MotoError: Error, CustomStringConvertible {
    var description: String
}

/// moto's S3 server (`moto_fixture.py serve`) on an ephemeral 127.0.0.1 port, set up from a plan, with IAM
/// authentication on. Started by `start`, stopped by `stop()` (also on deinit); it also stops by itself when this
/// process goes away or after `maxSeconds`. The child is a `ChildProcess` (no blocked signals, so SIGTERM works).
final class MotoServer: @unchecked Sendable {   // `process` is touched by `stop()` only, under `lock`
    let endpoint: String
    /// IAM users of the plan: `reader` may do anything in S3, `stranger` nothing.
    let users: [String: S3Credentials]
    /// `"bucket/key"` → ETag (unquoted) of every object the plan uploaded.
    let etags: [String: String]
    let directory: TemporaryDirectory
    private var process: ChildProcess?
    private let lock = NSLock()

    /// The interpreter with moto installed: `$TELEMETRY_MOTO_PYTHON`, else `.venv/bin/python` in the package root
    /// (created by `scripts/test.sh`).
    static var python: String {
        if let override = ProcessInfo.processInfo.environment["TELEMETRY_MOTO_PYTHON"], !override.isEmpty { return override }
        return Fixtures.repoPath(".venv/bin/python")
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("moto_fixture.py").path

    /// Starts the server and waits until the plan is set up.
    /// - Parameter plan: `users` (`{"name": {"allow_s3": true}}`), `buckets` (`[{"name": …}]`), `trees`
    ///   (`[{"bucket", "prefix", "dir"}]`), `objects` (`[{"bucket", "key", "file", "multipart_parts"?, "public"?}]`),
    ///   `enforce_auth` (default true). Users `reader` and `stranger` are added when missing.
    /// - Throws: `MotoError` when moto is not installed, exits early, or is not ready within `readyTimeout` seconds.
    static func start(plan: [String: Any], readyTimeout: Double = 180, maxSeconds: Int = 600) throws -> MotoServer {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw MotoError(description: """
                moto is not installed: no \(python). The S3 tests need moto's S3 server: run `bash scripts/test.sh`, or \
                `python3 -m venv .venv && .venv/bin/pip install 'moto[server]>=5,<6'` in the package root \
                (or set TELEMETRY_MOTO_PYTHON to a Python that has moto)
                """)
        }
        let directory = TemporaryDirectory("moto")
        var plan = plan
        var users = plan["users"] as? [String: Any] ?? [:]
        if users["reader"] == nil { users["reader"] = ["allow_s3": true] }
        if users["stranger"] == nil { users["stranger"] = [String: Any]() }
        plan["users"] = users
        let planPath = directory.file("plan.json")
        try JSONSerialization.data(withJSONObject: plan).write(to: URL(fileURLWithPath: planPath))
        let readyPath = directory.file("ready.json")
        let logPath = directory.file("moto.log")
        let environment = ["PYTHONUNBUFFERED": "1"]   // the fixture drops the machine's AWS_* settings itself
        let process = try ChildProcess(python, [script, "serve", "--plan", planPath, "--ready", readyPath,
                                                "--max-seconds", String(maxSeconds)],
                                       environment: environment, stdout: logPath, stderr: directory.file("moto.stderr"))

        func logTail() -> String {
            let text = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
                + ((try? String(contentsOfFile: directory.file("moto.stderr"), encoding: .utf8)) ?? "")
            return text.split(separator: "\n").filter { !$0.contains("\" 200 -") }.suffix(15).joined(separator: "\n")
        }
        let deadline = Date().addingTimeInterval(readyTimeout)
        while !FileManager.default.fileExists(atPath: readyPath) {
            if !process.isRunning {
                throw MotoError(description: "moto fixture exited (status \(process.wait())) before it was ready:\n\(logTail())")
            }
            if Date() > deadline {
                process.send(SIGKILL)
                process.wait()
                throw MotoError(description: "moto fixture not ready after \(Int(readyTimeout)) s:\n\(logTail())")
            }
            usleep(100_000)
        }
        let ready = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: readyPath))) as? [String: Any] ?? [:]
        guard let endpoint = ready["endpoint"] as? String else { throw MotoError(description: "ready.json has no endpoint") }
        var credentials: [String: S3Credentials] = [:]
        for (name, value) in ready["users"] as? [String: [String: String]] ?? [:] {
            if let id = value["access_key_id"], let secret = value["secret_access_key"] {
                credentials[name] = S3Credentials(accessKeyID: id, secretAccessKey: secret)
            }
        }
        return MotoServer(endpoint: endpoint, users: credentials, etags: ready["etags"] as? [String: String] ?? [:],
                          directory: directory, process: process)
    }

    private init(endpoint: String, users: [String: S3Credentials], etags: [String: String], directory: TemporaryDirectory,
                 process: ChildProcess) {
        self.endpoint = endpoint
        self.users = users
        self.etags = etags
        self.directory = directory
        self.process = process
    }

    deinit { stop() }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard let process else { return }
        self.process = nil
        guard process.isRunning else { return }
        process.send(SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { process.send(SIGKILL); process.wait() }
    }

    /// Settings for `user` against this server (path-style, region us-east-1).
    func settings(user: String = "reader") throws -> S3Settings {
        let credentials = try #require(users[user], "moto user \(user) missing")
        return S3Settings(credentials: credentials, region: "us-east-1", endpoint: URL(string: endpoint), credentialSource: "test")
    }

    /// A client for `user`, with quick retries.
    func client(user: String = "reader", parallel: Int = 4) throws -> S3Client {
        S3Client(settings: try settings(user: user), retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(50)),
                 requestTimeout: 30, connectionsPerHost: parallel)
    }

    /// Overwrites `bucket/key` with the bytes of `file` (as `reader`, through boto3).
    func put(bucket: String, key: String, file: String) throws {
        let reader = try #require(users["reader"])
        let result = try runProcess(Self.python, [Self.script, "put", "--endpoint", endpoint, "--key-id", reader.accessKeyID,
                                                  "--secret", reader.secretAccessKey, "--bucket", bucket, "--key", key, "--file", file])
        #expect(result.status == 0, "moto_fixture.py put failed: \(result.stderr)")
    }

    /// The `environment` for a `telemetry` child process that signs as `user`, reading no shared files.
    func cliEnvironment(user: String = "reader", home: String) throws -> [String: String] {
        let credentials = try #require(users[user])
        return ["AWS_ACCESS_KEY_ID": credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": credentials.secretAccessKey,
                "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "",
                "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "", "HOME": home,
                "AWS_SHARED_CREDENTIALS_FILE": home + "/none", "AWS_CONFIG_FILE": home + "/none", "TELEMETRY_STORE": ""]
    }
}

/// Generated storage-format data (`../shared/tools/gen_pings.py --format storage`) under `<dir>/storage`.
enum GeneratedData {
    /// - Returns: the storage root.
    static func make(in directory: TemporaryDirectory, pings: Int, filesPerPartition: Int, seed: Int) throws -> String {
        let out = directory.file("generated")
        let result = try runProcess("/usr/bin/env", ["python3", Fixtures.sharedPath("tools/gen_pings.py"), "--pings", String(pings),
                                                     "--files-per-partition", String(filesPerPartition), "--format", "storage",
                                                     "--seed", String(seed), "--procs", "1", "--out", out])
        guard result.status == 0 else { throw MotoError(description: "gen_pings.py failed: \(result.stderr)") }
        return out + "/storage"
    }

    /// Paths of the regular files under `root`, relative to it, sorted.
    static func relativeFiles(_ root: String) -> [String] {
        var files: [String] = []
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        for case let path as String in enumerator {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(path)
            }
        }
        return files.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}
