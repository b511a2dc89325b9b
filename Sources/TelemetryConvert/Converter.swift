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
    /// Input files skipped because the journal lists them as converted by an earlier run (docs/convert.md
    /// "Guarantees").
    public var alreadyConverted = 0
    /// Input files whose records were not published because the run stopped (Ctrl-C, a write failure) before
    /// their commit: the next run converts them.
    public var notConverted: [String] = []
    /// Storage files published while finishing the commits of a killed run.
    public var recoveredFiles: [String] = []
    /// Work directories and `.partial` files of dead runs removed at start.
    public var removedStaleEntries = 0
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
        alreadyConverted += other.alreadyConverted
        notConverted += other.notConverted
        recoveredFiles += other.recoveredFiles
        removedStaleEntries += other.removedStaleEntries
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
///
/// Idempotent (docs/convert.md "Guarantees"): each job publishes whole input files in commits (`ConvertRun`): a
/// commit renames complete staged files into place and marks its inputs converted in `<out>/.convert/journal.jsonl`;
/// a later run skips the inputs the journal lists, finishes the commits of a killed run and removes its work files.
public final class Converter: @unchecked Sendable {   // immutable after init; run state is local to `run`
    public let options: ConvertOptions
    public let payloadConverter: PayloadConverter
    public let outputDirectory: String

    public init(outputDirectory: String, options: ConvertOptions, payloadConverter: PayloadConverter) {
        self.outputDirectory = outputDirectory
        self.options = options
        self.payloadConverter = payloadConverter
    }

