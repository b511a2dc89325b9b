import ArgumentParser
import Foundation
import TelemetryConvert
import TelemetryCore
import TelemetryIngest
import TelemetryOperations

extension FsyncPolicy: ExpressibleByArgument {}

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Receive ping submissions over HTTP into rotating raw logs.",
        discussion: """
        Listens for POST /submit/telemetry/<document id>/<reason>/<appName>/<appVersion>/<appUpdateChannel>/\
        <appBuildID> and appends each body, with its path and receive time (and the client IP with --include-ip), \
        as one record to a raw log in --log-path. A request is answered 200 only after its record was written to \
        the file. Files are named <log base>.<v1|v2>.<host>.<pid>.<created ms> and renamed with the suffix \
        .finished when closed (over --max-log-size bytes, or idle for --max-log-age-ms); only .finished files are \
        complete. GET /status answers OK, GET /metrics gives counters in the Prometheus text format.

        Status codes: 200 stored; 202 body over --max-data-length or path over --max-path-length (discarded, so \
        clients do not retry); 400 malformed request or Content-Length; 404 wrong path; 405 wrong method; 408 a \
        slow request: head not complete within --head-timeout-ms, body not complete within --request-timeout-ms, \
        or a head or body arriving slower than --min-bytes-per-second (the connection is then closed); 411 missing \
        or zero Content-Length; 500 the log write failed (e.g. disk full; the server keeps serving); 503 the write \
        queue is full. See docs/ingest.md.

        Slow clients: at most --max-connections connections are open at once (default: the open-file limit less a \
        reserve); a new connection over the cap closes the oldest idle one (between requests, sending a head, or \
        sending a body below the minimum rate), never one whose request is being written to the log. \
        GET /metrics counts cut requests (telemetry_ingest_timeouts_total) and shed connections.

        A JSON configuration file like the seed server's (keys port, url_prefix, max_data_length, \
        max_path_length, max_ip_length, include_request_ip, log_path, log_base, max_log_size, max_log_age_ms, \
        stats_log_file, motd) may be given first; flags override it. SIGTERM or SIGINT stops accepting, finishes \
        the requests in progress and closes and renames the current file. With --convert-into, every finished \
        file is converted into the storage layout under that directory as it rotates. `telemetry import` skips \
        files not yet .finished.

        Exit status: 0 stopped by SIGTERM or SIGINT; 2 cannot listen or cannot write --port-file; 64 bad arguments \
        or configuration.

        Examples:
          telemetry serve --port 8080 --log-path /data/raw --include-ip
          telemetry serve server_config.json --stats-log stats.jsonl
          telemetry serve --port 0 --port-file port --convert-into storage
        """
    )

    @Argument(help: ArgumentHelp("Seed-style JSON configuration file (spec/raw-log.md §7.3 keys); flags override it.", valueName: "config"))
    var config: String?

    @Option(help: ArgumentHelp("Address to listen on (default 127.0.0.1).", valueName: "address"))
    var host: String?

    @Option(help: ArgumentHelp("Port to listen on (default 8080; 0 picks a free port, printed on stdout).", valueName: "port"))
    var port: Int?

    @Option(help: ArgumentHelp("Write the bound port to this file once listening.", valueName: "file"))
    var portFile: String?

    @Option(help: ArgumentHelp("Directory of the raw logs (default ./).", valueName: "dir"))
    var logPath: String?

    @Option(help: ArgumentHelp("File name base of the raw logs (default telemetry.log).", valueName: "name"))
    var logBase: String?

    @Flag(inversion: .prefixedNo, help: "Store the client IP (X-Forwarded-For, else the peer address) in v2 records.")
    var includeIp: Bool?

    @Option(help: ArgumentHelp("Accepted path prefix, stripped before storage (default /submit/telemetry/).", valueName: "prefix"))
    var urlPrefix: String?

    @Option(help: ArgumentHelp("Largest body in bytes (default 204800); larger ones get 202 and are discarded.", valueName: "bytes"))
    var maxDataLength: Int?

    @Option(help: ArgumentHelp("Largest stored path in bytes (default 10240).", valueName: "bytes"))
    var maxPathLength: Int?

    @Option(help: ArgumentHelp("Largest stored client IP in bytes (default 100); longer ones are stored as 0.0.0.0.", valueName: "bytes"))
    var maxIpLength: Int?

    @Option(help: ArgumentHelp("Finish a log file once it holds more than this many bytes (default 524288000).", valueName: "bytes"))
    var maxLogSize: Int?

    @Option(help: ArgumentHelp("Finish a log file idle for longer than this; also the check period (default 300000).", valueName: "ms"))
    var maxLogAgeMs: Int64?

    @Option(help: ArgumentHelp("Append one JSON line per request to this file (the seed's stats log).", valueName: "file"))
    var statsLog: String?

    @Option(help: ArgumentHelp("When to fsync log files: interval (group commit every --fsync-interval-ms), always (before each 200), never.", valueName: "policy"))
    var fsync: FsyncPolicy?

    @Option(help: ArgumentHelp("Group-commit period of --fsync interval (default 1000).", valueName: "ms"))
    var fsyncIntervalMs: Int64?

    @Option(help: ArgumentHelp("Log writers, each with its own thread and file (default 1).", valueName: "n"))
    var writers: Int?

    @Option(help: ArgumentHelp("Bytes of records waiting for the writers before new submissions get 503 (default 67108864).", valueName: "bytes"))
    var queueBytes: Int?

    @Option(help: ArgumentHelp("Event-loop threads (default: the number of cores).", valueName: "n"))
    var threads: Int?

    @Option(help: ArgumentHelp("Close connections that send nothing for this long (default 30000; 408 first if a request is in progress).", valueName: "ms"))
    var idleTimeoutMs: Int64?

    @Option(help: ArgumentHelp("Answer 408 and close when a request head is not complete this long after the connection was accepted (or, on keep-alive, after its first byte) (default 10000).", valueName: "ms"))
    var headTimeoutMs: Int64?

    @Option(help: ArgumentHelp("Answer 408 and close when a body is not complete this long after its head (default 30000).", valueName: "ms"))
    var requestTimeoutMs: Int64?

    @Option(help: ArgumentHelp("Answer 408 and close when a head or body in progress brings fewer bytes per second than this over a --min-rate-window-ms window, after --min-rate-grace-ms (default 500; 0 turns the rule off).", valueName: "bytes"))
    var minBytesPerSecond: Int?

    @Option(help: ArgumentHelp("Time a head or body may take before --min-bytes-per-second applies (default 5000).", valueName: "ms"))
    var minRateGraceMs: Int64?

    @Option(help: ArgumentHelp("Window over which --min-bytes-per-second is measured (default 5000).", valueName: "ms"))
    var minRateWindowMs: Int64?

    @Option(help: ArgumentHelp("Most client connections open at once; over it the oldest idle one is closed (default: the open-file limit (ulimit -n) less 64 and 4 per thread and writer, 16–10000).", valueName: "n"))
    var maxConnections: Int?

    @Option(help: ArgumentHelp("On SIGTERM/SIGINT, wait this long for requests in progress (default 10000).", valueName: "ms"))
    var shutdownGraceMs: Int64 = 10_000

    @Option(help: ArgumentHelp("Convert every finished log into the storage layout under this directory.", valueName: "dir"))
    var convertInto: String?

    @Option(help: ArgumentHelp("With --convert-into: dimension schema JSON (default: the seed's 6 dimensions).", valueName: "file"))
    var schema: String?

    @Option(help: ArgumentHelp("With --convert-into: directory of Histograms.json files (<repo>/<revision>/Histograms.json).", valueName: "dir"))
    var histogramCache: String?

    @Option(help: ArgumentHelp("With --convert-into: histogram server to fetch missing revisions from.", valueName: "url"))
    var histogramServer: String?

    func validate() throws {
        if let histogramServer, URL(string: histogramServer)?.scheme?.hasPrefix("http") != true {
            throw ValidationError("--histogram-server must be an http(s) URL")
        }
        if convertInto == nil && (schema != nil || histogramCache != nil || histogramServer != nil) {
            throw ValidationError("--schema, --histogram-cache and --histogram-server need --convert-into")
        }
        guard shutdownGraceMs >= 0 else { throw ValidationError("--shutdown-grace-ms must not be negative") }
    }

    /// The configuration file (if any) with the flags applied on top.
    func resolvedConfiguration() throws -> IngestConfiguration {
        var c = IngestConfiguration()
        if let config {
            do { c = try c.applyingConfigFile(config) } catch { throw ValidationError("\(error)") }
        }
        if let host { c.host = host }
        if let port { c.port = port }
        if let logPath { c.logPath = logPath }
        if let logBase { c.logBase = logBase }
        if let includeIp { c.includeRequestIP = includeIp }
        if let urlPrefix { c.urlPrefix = urlPrefix }
        if let maxDataLength { c.limits.maxDataBytes = maxDataLength }
        if let maxPathLength { c.limits.maxPathBytes = maxPathLength }
        if let maxIpLength { c.limits.maxIPBytes = maxIpLength }
        if let maxLogSize { c.maxLogBytes = maxLogSize }
        if let maxLogAgeMs { c.maxLogAge = .milliseconds(maxLogAgeMs) }
        if let statsLog { c.statsLogFile = statsLog }
        if let fsync { c.fsync = fsync }
        if let fsyncIntervalMs { c.fsyncInterval = .milliseconds(fsyncIntervalMs) }
        if let writers { c.writers = writers }
        if let queueBytes { c.queueCapacityBytes = queueBytes }
        if let threads { c.eventLoopThreads = threads }
        if let idleTimeoutMs { c.idleTimeout = .milliseconds(idleTimeoutMs) }
        if let requestTimeoutMs { c.requestTimeout = .milliseconds(requestTimeoutMs) }
        if let headTimeoutMs { c.headTimeout = .milliseconds(headTimeoutMs) }
        if let minBytesPerSecond { c.minBytesPerSecond = minBytesPerSecond }
        if let minRateGraceMs { c.minRateGrace = .milliseconds(minRateGraceMs) }
        if let minRateWindowMs { c.minRateWindow = .milliseconds(minRateWindowMs) }
        if let maxConnections { c.maxConnections = maxConnections }
        do { try c.validate() } catch { throw ValidationError("\(error)") }
        return c
    }

    func run() throws {
        let configuration = try resolvedConfiguration()
        let conversions = try convertInto.map { try ServeConversions(outputDirectory: $0, schema: schema,
                                                                      histogramCache: histogramCache,
                                                                      histogramServer: histogramServer) }
        // A file-size limit (ulimit -f) must surface as EFBIG (a 500 and a finished file), not kill the server.
        signal(SIGXFSZ, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        var onFinished: (@Sendable (String) -> Void)?
        if let conversions { onFinished = { path in conversions.enqueue(path) } }
        let server: IngestServer
        do {
            server = try IngestServer(configuration: configuration, log: { serveLog($0) }, onFinishedFile: onFinished)
        } catch {
            throw ValidationError("\(error)")
        }
        print(configuration.motd)
        for message in server.clampMessages { serveLog(message) }
        // Signals first: one that arrives while starting stops the server once it listens (or before it does).
        let grace = Duration.milliseconds(shutdownGraceMs)
        let signals = ShutdownSignals { signalName in
            serveLog("\(signalName): stopping (finishing requests in progress; signal again to exit at once)")
            server.shutdown(gracePeriod: grace)
        }
        signals.install()
        let boundPort: Int
        do {
            boundPort = try server.start()
        } catch IngestError.notRunning {
            conversions?.drain()
            return   // stopped by a signal before it listened
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        if let portFile {
            let temporary = portFile + ".tmp-\(getpid())"
            let written = FileManager.default.createFile(atPath: temporary, contents: Data("\(boundPort)\n".utf8))
            if !written || rename(temporary, portFile) != 0 {   // rename: readers never see a half-written file
                printError("cannot write --port-file \(portFile)")
                server.shutdown(gracePeriod: .zero)
                throw ExitCode(2)
            }
        }
        print("listening on http://\(configuration.host):\(boundPort) (raw logs in \(configuration.logPath), \(configuration.version), "
              + "at most \(server.maxConnections) connections)")
        fflush(nil)   // stdout may be a pipe or file: tests and scripts read the port from it

        server.waitUntilStopped()
        withExtendedLifetime(signals) {}
        conversions?.drain()
        let m = server.metrics.snapshot
        serveLog("stopped: \(m.requests) request(s), \(m.storedRecords) record(s) stored (\(m.storedBytes) bytes), "
                 + "\(m.filesFinished) file(s) finished, \(m.writeErrors) write error(s)")
        if let conversions { serveLog(conversions.summaryLine()) }
    }
}

/// Writes one console line to standard error: `telemetry serve: <ISO time> <message>`.
private func serveLog(_ message: String) {
    let stamp = ISO8601DateFormatter().string(from: Date())
    try? Output.write("telemetry serve: \(stamp) \(message)\n", to: 2, name: "standard error")
}

/// SIGTERM and SIGINT → one graceful shutdown on a background queue; a second signal exits at once (status 1).
private final class ShutdownSignals: @unchecked Sendable {   // `lock` guards `raised`; sources are set once in install()
    private let lock = NSLock()
    private var raised = false
    private var sources: [DispatchSourceSignal] = []
    private let action: @Sendable (String) -> Void

    init(action: @escaping @Sendable (String) -> Void) { self.action = action }

    func install() {
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                lock.lock()
                let again = raised
                raised = true
                lock.unlock()
                if again { _exit(1) }
                DispatchQueue.global().async { [action] in action(name) }
            }
            source.resume()
            sources.append(source)
        }
    }
}

