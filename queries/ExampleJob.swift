// An example job script: pings per (OS, channel), the seed's `python -m mapreduce.job my_job.py`.
// Run it with:  telemetry job queries/ExampleJob.swift [--filter FILE] [--where SQL] [--format csv]
// The script declares its job as the global `telemetryJob`; `telemetry job` compiles the file against
// TelemetryJobs (docs/jobs.md), caches the library by content hash and runs it like a built-in.
import TelemetryJobs

struct OSChannelJob: Job {
    var hasCombine: Bool { true }

    func map(_ ping: JobPing, into context: inout MapContext<String, Int>) throws {
        let os = try ping.payload()["info"]?["OS"]?.stringValue ?? "UNKNOWN"
        let channel = ping.dimensions.count > 2 ? ping.dimensions[2] : "UNKNOWN"
        context.write("\(os)/\(channel)", 1)
    }

    func combine(key: String, values: [Int]) throws -> Int { values.reduce(0, +) }

    func reduce(key: String, values: [Int], into context: inout OutputContext) throws {
        context.write(key, values.reduce(0, +))
    }
}

let telemetryJob = OSChannelJob()
