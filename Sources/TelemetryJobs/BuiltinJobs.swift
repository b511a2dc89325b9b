import TelemetryConvert
import TelemetryCore
import TelemetryStore

/// Pings per submission day: `map` writes `(dimensions[-1], 1)` (the seed's last dimension,
/// `submission_date` in the seed schema); combine and reduce sum. Twin: `queries/job_pings_per_day.sql`.
public struct PingsPerDayJob: Job {
    public init() {}
    public var hasCombine: Bool { true }
    public func map(_ ping: JobPing, into context: inout MapContext<String, Int64>) throws {
        guard ping.dimensionCount > 0 else { throw PingError("ping has no dimensions") }
        context.write(ping.dimension(ping.dimensionCount - 1), 1)
    }
    public func combine(key: String, values: [Int64]) throws -> Int64 { values.reduce(0, +) }
    public func reduce(key: String, values: [Int64], into context: inout OutputContext) throws {
        context.write(key, values.reduce(0, +))
    }
}

/// OS distribution: `map` writes `(info.OS, 1)` (from the ping index: no payload read); a ping without
/// `info.OS` (e.g. a unified main ping) throws, like the seed's KeyError, and is reported.
/// Twin: `queries/job_os_distribution.sql`.
public struct OSDistributionJob: Job {
    public init() {}
    public var hasCombine: Bool { true }
    public func map(_ ping: JobPing, into context: inout MapContext<String, Int64>) throws {
        guard let os = try ping.info("OS") else { throw PingError("KeyError: 'OS' (no info.OS)") }
        context.write(os, 1)
    }
    public func combine(key: String, values: [Int64]) throws -> Int64 { values.reduce(0, +) }
    public func reduce(key: String, values: [Int64], into context: inout OutputContext) throws {
        context.write(key, values.reduce(0, +))
    }
}

/// Distribution of enumerated/boolean histograms: per histogram name, the element-wise sum of bucket counts over all
/// pings. The kind comes from the definition in the ping's revision (`info.revision`) when the store remembers a
/// histogram cache (`StoreHistogramDefinitions`): kinds `enumerated`, `boolean` and `flag` are counted. Where no
/// definition is available (no cache, revision not cached, unknown name), the stored statistics decide: `log_sum`
/// and `log_sum_squares` both -1 means a non-exponential histogram (linear, boolean, flag or enumerated — the storage
/// converter writes log sums only for exponential ones). Twin: `queries/job_histogram_distribution.sql`.
public struct HistogramDistributionJob: Job {
    /// Kinds counted when the definition is known.
    public static let countedKinds: Set<HistogramKind> = [.enumerated, .boolean, .flag]
    let definitions: StoreHistogramDefinitions?
    public init(definitions: StoreHistogramDefinitions? = nil) {
        self.definitions = definitions.flatMap { $0.setting.isEmpty ? nil : $0 }
    }
    public var hasCombine: Bool { true }
    public func map(_ ping: JobPing, into context: inout MapContext<String, HistogramLayoutSums>) throws {
        let revision = definitions == nil ? nil : try ping.info("revision")
        for (name, histogram) in try ping.histograms() where !histogram.buckets.isEmpty {
            if let definitions, case let .bounds(definition) = definitions.bounds(forHistogram: name, revisionURL: revision,
                                                                                    bucketCount: histogram.buckets.count) {
                guard Self.countedKinds.contains(definition.kind) else { continue }
            } else if !histogram.isLinearFamily {
                continue
            }
            context.write(name, HistogramLayoutSums(try histogram.accumulated()))
        }
    }
    public func combine(key: String, values: [HistogramLayoutSums]) throws -> HistogramLayoutSums { try Self.sum(values) }
    public func reduce(key: String, values: [HistogramLayoutSums], into context: inout OutputContext) throws {
        Self.write(key, try Self.sum(values), into: &context)
    }
    static func sum(_ values: [HistogramLayoutSums]) throws -> HistogramLayoutSums {
        var total = HistogramLayoutSums()
        for value in values { try total.merge(value) }
        return total
    }
    /// One row per layout (`HistogramLayoutSums.rows(key:)`): the storage-format sum array.
    static func write(_ key: String, _ sums: HistogramLayoutSums, into context: inout OutputContext) {
        for row in sums.rows(key: key) { context.write(row.key, row.value) }
    }
}

