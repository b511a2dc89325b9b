import Foundation
import TelemetryCompression
import TelemetryConvert
import TelemetryCore

/// Parsed records of part of one file: their bytes live in one arena.
final class RecordChunk: @unchecked Sendable {   // handed from one parser thread to the writer, never shared
    struct Record {
        var line: Int
        var idStart: Int, idEnd: Int
        var payloadStart: Int, payloadEnd: Int
        var info: [PingParser.InfoValue?]
        /// Per-record dimensions (raw logs); nil: the file's path dimensions.
        var dimensions: [String]? = nil
        /// The ping's histograms, encoded here (parser thread) for the writer's column files (docs/sql.md):
        /// `arena[histogramsStart..<histogramsEnd]`, `EncodedHistograms` entries.
        var histogramsStart = 0, histogramsEnd = 0
    }
    struct Problem {
        var line: Int
        var offset: Int
        var reason: String
        var message: String
        var documentID: String?
    }
    var arena: [UInt8] = []
    var records: [Record] = []
    var badLines: [Problem] = []
    var warnings: [Problem] = []
    var uncompressedBytes = 0
    /// Raw-log records the filter excluded.
    var excludedRecords = 0

    init(capacity: Int) { arena.reserveCapacity(capacity) }
}

/// How a file's reading ended.
struct FileEnd: Sendable {
    struct Failure: Sendable {
        var reason: String
        var message: String
        var line: Int?
        var offset: Int?
    }
    var format: CompressionFormat?
    var hash: UInt64?
    var failure: Failure?
}

enum PipelineMessage: Sendable {
    case records(RecordChunk)
    case end(FileEnd)
}

/// Parser threads feeding the single writer, file by file in order (see `Importer`).
final class ImportPipeline: @unchecked Sendable {   // all mutable state is guarded by `condition`
    private let files: [ImportCandidate]
    private let options: ImportOptions
    private let fields: [String]
    private let schema: DimensionSchema
    private let condition = NSCondition()
    private var queues: [[PipelineMessage]]
    private var nextFile = 0
    private var writerPosition = 0
    private var cancelled = false
    private var running = 0
    private let lookahead: Int
    private static let chunkBytes = 4 << 20
    private static let queueDepth = 4

    init(files: [ImportCandidate], options: ImportOptions, fields: [String], schema: DimensionSchema) {
        self.files = files
        self.options = options
        self.fields = fields
        self.schema = schema
        queues = Array(repeating: [], count: files.count)
        lookahead = 2 * options.jobs
    }