/// `--convert-into`: finished raw logs are converted one at a time, in rotation order, on a background queue, by
/// the same `Converter` as `telemetry convert` (TelemetryIngest does not import the converter: STYLE §1).
private final class ServeConversions: @unchecked Sendable {   // `lock` guards the totals; the converter is Sendable
    private let converter: Converter
    private let queue = DispatchQueue(label: "telemetry.serve.convert")
    private let lock = NSLock()
    private let failure = EnvironmentFailure()
    private var files = 0
    private var converted = 0
    private var rejected = 0

    init(outputDirectory: String, schema: String?, histogramCache: String?, histogramServer: String?) throws {
        var options = ConvertOptions()
        do {
            options.schema = try schema.map { try DimensionSchema(contentsOf: $0) } ?? .seed
        } catch {
            throw ValidationError("\(error)")
        }
        options.jobs = 1
        let source = HistogramDefinitionSource(directory: histogramCache, server: histogramServer)
        if source.isEmpty { printError(HistogramDefinitionSource.noDefinitionsWarning) }
        converter = ConverterFactory.converter(outputDirectory: outputDirectory, options: options, source: source, failure: failure)
    }

    /// Queues `path` (a `.finished` raw log) for conversion.
    func enqueue(_ path: String) {
        queue.async { [self] in convert(path) }
    }

    /// Waits for every queued conversion.
    func drain() { queue.sync {} }

    func summaryLine() -> String {
        lock.lock(); defer { lock.unlock() }
        return "converted \(files) finished file(s): \(converted) record(s) converted, \(rejected) rejected"
    }

    private func convert(_ path: String) {
        let name = (path as NSString).lastPathComponent
        do {
            let summary = try converter.run(inputs: [path])
            lock.lock()
            files += 1
            converted += summary.converted
            rejected += summary.rejected
            lock.unlock()
            serveLog("converted \(name): \(summary.converted) record(s), \(summary.rejected) rejected, "
                     + "\(summary.filesWritten.count) file(s) written")
        } catch {
            serveLog("conversion of \(name) failed: \(error)")
        }
        if let message = failure.message { serveLog("conversion: \(message)") }
    }
}