/// Duplicate finder: `map` writes `(document id "/" ping type, 1)` (the ping type is the schema's
/// `pingTypeField`, `reason`; the key is the document id alone when the schema has none); reduce writes the
/// keys seen more than once with their count. Two pings of different types that share a document id are not
/// duplicates (docs/store.md "Duplicates"). Twin: `queries/job_duplicate_ids.sql`.
public struct DuplicateIDsJob: Job {
    public init() {}
    public var hasCombine: Bool { true }
    public func map(_ ping: JobPing, into context: inout MapContext<String, Int64>) throws {
        let type = DimensionSchema.pingTypeFields.lazy.compactMap { ping.dimension(named: $0) }.first
        context.write(type.map { ping.documentID + "/" + $0 } ?? ping.documentID, 1)
    }
    public func combine(key: String, values: [Int64]) throws -> Int64 { values.reduce(0, +) }
    public func reduce(key: String, values: [Int64], into context: inout OutputContext) throws {
        let copies = values.reduce(0, +)
        if copies > 1 { context.write(key, copies) }
    }
}

/// Dimensions-only dump (map-only): writes `(document id, dimensions joined by "/")` per ping.
/// Twin: `queries/job_dimensions_dump.sql`.
public struct DimensionsDumpJob: Job {
    public init() {}
    public var isMapOnly: Bool { true }
    public func map(_ ping: JobPing, into context: inout MapContext<String, String>) throws {
        context.write(ping.documentID, ping.dimensions.joined(separator: "/"))
    }
}

/// One histogram summed per channel: key = the channel, value = summed buckets of `histogram` (top-level
/// `histograms` or `payload.histograms`, read from the column files when current). The channel is the
/// `appUpdateChannel` dimension (`channelIndex`; allowed values applied, e.g. `esr` → `OTHER`) or, when
/// `channelIndex` is nil, the payload's `info.appUpdateChannel` (pings without it are skipped).
/// Twins: `queries/job_histogram_by_channel.sql`, `queries/job_histogram_by_info_channel.sql`.
public struct HistogramByChannelJob: Job {
    public let histogram: String
    public let channelIndex: Int?
    public init(histogram: String, channelIndex: Int?) {
        self.histogram = histogram
        self.channelIndex = channelIndex
    }
    public var hasCombine: Bool { true }
    public func map(_ ping: JobPing, into context: inout MapContext<String, HistogramLayoutSums>) throws {
        guard let found = try ping.histogram(histogram), !found.buckets.isEmpty else { return }
        if let channelIndex {
            guard channelIndex < ping.dimensionCount else { throw PingError("ping has no channel dimension") }
            context.write(ping.dimension(channelIndex), HistogramLayoutSums(try found.accumulated()))
        } else if let channel = try ping.info("appUpdateChannel") {
            context.write(channel, HistogramLayoutSums(try found.accumulated()))
        }
    }
    public func combine(key: String, values: [HistogramLayoutSums]) throws -> HistogramLayoutSums { try HistogramDistributionJob.sum(values) }
    public func reduce(key: String, values: [HistogramLayoutSums], into context: inout OutputContext) throws {
        HistogramDistributionJob.write(key, try HistogramDistributionJob.sum(values), into: &context)
    }
}

/// Built-in jobs by name.
public enum JobRegistry {
    /// One registered job.
    public struct Entry: Sendable {
        public var name: String
        /// The job's version, recorded in its partial results: bump it when `map`, `combine` or `reduce` change
        /// meaning or the value type changes shape, so that merging refuses partials written by the old code.
        public var version: Int
        public var summary: String
        /// Usage of the job's own arguments, e.g. `--histogram NAME`.
        public var usage: String
        /// Makes the job from its arguments. `storePath` is the store `map` will read, nil when only merging partials
        /// (then nothing store-dependent is looked up: it matters to `map` only).
        public var make: @Sendable (_ arguments: [String], _ storePath: String?) throws -> AnyJob

        init(name: String, version: Int = 1, summary: String, usage: String,
             make: @escaping @Sendable (_ identity: JobIdentity, _ arguments: [String], _ storePath: String?) throws -> AnyJob) {
            self.name = name
            self.version = version
            self.summary = summary
            self.usage = usage
            self.make = { arguments, path in
                try make(JobIdentity(name: name, version: String(version), arguments: arguments), arguments, path)
            }
        }

