import Foundation
import TelemetryCompression
import TelemetryCore

/// Options of a `telemetry convert` run.
public struct ConvertOptions: Sendable {
    public var schema: DimensionSchema = .seed
    /// Parallel input files.
    public var jobs = ProcessInfo.processInfo.activeProcessorCount
    /// Rotation size of output files, uncompressed bytes (`spec/storage.md` §3).
    public var maxFileBytes = 500_000_000
    /// xz preset of output files.
    public var preset: UInt32 = 0
    /// Per-record inflate limit.
    public var maxUncompressedBytes = 1_048_576
    /// Raw-log length limits (a preamble declaring more is corruption).
    public var limits = RawLogLimits.default
    public init() {}
}

/// Counts of a conversion run (`spec/payloads.md` §10.4). All counts are records unless named bytes.
public struct ConvertSummary: Sendable, Equatable {
    public var inputFiles = 0
    /// Records read (converted + rejected).
    public var processed = 0
    public var converted = 0
    /// Rejected records by category.
    public var failures: [RecordCategory: Int] = [:]
    /// Warnings: `unknown_histogram`, `definition_mismatch`, `duplicate_key` (records), `skipped_bytes` (records
    /// preceded by junk).
    public var warnings: [String: Int] = [:]
    /// Histogram names dropped as unknown, with the number of records that carried them.
    public var unknownHistograms: [String: Int] = [:]
    /// Histogram names converted with a declaration that differs from the definition.
    public var mismatchedHistograms: [String: Int] = [:]
    public var skippedBytes = 0
    /// Bytes of input files read.
    public var bytesIn = 0
    /// Uncompressed bytes of storage-format lines written.
    public var bytesOut = 0
    /// Compressed bytes published.
    public var compressedBytesOut = 0
    public var filesWritten: [String] = []
    /// Input files that could not be read at all, with the reason.
    public var inputErrors: [String] = []
    public var seconds = 0.0

    public var rejected: Int { failures.values.reduce(0, +) }

    mutating func merge(_ other: ConvertSummary) {
        inputFiles += other.inputFiles
        processed += other.processed
        converted += other.converted
        for (k, v) in other.failures { failures[k, default: 0] += v }
        for (k, v) in other.warnings { warnings[k, default: 0] += v }
        for (k, v) in other.unknownHistograms { unknownHistograms[k, default: 0] += v }
        for (k, v) in other.mismatchedHistograms { mismatchedHistograms[k, default: 0] += v }
        skippedBytes += other.skippedBytes
        bytesIn += other.bytesIn
        bytesOut += other.bytesOut
        compressedBytesOut += other.compressedBytesOut
        filesWritten += other.filesWritten
        inputErrors += other.inputErrors
    }
}

/// Progress of a conversion, polled by the caller.
public struct ConvertProgress: Sendable {
    public var filesDone = 0
    public var filesTotal = 0
    public var bytesDone = 0
    public var bytesTotal = 0
    public var records = 0
    public var rejected = 0
    public var elapsedSeconds = 0.0
}

/// Converts raw submission logs (and text files of `<document id>\t<json>` lines) into the storage layout
/// (`spec/raw-log.md`, `spec/payloads.md`, `spec/storage.md`): parallel over input files, one `StorageWriter` and
/// one `RecordConverter` per job, one shared `RevisionCache`. Rejected records go to
/// `<out>/errors/<input file name>.errors.jsonl` with their raw bytes (§10.4).
public final class Converter: @unchecked Sendable {   // immutable after init; run state is local to `run`
    public let options: ConvertOptions
    public let payloadConverter: PayloadConverter
    public let outputDirectory: String

    public init(outputDirectory: String, options: ConvertOptions, payloadConverter: PayloadConverter) {
        self.outputDirectory = outputDirectory
        self.options = options
        self.payloadConverter = payloadConverter
    }

