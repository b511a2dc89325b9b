import Foundation
import TelemetryCore

/// Which job produced (or may merge) a partial result: name, version and the job's own arguments.
///
/// Built-in jobs: their registry name and `JobRegistry.Entry.version`. Job scripts: the file's name
/// (`MyJob.swift`) and the FNV-1a 64 of its source, so an edited script refuses the partials of the old one.
public struct JobIdentity: Sendable, Equatable, Codable {
    public var name: String
    public var version: String
    public var arguments: [String]
    public init(name: String, version: String, arguments: [String]) {
        self.name = name
        self.version = version
        self.arguments = arguments
    }
}

/// The shard a partial result covers: `index` of `count` (0-based), and the attempt that computed it.
///
/// A merge needs every index `0 ..< count` exactly once; the attempt is recorded (Spark's task attempt number)
/// so that two attempts of one shard are recognised as duplicates, not added.
public struct PartialShard: Sendable, Equatable, Codable {
    public var index: Int
    public var count: Int
    public var attempt: Int
    public init(index: Int = 0, count: Int = 1, attempt: Int = 0) {
        self.index = index
        self.count = count
        self.attempt = attempt
    }

    /// Parses `I/N` (0 ≤ I < N).
    /// - Throws: `JobError.badArguments` otherwise.
    public init(parsing text: String, attempt: Int = 0) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1, index >= 0, index < count,
              attempt >= 0 else {
            throw JobError.badArguments(job: "partial", message: "--shard must be I/N with 0 <= I < N (got '\(text)')")
        }
        self.init(index: index, count: count, attempt: attempt)
    }
}

/// One partial result to merge: its bytes and where they came from (a file name, or `<stdin>`), for messages.
public struct PartialInput: Sendable {
    public var source: String
    public var data: Data
    public init(source: String, data: Data) {
        self.source = source
        self.data = data
    }
}

/// A partial result that cannot be merged. Every case names the partial (file or `<stdin>`).
public enum PartialError: Error, CustomStringConvertible, Equatable {
    case noPartials
    case empty(source: String)
    case notAPartial(source: String, reason: String)
    case unsupportedFormatVersion(source: String, found: Int)
    case otherJob(source: String, found: JobIdentity, expected: JobIdentity)
    case truncated(source: String, reason: String)
    case damaged(source: String, line: Int, reason: String)
    case mismatch(source: String, field: String, reference: String)
    case duplicateShard(index: Int, count: Int, sources: [String])
    case missingShards(indexes: [Int], count: Int)

    public var description: String {
        switch self {
        case .noPartials: "no partial results to merge (no files given and standard input is empty)"
        case let .empty(source): "\(source): empty (not a partial result)"
        case let .notAPartial(source, reason): "\(source): not a telemetry job partial result (\(reason))"
        case let .unsupportedFormatVersion(source, found):
            "\(source): partial format version \(found) is not supported (this telemetry reads version \(JobPartialFormat.formatVersion))"
        case let .otherJob(source, found, expected):
            if found.name != expected.name || found.version != expected.version {
                "\(source): a partial of job \(found.name) version \(found.version), not of \(expected.name) version \(expected.version)"
            } else {
                "\(source): a partial of \(found.name) with arguments [\(found.arguments.joined(separator: " "))], not [\(expected.arguments.joined(separator: " "))]"
            }
        case let .truncated(source, reason): "\(source): truncated partial result (\(reason))"
        case let .damaged(source, line, reason): "\(source):\(line): damaged partial result (\(reason))"
        case let .mismatch(source, field, reference): "\(source): \(field) differs from \(reference)'s: partials of different runs cannot be merged"
        case let .duplicateShard(index, count, sources):
            "shard \(index)/\(count) appears more than once (\(sources.joined(separator: ", "))): merging both would count its pings twice"
        case let .missingShards(indexes, count):
            "missing shard(s) \(indexes.prefix(20).map { "\($0)/\(count)" }.joined(separator: ", "))\(indexes.count > 20 ? ", …" : ""): the merge would leave out their pings"
        }
    }
}

/// The partial-result format (docs/jobs.md "Partial results"): JSON lines, UTF-8.
///
/// Line 1, the header: `{"format": "telemetry-job-partial", "format_version": 1, "job": {name, version, arguments},
/// "filter": JSON text or null, "where": SQL or null, "schema": [dimension field names], "map_only": Bool,
/// "shard": {index, count, attempt}, "pings_mapped", "partitions", "combine_calls", "bad_pings": [{document_id, message}]}`.
/// Then one record line per key, `{"key": K, "values": [V…]}` (the key's combined state: one value when the job
/// combines), or per emitted pair of a map-only job in ping order. Last, `{"end": {"records": N, "fnv1a64": "hex"}}`:
/// the record count and the FNV-1a 64 of every byte before the end line, so a truncated or altered file is refused.
public enum JobPartialFormat {
    public static let formatName = "telemetry-job-partial"
    public static let formatVersion = 1