    func start() {
        let threads = min(options.jobs, files.count)
        condition.lock(); running = threads; condition.unlock()
        for _ in 0..<threads {
            let thread = Thread { [self] in worker() }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// The next message for file `index`; blocks until one is there.
    func next(file index: Int) -> PipelineMessage {
        condition.lock()
        defer { condition.unlock() }
        while queues[index].isEmpty { condition.wait() }
        let message = queues[index].removeFirst()
        condition.broadcast()
        return message
    }

    /// The writer finished file `index`: parsers may run further ahead.
    func fileWritten(_ index: Int) {
        condition.lock()
        writerPosition = index + 1
        condition.broadcast()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for every parser thread to leave.
    func join() {
        condition.lock()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    private func post(_ message: PipelineMessage, file index: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while queues[index].count >= Self.queueDepth && !cancelled { condition.wait() }
        if cancelled { return false }
        queues[index].append(message)
        condition.broadcast()
        return true
    }

    private func worker() {
        let parser = PingParser(fields: fields, histograms: options.histogramColumns)
        defer {
            condition.lock(); running -= 1; condition.broadcast(); condition.unlock()
        }
        while true {
            condition.lock()
            while !cancelled && nextFile < files.count && nextFile >= writerPosition + lookahead { condition.wait() }
            if cancelled || nextFile >= files.count { condition.unlock(); return }
            let index = nextFile
            nextFile += 1
            condition.unlock()
            if !parse(file: files[index], index: index, parser: parser) { return }
        }
    }

    /// Reads one file and posts its chunks and end. Returns false when cancelled.
    private func parse(file: ImportCandidate, index: Int, parser: PingParser) -> Bool {
        if file.isRawLog { return parseRawLog(file: file, index: index, parser: parser) }
        var end = FileEnd()
        if file.size == 0 {
            // Not an error (issue 18): the importer notes it in `ImportSummary.emptyFiles`.
            end.hash = 0
            return post(.end(end), file: index)
        }
        let reader: DecompressingReader
        do {
            reader = try DecompressingReader(path: file.path)
        } catch {
            end.failure = .init(reason: "unreadable", message: "\(error)", line: nil, offset: nil)
            return post(.end(end), file: index)
        }
        end.format = reader.format
        var chunk = RecordChunk(capacity: Self.chunkBytes + (64 << 10))
        var delivered = 0
        var lastLine = 0
        var stop = false
        let lines = LineReader(source: reader, maxLineBytes: options.maxLineBytes)
        do {
            try lines.forEachLine { line in
                lastLine = line.number
                Self.parse(line: line, path: file.path, parser: parser, into: chunk)
                if chunk.arena.count >= Self.chunkBytes {
                    delivered += chunk.records.count
                    if !post(.records(chunk), file: index) { stop = true; throw CancellationError() }
                    chunk = RecordChunk(capacity: Self.chunkBytes + (64 << 10))
                }
            }
        } catch is CancellationError {
            return false
        } catch let error as CompressionError {
            let kept = delivered + chunk.records.count
            let reason = error.isDamage ? (error.isTruncation ? "truncated" : "corrupt_data") : "unreadable"
            end.failure = .init(reason: reason,
                                message: "\(error); \(kept) good record(s) before the damage were kept (damage after line \(lastLine))",
                                line: lastLine + 1, offset: reader.uncompressedOffset)
            try? reader.finishHashing()
        } catch {
            end.failure = .init(reason: "unreadable", message: "\(file.path): \(error)", line: nil, offset: nil)
        }
        if stop { return false }
        end.hash = reader.contentCRC64
        if !chunk.records.isEmpty || !chunk.badLines.isEmpty || !chunk.warnings.isEmpty || chunk.uncompressedBytes > 0 {
            if !post(.records(chunk), file: index) { return false }
        }
        return post(.end(end), file: index)
    }

    /// Converts a raw submission log record by record (`RecordConverter`) and posts the converted pings with
    /// their own dimensions (from `info` and the record's timestamp, allowed values applied and sanitised as in
    /// the storage layout). Rejected records become bad lines whose reason is the record category.
    private func parseRawLog(file: ImportCandidate, index: Int, parser: PingParser) -> Bool {
        var end = FileEnd()
        let converter = RecordConverter(schema: schema, payloadConverter: options.payloadConverter ?? .withoutDefinitions)
        let filter = options.filter?.asFilter
        var chunk = RecordChunk(capacity: Self.chunkBytes + (64 << 10))
        var scratch = [UInt8]()
        do {
            let reader = try RawLogReader(path: file.path)
            var recordNumber = 0
            while let item = try reader.next() {
                switch item {
                case let .record(record):
                    recordNumber += 1
                    switch converter.convert(record, source: file.path) {
                    case let .rejected(rejection):
                        chunk.badLines.append(.init(line: recordNumber, offset: record.offset, reason: rejection.category.rawValue,
                                                    message: "\(file.path): record at byte \(record.offset): \(rejection.message)", documentID: nil))
                    case let .converted(converted):
                        let dims = schema.apply(converted.dimensions).map(StorageLayout.storedValue)
                        if let filter, !filter.allows(dims) { chunk.excludedRecords += 1; continue }
                        scratch.removeAll(keepingCapacity: true)
                        scratch.append(contentsOf: converted.documentID.utf8)
                        scratch.append(0x09)
                        scratch.append(contentsOf: converted.json.utf8)
                        let length = scratch.count
                        scratch.append(contentsOf: repeatElement(0, count: LineReader.padding))
                        let before = chunk.records.count
                        scratch.withUnsafeBytes { bytes in
                            let line = Line(number: recordNumber, offset: record.offset,
                                            bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<length]), length: length, isTooLong: false)
                            Self.parse(line: line, path: file.path, parser: parser, into: chunk)
                        }
                        if chunk.records.count > before { chunk.records[chunk.records.count - 1].dimensions = dims }
                        for name in converted.unknownHistograms {
                            chunk.warnings.append(.init(line: recordNumber, offset: record.offset, reason: "unknown_histogram",
                                                        message: "\(file.path): record at byte \(record.offset): histogram \(name) is not defined in its revision; left out",
                                                        documentID: converted.documentID))
                        }
                        for name in converted.mismatchedHistograms {
                            chunk.warnings.append(.init(line: recordNumber, offset: record.offset, reason: "definition_mismatch",
                                                        message: "\(file.path): record at byte \(record.offset): histogram \(name) declares another layout than its definition",
                                                        documentID: converted.documentID))
                        }
                    }
                case let .event(event):
                    switch event {
                    case let .skippedBytes(offset, count):
                        chunk.warnings.append(.init(line: recordNumber, offset: offset, reason: "skipped_bytes",
                                                    message: "\(file.path): \(count) byte(s) skipped at byte \(offset) to find the next record", documentID: nil))
                    case let .rejectedPreamble(offset, reason):
                        chunk.badLines.append(.init(line: recordNumber + 1, offset: offset, reason: RecordCategory.corruptedData.rawValue,
                                                    message: "\(file.path): record at byte \(offset): \(reason)", documentID: nil))
                    case let .truncatedRecord(offset):
                        chunk.badLines.append(.init(line: recordNumber + 1, offset: offset, reason: RecordCategory.corruptedData.rawValue,
                                                    message: "\(file.path): record at byte \(offset) is cut short by the end of the file", documentID: nil))
                    }
                }
                if chunk.arena.count >= Self.chunkBytes {
                    if !post(.records(chunk), file: index) { return false }
                    chunk = RecordChunk(capacity: Self.chunkBytes + (64 << 10))
                }
            }
            end.hash = try? DecompressingReader.crc64(ofFile: file.path)
        } catch {
            end.failure = .init(reason: "unreadable", message: "\(error)", line: nil, offset: nil)
        }
        chunk.uncompressedBytes = chunk.arena.count
        if !post(.records(chunk), file: index) { return false }
        return post(.end(end), file: index)
    }

    /// Longest document id accepted, in bytes.
    static let maxDocumentIDBytes = 256

    /// Splits a storage line at its first TAB (`spec/storage.md` §1), validates the id and the JSON, and
    /// appends a record or a bad line to `chunk`.
    static func parse(line: Line, path: String, parser: PingParser, into chunk: RecordChunk) {
        chunk.uncompressedBytes += line.length + 1
        if line.isTooLong {
            chunk.badLines.append(.init(line: line.number, offset: line.offset, reason: "too_long",
                                        message: "\(path):\(line.number): line of \(line.length) bytes exceeds the limit", documentID: nil))
            return
        }
        let bytes = line.bytes
        guard let base = bytes.baseAddress, let tab = memchr(base, 0x09, bytes.count) else {
            chunk.badLines.append(.init(line: line.number, offset: line.offset, reason: "no_tab",
                                        message: "\(path):\(line.number): no tab between the document id and the JSON", documentID: nil))
            return
        }
        let idLength = base.distance(to: UnsafeRawPointer(tab))
        let id = UnsafeRawBufferPointer(start: base, count: idLength)
        if let problem = validateDocumentID(id) {
            let reason = problem == "is not valid UTF-8" ? "invalid_utf8" : "invalid_id"
            chunk.badLines.append(.init(line: line.number, offset: line.offset, reason: reason,
                                        message: "\(path):\(line.number): the document id \(problem)", documentID: nil))
            return
        }
        let json = UnsafeRawBufferPointer(start: base + idLength + 1, count: bytes.count - idLength - 1)
        let parsed: PingParser.Parsed
        do {
            parsed = try parser.parse(json, padded: true)   // LineReader guarantees the padding
        } catch {
            let at = error.offset.map { " (line byte \(idLength + 1 + $0))" } ?? ""
            chunk.badLines.append(.init(line: line.number, offset: line.offset, reason: error.kind.rawValue,
                                        message: "\(path):\(line.number): \(error.message) of the JSON\(at)", documentID: nil))
            return
        }
        let idStart = chunk.arena.count
        chunk.arena.append(contentsOf: id)
        let payloadStart = chunk.arena.count
        chunk.arena.append(contentsOf: json)
        let payloadEnd = chunk.arena.count
        chunk.arena.append(contentsOf: parsed.histograms)
        chunk.records.append(.init(line: line.number, idStart: idStart, idEnd: payloadStart, payloadStart: payloadStart,
                                   payloadEnd: payloadEnd, info: parsed.values, histogramsStart: payloadEnd, histogramsEnd: chunk.arena.count))
        if parsed.duplicateKeys > 0 {
            let documentID = String(decoding: id, as: UTF8.self)
            chunk.warnings.append(.init(line: line.number, offset: line.offset, reason: "duplicate_key",
                                        message: "\(path):\(line.number): \(parsed.duplicateKeys) duplicate object key(s); the first occurrence wins",
                                        documentID: documentID))
        }
    }

    /// Why `id` is not an acceptable document id, or nil. Accepted: 1…256 bytes of UTF-8 without control
    /// characters (UUIDs in practice; other ids are kept as they are, spec/storage.md §1).
    static func validateDocumentID(_ id: UnsafeRawBufferPointer) -> String? {
        if id.isEmpty { return "is empty" }
        if id.count > maxDocumentIDBytes { return "is longer than \(maxDocumentIDBytes) bytes" }
        var ascii = true
        for byte in id {
            if byte < 0x20 || byte == 0x7F { return "contains a control character" }
            if byte >= 0x80 { ascii = false }
        }
        if !ascii && String(validating: id, as: UTF8.self) == nil { return "is not valid UTF-8" }
        return nil
    }
}

extension CompressionError {
    /// True when the data ends early (as opposed to damaged bytes).
    var isTruncation: Bool { if case .truncated = self { return true } else { return false } }
}