    /// Converts `inputs` (files; directories are walked for regular files, hidden ones skipped).
    /// - Parameters:
    ///   - progress: called on the calling thread about 10 times a second.
    ///   - isCancelled: polled between records; the run stops, finished output is published.
    /// - Throws: `StorageWriteError` / `CompressionError` when the output cannot be written (the records
    ///   concerned are also counted `write_failed`).
    public func run(inputs: [String], progress: ((ConvertProgress) -> Void)? = nil,
                    isCancelled: @escaping @Sendable () -> Bool = { false }) throws -> ConvertSummary {
        let started = Date()
        let (files, skipped) = Self.expand(inputs)
        let state = RunState(files: files)
        state.summary.inputErrors += skipped.map(\.description)
        let jobCount = max(1, min(options.jobs, files.count))
        let group = DispatchGroup()
        for job in 0..<jobCount {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                self.work(job: job, state: state, isCancelled: isCancelled)
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        while group.wait(timeout: .now() + 0.1) == .timedOut {
            if let progress { progress(state.progress(started: started)) }
        }
        progress?(state.progress(started: started))
        var summary = state.summary
        summary.seconds = Date().timeIntervalSince(started)
        summary.filesWritten.sort()
        if let error = state.environmentError { throw error }
        return summary
    }

    /// Regular files under `inputs`, in a stable order, and the entries not opened (`InputFiles`: FIFOs, sockets,
    /// devices, dangling symlinks, symlinks out of their tree). A path that does not exist is kept as a file: its
    /// read fails and is reported as an input error.
    static func expand(_ inputs: [String]) -> (files: [String], skipped: [SkippedInput]) {
        var files: [String] = []
        var skipped: [SkippedInput] = []
        for input in inputs {
            var info = stat()
            guard lstat(input, &info) == 0 else { files.append(input); continue }
            switch InputFiles.kind(of: input, root: nil) {
            case .regularFile: files.append(input)
            case let .skipped(reason): skipped.append(SkippedInput(path: input, reason: reason))
            case .directory:
                let found = InputFiles.walk(root: input)
                files += found.files
                skipped += found.skipped
            }
        }
        return (files, skipped)
    }

    /// Shared run state, guarded by `lock`.
    final class RunState: @unchecked Sendable {   // every member below is read and written under `lock`
        let lock = NSLock()
        let files: [String]
        var next = 0
        var summary = ConvertSummary()
        var live = ConvertProgress()
        var environmentError: Error?

        init(files: [String]) {
            self.files = files
            live.filesTotal = files.count
            live.bytesTotal = files.reduce(0) { total, path in
                total + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
            }
        }

        func take() -> String? {
            lock.withLock {
                guard environmentError == nil, next < files.count else { return nil }
                defer { next += 1 }
                return files[next]
            }
        }

        func progress(started: Date) -> ConvertProgress {
            lock.withLock {
                var p = live
                p.elapsedSeconds = Date().timeIntervalSince(started)
                return p
            }
        }
    }

    private func work(job: Int, state: RunState, isCancelled: @escaping @Sendable () -> Bool) {
        let converter = RecordConverter(schema: options.schema, payloadConverter: payloadConverter,
                                        maxUncompressedBytes: options.maxUncompressedBytes)
        var local = ConvertSummary()
        let writer: StorageWriter
        do {
            writer = try StorageWriter(outputDirectory: outputDirectory, schema: options.schema,
                                       writerID: "\(getpid())-\(job)", maxFileBytes: options.maxFileBytes, preset: options.preset)
        } catch {
            state.lock.withLock { state.environmentError = state.environmentError ?? error }
            return
        }
        while let file = state.take() {
            if isCancelled() { break }
            var fileSummary = ConvertSummary()
            fileSummary.inputFiles = 1
            do {
                try convertFile(file, converter: converter, writer: writer, summary: &fileSummary, state: state, isCancelled: isCancelled)
            } catch let error as StorageWriteError {
                state.lock.withLock { state.environmentError = state.environmentError ?? error }
            } catch let error as CompressionError where !error.isDamage {
                state.lock.withLock { state.environmentError = state.environmentError ?? error }
            } catch {
                fileSummary.inputErrors.append("\(file): \(error)")
            }
            local.merge(fileSummary)
            state.lock.withLock {
                state.live.filesDone += 1
            }
        }
        do {
            try writer.finish()
        } catch {
            state.lock.withLock { state.environmentError = state.environmentError ?? error }
        }
        local.filesWritten = writer.publishedFiles
        local.compressedBytesOut = writer.compressedBytes
        state.lock.withLock { state.summary.merge(local) }
    }

    /// True when the file starts with the raw-log separator (a record at offset 0) or its name carries a raw-log
    /// version tag; otherwise the file is read as text lines `<document id>\t<json>` (possibly compressed).
    static func isRawLog(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return RawLogVersion.nameHint(forPath: path) != nil }
        defer { try? handle.close() }
        let first = (try? handle.read(upToCount: 1)) ?? Data()
        if first.first == rawLogSeparator { return true }
        if first.isEmpty { return RawLogVersion.nameHint(forPath: path) != nil }
        return false
    }