    struct Header: Codable {
        var format: String
        var formatVersion: Int
        var job: JobIdentity
        var filter: String?
        var whereSQL: String?
        var schema: [String]
        var mapOnly: Bool
        var shard: PartialShard
        var pingsMapped: Int
        var partitions: Int
        var combineCalls: Int
        var badPings: [BadPingRecord]

        enum CodingKeys: String, CodingKey {
            case format, formatVersion = "format_version", job, filter, whereSQL = "where", schema, mapOnly = "map_only", shard
            case pingsMapped = "pings_mapped", partitions, combineCalls = "combine_calls", badPings = "bad_pings"
        }

        /// Every field, `filter` and `where` as null when absent (self-describing: a reader sees there was none).
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(format, forKey: .format)
            try container.encode(formatVersion, forKey: .formatVersion)
            try container.encode(job, forKey: .job)
            try container.encode(filter, forKey: .filter)
            try container.encode(whereSQL, forKey: .whereSQL)
            try container.encode(schema, forKey: .schema)
            try container.encode(mapOnly, forKey: .mapOnly)
            try container.encode(shard, forKey: .shard)
            try container.encode(pingsMapped, forKey: .pingsMapped)
            try container.encode(partitions, forKey: .partitions)
            try container.encode(combineCalls, forKey: .combineCalls)
            try container.encode(badPings, forKey: .badPings)
        }
    }

    struct BadPingRecord: Codable {
        var documentID: String
        var message: String
        enum CodingKeys: String, CodingKey { case documentID = "document_id", message }
    }

    struct Record<Key: Codable, Value: Codable>: Codable {
        var key: Key
        var values: [Value]
    }

    struct End: Codable {
        struct Body: Codable {
            var records: Int
            var fnv1a64: String
        }
        var end: Body
    }

    /// A validated partial: header and the byte ranges of its record lines.
    struct Parsed {
        var source: String
        var header: Header
        var data: Data
        var records: [Range<Int>]
        var firstRecordLine: Int { 2 }
    }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// Writes header, records and end line.
    static func encode<Key: Codable, Value: Codable>(header: Header, records: [(Key, [Value])]) throws -> Data {
        let encoder = encoder()
        var data = try encoder.encode(header)
        data.append(0x0A)
        for (key, values) in records {
            data.append(try encoder.encode(Record(key: key, values: values)))
            data.append(0x0A)
        }
        data.append(try encoder.encode(End(end: .init(records: records.count, fnv1a64: hash(data[...])))))
        data.append(0x0A)
        return data
    }

    static func hash(_ bytes: Data.SubSequence) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(value, radix: 16)
    }

    /// Checks one partial's framing: header, end line, record count, checksum.
    static func parse(_ input: PartialInput) throws -> Parsed {
        let data = input.data
        let source = input.source
        guard !data.isEmpty else { throw PartialError.empty(source: source) }
        var lines: [Range<Int>] = []
        var start = data.startIndex
        while start < data.endIndex {
            guard let newline = data[start...].firstIndex(of: 0x0A) else {
                throw PartialError.truncated(source: source, reason: "the last line has no line feed")
            }
            lines.append(start..<newline)
            start = newline + 1
        }
        let decoder = JSONDecoder()
        guard let first = lines.first, let header = try? decoder.decode(Header.self, from: data[first]) else {
            if let first = lines.first, let object = try? JSONSerialization.jsonObject(with: data[first]) as? [String: Any],
               object["format"] as? String == formatName, let version = object["format_version"] as? Int, version != formatVersion {
                throw PartialError.unsupportedFormatVersion(source: source, found: version)
            }
            throw PartialError.notAPartial(source: source, reason: "the first line is not a partial header")
        }
        guard header.format == formatName else {
            throw PartialError.notAPartial(source: source, reason: "format is '\(header.format)'")
        }
        guard header.formatVersion == formatVersion else {
            throw PartialError.unsupportedFormatVersion(source: source, found: header.formatVersion)
        }
        guard header.shard.count >= 1, header.shard.index >= 0, header.shard.index < header.shard.count, header.shard.attempt >= 0,
              header.pingsMapped >= 0, header.partitions >= 0, header.combineCalls >= 0 else {
            throw PartialError.damaged(source: source, line: 1, reason: "impossible shard or counts in the header")
        }
        guard lines.count >= 2, let last = lines.last, let end = try? decoder.decode(End.self, from: data[last]) else {
            throw PartialError.truncated(source: source, reason: "no end line after \(lines.count) line(s)")
        }
        let records = Array(lines[1..<(lines.count - 1)])
        guard end.end.records == records.count else {
            throw PartialError.truncated(source: source, reason: "\(records.count) record(s), the end line says \(end.end.records)")
        }
        guard hash(data[data.startIndex..<last.lowerBound]) == end.end.fnv1a64 else {
            throw PartialError.truncated(source: source, reason: "checksum mismatch: the content was changed or cut")
        }
        return Parsed(source: source, header: header, data: data, records: records)
    }

    /// Parses every input and checks they are the complete, non-overlapping shards of one run of `identity`.
    /// - Returns: the partials in shard order.
    static func validate(_ inputs: [PartialInput], identity: JobIdentity, mapOnly: Bool) throws -> [Parsed] {
        guard !inputs.isEmpty else { throw PartialError.noPartials }
        let parsed = try inputs.map(parse)
        for partial in parsed {
            let found = partial.header.job
            guard found.name == identity.name, found.version == identity.version else {
                throw PartialError.otherJob(source: partial.source, found: found, expected: identity)
            }
            guard partial.header.mapOnly == mapOnly else {
                throw PartialError.damaged(source: partial.source, line: 1, reason: "map_only is \(partial.header.mapOnly), the job's is \(mapOnly)")
            }
        }
        let reference = parsed[0]
        for partial in parsed.dropFirst() {
            let (a, b) = (partial.header, reference.header)
            let field: String? = a.job.arguments != b.job.arguments ? "the job arguments"
                : a.filter != b.filter ? "the filter"
                : a.whereSQL != b.whereSQL ? "--where"
                : a.schema != b.schema ? "the store schema"
                : a.shard.count != b.shard.count ? "the shard count" : nil
            if let field { throw PartialError.mismatch(source: partial.source, field: field, reference: reference.source) }
        }
        let count = reference.header.shard.count
        var byIndex: [Int: [String]] = [:]
        for partial in parsed { byIndex[partial.header.shard.index, default: []].append(partial.source) }
        if let duplicate = byIndex.filter({ $0.value.count > 1 }).min(by: { $0.key < $1.key }) {
            throw PartialError.duplicateShard(index: duplicate.key, count: count, sources: duplicate.value)
        }
        let missing = (0..<count).filter { byIndex[$0] == nil }
        guard missing.isEmpty else { throw PartialError.missingShards(indexes: missing, count: count) }
        return parsed.sorted { $0.header.shard.index < $1.header.shard.index }
    }
}