    /// Converts `inputs` (files; directories are walked for regular files, hidden ones skipped), skipping the
    /// files the output directory's journal lists as converted.
    /// - Parameters:
    ///   - progress: called on the calling thread about 10 times a second.
    ///   - isCancelled: polled between records; the run stops: the input files of each job's commit in progress
    ///     are not published (`notConverted`), the committed ones stay.
    /// - Throws: `StorageWriteError` / `CompressionError` when the output cannot be written (the converted records
    ///   that were not published are counted `write_failed`; their input files are converted by the next run).
    public func run(inputs: [String], progress: ((ConvertProgress) -> Void)? = nil,
                    isCancelled: @escaping @Sendable () -> Bool = { false }) throws -> ConvertSummary {
        let started = Date()
        let run = try ConvertRun.begin(outputDirectory: outputDirectory)
        defer { run.end() }
        let (found, skipped) = Self.expand(inputs)
        var files: [(path: String, identity: InputIdentity?)] = []
        var seen = Set<String>()
        var alreadyConverted = 0
        for path in found {
            let identity = InputIdentity.of(path)
            if let identity {
                if run.converted.contains(identity) { alreadyConverted += 1; continue }
                guard seen.insert(identity.path).inserted else { continue }   // the same file named twice
            }
            files.append((path, identity))
        }
        let state = RunState(files: files)
        state.summary.inputErrors += skipped.map(\.description)
        state.summary.alreadyConverted = alreadyConverted
        state.summary.recoveredFiles = run.recoveredFiles
        state.summary.removedStaleEntries = run.removedStaleEntries
        let jobCount = files.isEmpty ? 0 : max(1, min(options.jobs, files.count))
        let group = DispatchGroup()
        for job in 0..<jobCount {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                self.work(job: job, state: state, run: run, isCancelled: isCancelled)
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
        let files: [(path: String, identity: InputIdentity?)]
        var next = 0
        var summary = ConvertSummary()
        var live = ConvertProgress()
        var environmentError: Error?

        init(files: [(path: String, identity: InputIdentity?)]) {
            self.files = files
            live.filesTotal = files.count
            live.bytesTotal = files.reduce(0) { total, file in total + Int(file.identity?.size ?? 0) }
        }

        func take() -> (path: String, identity: InputIdentity?)? {
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

    /// The input files of a job not yet committed, with their summaries and staged errors files.
    private struct Batch {
        var inputs: [InputIdentity] = []
        var paths: [String] = []
        var summary = ConvertSummary()
        var errorsFiles: [StagedFile] = []
    }

    private func work(job: Int, state: RunState, run: ConvertRun, isCancelled: @escaping @Sendable () -> Bool) {
        let converter = RecordConverter(schema: options.schema, payloadConverter: payloadConverter,
                                        maxUncompressedBytes: options.maxUncompressedBytes)
        var local = ConvertSummary()
        let writer: StorageWriter
        do {
            writer = try StorageWriter(outputDirectory: outputDirectory, schema: options.schema, writerID: "\(job)",
                                       maxFileBytes: options.maxFileBytes, preset: options.preset,
                                       workDirectory: run.relativeDirectory + "/\(job)")
        } catch {
            state.lock.withLock { state.environmentError = state.environmentError ?? error }
            return
        }
        var batch = Batch()
        var failed = false      // a write failure: this job stops, its batch is not published
        var cut = false         // cancelled inside an input file: the batch holds part of it

        /// Publishes the batch (one commit); on failure the job stops.
        func commit() {
            do {
                try writer.stageAll()
                let storage = writer.takeStaged()
                let published = try run.commit(inputs: batch.inputs, files: storage + batch.errorsFiles)
                local.merge(batch.summary)
                local.filesWritten += published
                local.compressedBytesOut += storage.reduce(0) { $0 + $1.compressedBytes }
                batch = Batch()
            } catch let meanwhile as ConvertedMeanwhile {
                // Another run converted some of these inputs meanwhile: publishing would duplicate their records.
                writer.discard()
                local.alreadyConverted += meanwhile.inputs.count
                local.notConverted += batch.paths.filter { path in !meanwhile.inputs.contains { $0.path == InputIdentity.of(path)?.path } }
                batch = Batch()
            } catch {
                state.lock.withLock { state.environmentError = state.environmentError ?? error }
                failed = true
            }
        }

        while let next = state.take() {
            let (file, identity) = next
            if isCancelled() { break }
            var fileSummary = ConvertSummary()
            fileSummary.inputFiles = 1
            let errors = ErrorsFile(writer: writer, inputPath: file)
            do {
                cut = try !convertFile(file, converter: converter, writer: writer, errors: errors, summary: &fileSummary,
                                       state: state, isCancelled: isCancelled)
            } catch let error as StorageWriteError {
                state.lock.withLock { state.environmentError = state.environmentError ?? error }
                failed = true
            } catch let error as CompressionError where !error.isDamage {
                state.lock.withLock { state.environmentError = state.environmentError ?? error }
                failed = true
            } catch {
                fileSummary.inputErrors.append("\(file): \(error)")
            }
            if !failed {
                do {
                    if let staged = try errors.finish() { batch.errorsFiles.append(staged) }
                } catch {
                    state.lock.withLock { state.environmentError = state.environmentError ?? error }
                    failed = true
                }
            }
            errors.abandon()
            state.lock.withLock { state.live.filesDone += 1 }
            batch.paths.append(file)
            batch.summary.merge(fileSummary)
            if failed || cut { break }   // not published: counted below
            // An input that could not be read at all is not marked converted: the next run tries it again.
            if let identity, fileSummary.inputErrors.isEmpty || fileSummary.processed > 0 { batch.inputs.append(identity) }
            if writer.pendingBytes >= options.maxFileBytes {
                commit()
                if failed { break }
            }
        }
        if !failed && !cut && !batch.paths.isEmpty { commit() }
        if failed || cut {
            if !run.hasIncompleteCommit { writer.discard() }   // else its staged files wait for the next run
            local.notConverted += batch.paths
            if failed {
                // Converted but never published: the next run converts these records again.
                let lost = batch.summary.converted + (batch.summary.failures[.writeFailed] ?? 0)
                local.failures[.writeFailed, default: 0] += lost
                local.processed += lost
            }
        }
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

    /// Converts one input file into `writer` (records) and `errors` (rejections).
    /// - Returns: false when `isCancelled` stopped it before its end.
    /// - Throws: `StorageWriteError` / `CompressionError` (output), or the input's read error.
    private func convertFile(_ file: String, converter: RecordConverter, writer: StorageWriter, errors: ErrorsFile,
                             summary: inout ConvertSummary, state: RunState, isCancelled: @escaping @Sendable () -> Bool) throws -> Bool {
        var complete = true
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
                        try errors.write(category: .invalidPath, reason: "\(error)", offset: offset, record: record)
                        state.lock.withLock { state.live.records += 1; state.live.rejected += 1 }
                        return
                    }
                    // The output cannot be written (the errors file, on the same disk, neither): the job stops.
                    summary.failures[.writeFailed, default: 0] += 1
                    throw error
                } catch {
                    summary.failures[.writeFailed, default: 0] += 1
                    throw error
                }
                FaultInjection.hit("convert.record")
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
                try errors.write(category: rejection.category, reason: rejection.message, offset: offset, record: record)
                state.lock.withLock { state.live.records += 1; state.live.rejected += 1 }
            }
        }

        if Self.isRawLog(file) {
            let reader = try RawLogReader(path: file, limits: options.limits)
            var lastOffset = 0
            while let item = try reader.next() {
                if isCancelled() { complete = false; break }
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
                        try errors.write(category: .corruptedData, reason: "\(reason)", offset: offset, record: nil)
                    case let .truncatedRecord(offset):
                        summary.processed += 1
                        summary.failures[.corruptedData, default: 0] += 1
                        try errors.write(category: .corruptedData, reason: "record cut short by the end of the file", offset: offset, record: nil)
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
                if isCancelled() { complete = false; return }
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
        return complete
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
/// Written in the job's work directory (created on the first error only) and published with the commit of its
/// input file; every write is checked (a full disk is a `StorageWriteError.io` naming the file).
final class ErrorsFile {
    let inputPath: String
    private let writer: StorageWriter
    private var target: (relative: String, absolute: String)?
    private var fd: Int32 = -1

    init(writer: StorageWriter, inputPath: String) {
        self.writer = writer
        self.inputPath = inputPath
    }

    deinit { abandon() }

    /// Appends one rejected record.
    /// - Throws: `StorageWriteError.io` naming the file.
    func write(category: RecordCategory, reason: String, offset: Int, record: RawRecord?) throws {
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
        if fd < 0 {
            let target = writer.stagingPath(suffix: ".errors.jsonl")
            fd = open(target.absolute, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StorageWriteError.last(target.absolute, "open") }
            self.target = target
        }
        do throws(FileOutput.Failure) { try FileOutput.writeAll(fd, line, name: target?.absolute ?? inputPath) } catch { throw StorageWriteError.from(error) }
    }

    /// fsyncs and closes the file.
    /// - Returns: the staged file for the commit (final name `errors/<input name>.errors.jsonl`), nil when no
    ///   record was rejected.
    /// - Throws: `StorageWriteError.io` naming the file.
    func finish() throws -> StagedFile? {
        guard fd >= 0, let target else { return nil }
        defer { abandon() }
        guard fsync(fd) == 0 else { throw StorageWriteError.last(target.absolute, "fsync") }
        return StagedFile(staged: target.relative, final: "errors/" + (inputPath as NSString).lastPathComponent + ".errors.jsonl",
                          compressedBytes: 0)
    }

    /// Closes the file without publishing it (the writer's `discard` removes it).
    func abandon() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}