    private func convertFile(_ file: String, converter: RecordConverter, writer: StorageWriter, summary: inout ConvertSummary,
                             state: RunState, isCancelled: @escaping @Sendable () -> Bool) throws {
        let errors = ErrorsFile(directory: outputDirectory + "/errors", inputPath: file)
        defer { errors.close() }
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        summary.bytesIn += size
        func handle(_ outcome: RecordOutcome, offset: Int, record: RawRecord?, junk: Int) throws {
            summary.processed += 1
            if junk > 0 { summary.warnings["skipped_bytes", default: 0] += 1 }
            switch outcome {
            case let .converted(converted):
                do {
                    try writer.append(documentID: converted.documentID, json: converted.json, dimensions: converted.dimensions)
                } catch let error as StorageWriteError {
                    if case .invalidPath = error {
                        // The payload's dimensions lead outside the output tree: this record only is refused.
                        summary.failures[.invalidPath, default: 0] += 1
                        errors.write(category: .invalidPath, reason: "\(error)", offset: offset, record: record)
                        state.lock.withLock { state.live.records += 1; state.live.rejected += 1 }
                        return
                    }
                    summary.failures[.writeFailed, default: 0] += 1
                    errors.write(category: .writeFailed, reason: "\(error)", offset: offset, record: record)
                    throw error
                } catch {
                    summary.failures[.writeFailed, default: 0] += 1
                    errors.write(category: .writeFailed, reason: "\(error)", offset: offset, record: record)
                    throw error
                }
                summary.converted += 1
                summary.bytesOut += converted.documentID.utf8.count + converted.json.utf8.count + 2
                for name in converted.unknownHistograms { summary.unknownHistograms[name, default: 0] += 1 }
                for name in converted.mismatchedHistograms { summary.mismatchedHistograms[name, default: 0] += 1 }
                if !converted.unknownHistograms.isEmpty { summary.warnings["unknown_histogram", default: 0] += 1 }
                if !converted.mismatchedHistograms.isEmpty { summary.warnings["definition_mismatch", default: 0] += 1 }
                if converted.duplicateKeys > 0 { summary.warnings["duplicate_key", default: 0] += 1 }
                state.lock.withLock { state.live.records += 1 }
            case let .rejected(rejection):
                summary.failures[rejection.category, default: 0] += 1
                errors.write(category: rejection.category, reason: rejection.message, offset: offset, record: record)
                state.lock.withLock { state.live.records += 1; state.live.rejected += 1 }
            }
        }

        if Self.isRawLog(file) {
            let reader = try RawLogReader(path: file, limits: options.limits)
            var lastOffset = 0
            while let item = try reader.next() {
                if isCancelled() { break }
                switch item {
                case let .record(record):
                    let outcome = converter.convert(record, source: file)
                    try handle(outcome, offset: record.offset, record: record, junk: reader.junkBytesBeforeLastRecord)
                    state.lock.withLock { state.live.bytesDone += record.offset - lastOffset }
                    lastOffset = record.offset
                case let .event(event):
                    switch event {
                    case let .skippedBytes(_, count):
                        summary.skippedBytes += count
                    case let .rejectedPreamble(offset, reason):
                        summary.processed += 1
                        summary.failures[.corruptedData, default: 0] += 1
                        errors.write(category: .corruptedData, reason: "\(reason)", offset: offset, record: nil)
                    case let .truncatedRecord(offset):
                        summary.processed += 1
                        summary.failures[.corruptedData, default: 0] += 1
                        errors.write(category: .corruptedData, reason: "record cut short by the end of the file", offset: offset, record: nil)
                    }
                }
            }
            state.lock.withLock { state.live.bytesDone += size - lastOffset }
        } else {
            // Text form: `<document id>\t<json>` lines; the submission date comes from a storage-layout file name
            // (`<...>.<yyyyMMdd>.v<n>.log...`) when there is one, else from the file's modification time (UTC).
            let date = Self.submissionDate(forTextFile: file)
            let reader = try DecompressingReader(path: file)
            try LineReader(source: reader, maxLineBytes: options.maxUncompressedBytes).forEachLine { line in
                if isCancelled() { return }
                let outcome: RecordOutcome
                if line.isTooLong {
                    outcome = .rejected(PayloadRejection(.corruptedData, "uncompressed size exceeds \(options.maxUncompressedBytes)"))
                } else if let tab = line.bytes.firstIndex(of: 0x09) {
                    let id = String(decoding: line.bytes[..<tab], as: UTF8.self)
                    let json = Array(line.bytes[(tab + 1)...])
                    outcome = id.isEmpty ? .rejected(PayloadRejection(.invalidPath, "Empty document id"))
                        : json.isEmpty ? .rejected(PayloadRejection(.emptyData, "Empty payload"))
                        : converter.convert(documentID: id, json: json, submissionDate: date)
                } else {
                    outcome = .rejected(PayloadRejection(.invalidPath, "line \(line.number): no tab between the document id and the JSON"))
                }
                try handle(outcome, offset: line.offset, record: nil, junk: 0)
            }
            state.lock.withLock { state.live.bytesDone += size }
        }
    }