extension JobRunner {
    /// Map and combine over the selected pings, then the partial result instead of reducing (docs/jobs.md
    /// "Partial results"): per key its combined state (one value when the job combines), or a map-only job's pairs.
    /// - Returns: the partial's bytes and the run's counts (`records` empty; `partial records` in the summary).
    /// - Throws: as `run`.
    public static func partial<J: Job>(_ job: J, identity: JobIdentity, storePath: String, options: JobOptions = JobOptions(),
                                       shard: PartialShard = PartialShard()) async throws -> (data: Data, result: JobResult) {
        var gathered = try await gather(job, storePath: storePath, options: options)
        if usesCombine(job, options) {
            for slot in gathered.lists.indices where gathered.lists[slot].count > 1 {
                gathered.lists[slot] = [try combined(job, gathered.keys[slot], gathered.lists[slot])]
                gathered.combineCalls += 1
            }
        }
        let header = JobPartialFormat.Header(
            format: JobPartialFormat.formatName, formatVersion: JobPartialFormat.formatVersion, job: identity,
            filter: options.selection.filter.map { String(decoding: $0.jsonData(), as: UTF8.self) },
            whereSQL: options.selection.whereSQL, schema: try storeSchema(storePath).fieldNames, mapOnly: job.isMapOnly,
            shard: shard, pingsMapped: gathered.pingsMapped, partitions: gathered.partitions, combineCalls: gathered.combineCalls,
            badPings: gathered.badPings.map { .init(documentID: $0.documentID, message: $0.message) })
        let records: [(J.Key, [J.Value])] = job.isMapOnly ? gathered.pairs.map { ($0.0, [$0.1]) } : Array(zip(gathered.keys, gathered.lists))
        let data = try JobPartialFormat.encode(header: header, records: records)
        let result = JobResult(records: [], fieldSeparator: "\t", recordSeparator: "\n", pingsMapped: gathered.pingsMapped,
                               badPings: gathered.badPings, combineCalls: gathered.combineCalls, partitions: gathered.partitions)
        return (data, result)
    }