        /// The identity partials of this job with `arguments` carry.
        public func identity(arguments: [String]) -> JobIdentity {
            JobIdentity(name: name, version: String(version), arguments: arguments)
        }

        /// Runs the job with its arguments against the store.
        public func run(_ arguments: [String], _ storePath: String, _ options: JobOptions) async throws -> JobResult {
            try await make(arguments, storePath).run(storePath: storePath, options: options)
        }
    }

    public static let entries: [Entry] = [
        Entry(name: "pings-per-day", summary: "pings per submission day (last dimension)", usage: "") { identity, args, _ in
            try noArguments(identity.name, args)
            return AnyJob(PingsPerDayJob(), identity: identity)
        },
        Entry(name: "os-distribution", summary: "pings per info.OS; pings without it are reported", usage: "") { identity, args, _ in
            try noArguments(identity.name, args)
            return AnyJob(OSDistributionJob(), identity: identity)
        },
        Entry(name: "histogram-distribution",
              summary: "summed buckets of each enumerated/boolean histogram (kinds from the remembered histogram cache, else the stored statistics)",
              usage: "") { identity, args, path in
            try noArguments(identity.name, args)
            let definitions = try path.map { try StoreHistogramDefinitions(store: Store(path: $0, create: false, readOnly: true)) }
            return AnyJob(HistogramDistributionJob(definitions: definitions ?? nil), identity: identity)
        },
        Entry(name: "duplicate-ids", summary: "document ids seen more than once, with their copies", usage: "") { identity, args, _ in
            try noArguments(identity.name, args)
            return AnyJob(DuplicateIDsJob(), identity: identity)
        },
        Entry(name: "dimensions-dump", summary: "map-only: document id and its dimensions", usage: "") { identity, args, _ in
            try noArguments(identity.name, args)
            return AnyJob(DimensionsDumpJob(), identity: identity)
        },
        Entry(name: "histogram-by-channel",
              summary: "one histogram's buckets summed per channel (the appUpdateChannel dimension, or --by info: info.appUpdateChannel)",
              usage: "--histogram NAME [--by dimension|info]") { identity, args, path in
            let usage = JobError.badArguments(job: identity.name, message: "usage: histogram-by-channel --histogram NAME [--by dimension|info]")
            var histogram: String?, by = "dimension"
            var rest = args[...]
            while let option = rest.popFirst() {
                guard let value = rest.popFirst(), !value.isEmpty else { throw usage }
                switch option {
                case "--histogram": histogram = value
                case "--by" where value == "dimension" || value == "info": by = value
                default: throw usage
                }
            }
            guard let histogram else { throw usage }
            if let path { try knownHistogram(histogram, job: identity.name, storePath: path) }
            var channel: Int?
            if by == "dimension" {
                // Only `map` reads the channel dimension: merging partials needs no store.
                if let path {
                    guard let index = try storeSchema(path).fieldNames.firstIndex(of: "appUpdateChannel") else {
                        throw JobError.badArguments(job: identity.name, message: "the store has no appUpdateChannel dimension (use --by info)")
                    }
                    channel = index
                } else {
                    channel = 0
                }
            }
            return AnyJob(HistogramByChannelJob(histogram: histogram, channelIndex: channel), identity: identity)
        },
    ]

    /// The entry named `name`.
    /// - Throws: `JobError.unknownJob`.
    public static func entry(named name: String) throws -> Entry {
        guard let entry = entries.first(where: { $0.name == name }) else {
            throw JobError.unknownJob(name: name, known: entries.map(\.name))
        }
        return entry
    }

    /// Checks that the store has histogram `name` (when its column files are current: they list every name).
    /// - Throws: `JobError.badArguments` naming the closest names of the store (`UnknownHistogramError`).
    static func knownHistogram(_ name: String, job: String, storePath: String) throws {
        let store = try Store(path: storePath, create: false, readOnly: true)
        guard let columns = try? HistogramColumns.open(store: store, repair: false) else { return }   // payloads decide
        guard columns.column(named: name).isEmpty else { return }
        throw JobError.badArguments(job: job, message: "\(UnknownHistogramError(context: "--histogram", name: name, known: columns.names))")
    }

    static func noArguments(_ job: String, _ args: [String]) throws {
        guard args.isEmpty else { throw JobError.badArguments(job: job, message: "takes no arguments (got \(args.joined(separator: " ")))") }
    }
}
