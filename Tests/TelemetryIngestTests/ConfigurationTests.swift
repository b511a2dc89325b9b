import Foundation
import TelemetryCore
@testable import TelemetryIngest
import Testing

struct ConfigurationTests {
    @Test func seedProductionConfigIsAccepted() throws {
        // http/server_config.json as the seed shipped it (spec/raw-log.md §7.3).
        let json = """
        {"motd": "Telemetry Server (production)", "port": 8080, "max_data_length": 204800, "max_path_length": 10240,
         "log_path": "/mnt/telemetry/data", "max_log_age_ms": 300000, "max_log_size": 524288000,
         "include_request_ip": true, "some_unknown_key": [1, 2]}
        """
        let c = try IngestConfiguration().applyingConfigJSON(Data(json.utf8), source: "server_config.json")
        #expect(c.motd == "Telemetry Server (production)")
        #expect(c.port == 8080 && c.limits.maxDataBytes == 204_800 && c.limits.maxPathBytes == 10_240)
        #expect(c.logPath == "/mnt/telemetry/data" && c.maxLogAge == .milliseconds(300_000) && c.maxLogBytes == 524_288_000)
        #expect(c.includeRequestIP && c.version == .v2)
        #expect(c.urlPrefix == "/submit/telemetry/" && c.logBase == "telemetry.log" && c.statsLogFile == nil)
    }

    @Test func defaultsAreTheSeeds() {
        let c = IngestConfiguration()
        #expect(c.port == 8080 && c.host == "127.0.0.1" && c.urlPrefix == "/submit/telemetry/")
        #expect(c.limits == RawLogLimits(maxPathBytes: 10_240, maxDataBytes: 204_800, maxIPBytes: 100))
        #expect(c.maxLogBytes == 524_288_000 && c.maxLogAge == .milliseconds(300_000))
        #expect(!c.includeRequestIP && c.logBase == "telemetry.log" && c.fsync == .interval && c.fsyncInterval == .seconds(1))
    }

    /// Every slow-client default is at most 30 s (issue 18 item 1); the connection cap follows RLIMIT_NOFILE.
    @Test func slowClientDefaultsAndTheConnectionCap() throws {
        let c = IngestConfiguration()
        #expect(c.headTimeout == .seconds(10) && c.requestTimeout == .seconds(30) && c.idleTimeout == .seconds(30))
        #expect(c.minBytesPerSecond == 500 && c.minRateGrace == .seconds(5) && c.minRateWindow == .seconds(5))
        #expect([c.headTimeout, c.requestTimeout, c.idleTimeout, c.minRateGrace + c.minRateWindow].allSatisfy { $0 <= .seconds(30) })
        #expect(c.maxConnections == nil)
        #expect(IngestConfiguration.defaultMaxConnections(openFileLimit: 256, eventLoopThreads: 2, writers: 1) == 180)
        #expect(IngestConfiguration.defaultMaxConnections(openFileLimit: 1_024, eventLoopThreads: 2, writers: 1) == 948)
        #expect(IngestConfiguration.defaultMaxConnections(openFileLimit: 1_048_576, eventLoopThreads: 8, writers: 1) == 10_000)
        #expect(IngestConfiguration.defaultMaxConnections(openFileLimit: 64, eventLoopThreads: 2, writers: 1) == 16)
        #expect(IngestConfiguration.defaultMaxConnections(openFileLimit: Int.max, eventLoopThreads: 2, writers: 1) == 10_000)
        #expect(c.effectiveMaxConnections == IngestConfiguration.defaultMaxConnections(
            openFileLimit: IngestConfiguration.openFileLimit(), eventLoopThreads: c.eventLoopThreads, writers: c.writers))
        var capped = c
        capped.maxConnections = 7
        #expect(capped.effectiveMaxConnections == 7)

        let json = #"{"head_timeout_ms":2000,"min_bytes_per_second":0,"min_rate_grace_ms":100,"min_rate_window_ms":300,"max_connections":64}"#
        let file = try IngestConfiguration().applyingConfigJSON(Data(json.utf8), source: "c")
        #expect(file.headTimeout == .seconds(2) && file.minBytesPerSecond == 0 && file.minRateGrace == .milliseconds(100))
        #expect(file.minRateWindow == .milliseconds(300) && file.maxConnections == 64)
        for change in [{ (c: inout IngestConfiguration) in c.headTimeout = .zero }, { $0.minBytesPerSecond = -1 },
                       { $0.minRateWindow = .zero }, { $0.minRateGrace = .milliseconds(-1) }, { $0.maxConnections = 0 }] {
            var bad = IngestConfiguration()
            change(&bad)
            #expect(throws: IngestError.self) { try bad.validate() }
        }
    }

    @Test func engineKeysAndWrongTypes() throws {
        let c = try IngestConfiguration().applyingConfigJSON(Data(#"{"fsync":"always","writers":2,"stats_log_file":"s.log"}"#.utf8), source: "c")
        #expect(c.fsync == .always && c.writers == 2 && c.statsLogFile == "s.log")
        #expect(throws: IngestError.self) { try IngestConfiguration().applyingConfigJSON(Data(#"{"port":"80"}"#.utf8), source: "c") }
        #expect(throws: IngestError.self) { try IngestConfiguration().applyingConfigJSON(Data(#"{"fsync":"sometimes"}"#.utf8), source: "c") }
        #expect(throws: IngestError.self) { try IngestConfiguration().applyingConfigJSON(Data("[1]".utf8), source: "c") }
        #expect(throws: IngestError.self) { try IngestConfiguration().applyingConfigFile("/nonexistent/config.json") }
    }

    @Test func limitsAboveTheFormatCeilingsAreClamped() {
        var c = IngestConfiguration()
        c.limits = RawLogLimits(maxPathBytes: 70_000, maxDataBytes: 5_000_000_000, maxIPBytes: 300)
        let (clamped, messages) = c.clampedToCeilings()
        #expect(clamped.limits == RawLogLimits(maxPathBytes: 65_535, maxDataBytes: 4_294_967_295, maxIPBytes: 255))
        #expect(messages.contains("Max supported value for 'max_path_length' is 65535 (you specified 70000). Using 65535."))
        #expect(messages.count == 3)
    }

    @Test func outOfRangeValuesAreRejected() {
        for change in [{ (c: inout IngestConfiguration) in c.port = 70_000 }, { $0.writers = 0 }, { $0.urlPrefix = "submit" },
                       { $0.maxLogBytes = 0 }, { $0.logBase = "a/b" }, { $0.limits.maxIPBytes = 3 }] {
            var c = IngestConfiguration()
            change(&c)
            #expect(throws: IngestError.self) { try c.validate() }
        }
    }

    @Test func statsTimestampsAndStrings() {
        #expect(iso8601(milliseconds: 1_378_846_997_217) == "2013-09-10T21:03:17.217Z")
        var out = ""
        appendJSONString("a\"b\\c\n\u{1}é", to: &out)
        #expect(out == #""a\"b\\c\n\u0001é""#)
    }
}