    /// The final combine and reduce over the partials of every shard of one run: what `run` over all the shards'
    /// pings gives (records, separators, counts, bad pings in shard order).
    /// - Throws: `PartialError` (another job or version, truncated or damaged input, a duplicated or missing shard,
    ///   partials of different runs), `JobError.reduceFailed`.
    public static func merge<J: Job>(_ job: J, identity: JobIdentity, partials: [PartialInput]) throws -> JobResult {
        let parsed = try JobPartialFormat.validate(partials, identity: identity, mapOnly: job.isMapOnly)
        var gathered = Gathered<J.Key, J.Value>()
        let decoder = JSONDecoder()
        for partial in parsed {
            let header = partial.header
            gathered.pingsMapped += header.pingsMapped
            gathered.partitions += header.partitions
            gathered.combineCalls += header.combineCalls
            gathered.badPings += header.badPings.map { BadPing(documentID: $0.documentID, message: $0.message) }
            for (offset, range) in partial.records.enumerated() {
                let record: JobPartialFormat.Record<J.Key, J.Value>
                do { record = try decoder.decode(JobPartialFormat.Record<J.Key, J.Value>.self, from: partial.data[range]) } catch {
                    throw PartialError.damaged(source: partial.source, line: partial.firstRecordLine + offset,
                                               reason: "not a record of \(identity.name): \(Self.decodingMessage(error))")
                }
                if job.isMapOnly {
                    guard record.values.count == 1 else {
                        throw PartialError.damaged(source: partial.source, line: partial.firstRecordLine + offset,
                                                   reason: "a map-only record holds one value, not \(record.values.count)")
                    }
                    gathered.pairs.append((record.key, record.values[0]))
                } else {
                    guard !record.values.isEmpty else {
                        throw PartialError.damaged(source: partial.source, line: partial.firstRecordLine + offset, reason: "a key with no values")
                    }
                    try gathered.add(job, key: record.key, values: record.values, combine: job.hasCombine)
                }
            }
        }
        return try reduce(job, gathered)
    }

    static func decodingMessage(_ error: any Error) -> String {
        switch error {
        case let DecodingError.dataCorrupted(context), let DecodingError.typeMismatch(_, context),
             let DecodingError.valueNotFound(_, context), let DecodingError.keyNotFound(_, context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default: return "\(error)"
        }
    }
}

/// A job with its identity, type-erased: what the CLI and the REPL run, write partials of and merge.
public struct AnyJob: Sendable {
    public let identity: JobIdentity
    private let runBody: @Sendable (String, JobOptions) async throws -> JobResult
    private let partialBody: @Sendable (String, JobOptions, PartialShard) async throws -> (data: Data, result: JobResult)
    private let mergeBody: @Sendable ([PartialInput]) throws -> JobResult

    public init<J: Job>(_ job: J, identity: JobIdentity) {
        self.identity = identity
        runBody = { path, options in try await JobRunner.run(job, storePath: path, options: options) }
        partialBody = { path, options, shard in
            try await JobRunner.partial(job, identity: identity, storePath: path, options: options, shard: shard)
        }
        mergeBody = { partials in try JobRunner.merge(job, identity: identity, partials: partials) }
    }

    /// Runs the job over the store at `storePath` (`JobRunner.run`).
    public func run(storePath: String, options: JobOptions) async throws -> JobResult { try await runBody(storePath, options) }

    /// Map and combine only; the partial result's bytes (`JobRunner.partial`).
    public func partial(storePath: String, options: JobOptions, shard: PartialShard) async throws -> (data: Data, result: JobResult) {
        try await partialBody(storePath, options, shard)
    }

    /// Final combine and reduce over partials (`JobRunner.merge`).
    public func merge(_ partials: [PartialInput]) throws -> JobResult { try mergeBody(partials) }
}

extension JobPartialFormat {
    /// The job (name, version, arguments) that wrote `input`, after checking its framing.
    /// - Throws: `PartialError` when `input` is not a complete partial result.
    public static func identity(of input: PartialInput) throws -> JobIdentity { try parse(input).header.job }
}

extension JobPartialFormat {
    /// Splits concatenated partials (e.g. `cat *.partial` on standard input) after each end line; bytes after the
    /// last end line form a last piece of their own (which then fails as truncated). Empty input gives none.
    /// Pieces are named `<source> partial N` when there are several.
    public static func split(_ data: Data, source: String) -> [PartialInput] {
        let marker = Data("{\"end\":".utf8)
        var pieces: [Data] = []
        var pieceStart = data.startIndex
        var lineStart = data.startIndex
        while lineStart < data.endIndex {
            let newline = data[lineStart...].firstIndex(of: 0x0A) ?? data.endIndex
            let next = newline < data.endIndex ? newline + 1 : newline
            if data[lineStart..<newline].starts(with: marker) {
                pieces.append(Data(data[pieceStart..<next]))
                pieceStart = next
            }
            lineStart = next
        }
        if pieceStart < data.endIndex { pieces.append(Data(data[pieceStart...])) }
        if pieces.count == 1 { return [PartialInput(source: source, data: pieces[0])] }
        return pieces.enumerated().map { PartialInput(source: "\(source) partial \($0.offset + 1)", data: $0.element) }
    }
}