    static func submissionDate(forTextFile path: String) -> String {
        let name = (path as NSString).lastPathComponent
        let parts = name.split(separator: ".")
        if parts.count >= 2, parts[1].count == 8, parts[1].allSatisfy(\.isNumber) { return String(parts[1]) }
        let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? Date()
        return RecordConverter.submissionDate(milliseconds: UInt64(max(0, modified.timeIntervalSince1970 * 1000)))
    }
}

/// `<out>/errors/<input file name>.errors.jsonl`: one JSON object per rejected record (`spec/payloads.md` §10.4).
/// Created on the first error only.
final class ErrorsFile {
    let directory: String
    let inputPath: String
    private var handle: FileHandle?

    init(directory: String, inputPath: String) {
        self.directory = directory
        self.inputPath = inputPath
    }

    func write(category: RecordCategory, reason: String, offset: Int, record: RawRecord?) {
        var object = JSONObject()
        object["category"] = .string(category.rawValue)
        object["reason"] = .string(reason)
        object["file"] = .string(inputPath)
        object["offset"] = .int(Int64(offset))
        let documentID = record.flatMap { $0.pathString.split(separator: "/", omittingEmptySubsequences: false).first.map(String.init) }
        object["document_id"] = documentID.map(JSONValue.string) ?? .null
        object["path"] = record.map { .string($0.pathString) } ?? .null
        object["timestamp"] = record.map { .int(Int64(clamping: $0.timestamp)) } ?? .null
        object["data_base64"] = record.map { .string(Data($0.data).base64EncodedString()) } ?? .null
        let line = JSONValue.object(object).minimalJSON + "\n"
        if handle == nil {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let path = directory + "/" + (inputPath as NSString).lastPathComponent + ".errors.jsonl"
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            handle = FileHandle(forWritingAtPath: path)
        }
        handle?.write(Data(line.utf8))
    }

    func close() { try? handle?.close(); handle = nil }
}
