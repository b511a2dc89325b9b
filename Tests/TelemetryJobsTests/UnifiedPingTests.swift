import Foundation
import Testing
@testable import TelemetryJobs
import TelemetryStore
import TelemetryTestSupport

/// A store with one classic and one unified (version 4) ping: OS distribution reports the unified ping by
/// document id (the seed's KeyError on `info.OS`); histogram jobs find `payload.histograms`; twins agree.
struct UnifiedPingTests {
    static let classic = #"{"ver":2,"info":{"OS":"WINNT","reason":"saved-session"},"histograms":{"B":[3,4,1,-1,-1,0,0],"E":[1,2,7,1.5,2.5,-1,-1]}}"#
    static let unified = #"{"version":4,"type":"main","payload":{"info":{"reason":"saved-session"},"histograms":{"B":[1,1,9,-1,-1,0,0]}},"environment":{"system":{"os":{"name":"Linux"}}}}"#

    static func store() throws -> ImportedStore {
        let directory = TemporaryDirectory("jobs-unified")
        _ = try directory.write("storage/saved_session/Firefox/nightly/39.0a1/20150309030224.20150311.v2.log.00000000000000000000000000000001",
                                text: "classic-1\t\(classic)\nunified-1\t\(unified)\n")
        let store = try ImportedStore(root: directory.path + "/storage")
        _ = directory   // keep the tree until imported
        return store
    }

    @Test func unifiedPingIsReportedByOSDistributionAndTwinsAgree() async throws {
        let store = try Self.store()
        let os = try await JobRunner.run(OSDistributionJob(), storePath: store.path)
        #expect(os.records == [OutputRecord(key: "WINNT", value: "1")])
        #expect(os.badPings.map(\.documentID) == ["unified-1"])
        #expect(os.badPings.first?.message.contains("KeyError") == true)
        #expect(os.records == (try store.twin("job_os_distribution.sql")))
        await #expect(throws: JobError.self) {
            try await JobRunner.run(OSDistributionJob(), storePath: store.path, options: JobOptions(failFast: true))
        }

        let histograms = try await JobRunner.run(HistogramDistributionJob(), storePath: store.path)
        #expect(histograms.records == [OutputRecord(key: "B", value: "[4,5,10,-1,-1,0,0]")])
        #expect(histograms.records == (try store.twin("job_histogram_distribution.sql")))
        let byChannel = try await JobRegistry.entry(named: "histogram-by-channel").run(["--histogram", "B"], store.path, JobOptions())
        #expect(byChannel.records == [OutputRecord(key: "nightly", value: "[4,5,10,-1,-1,0,0]")])
        #expect(byChannel.records == (try store.twin("job_histogram_by_channel.sql", parameters: ["histogram": .text("B")])))
    }
}
