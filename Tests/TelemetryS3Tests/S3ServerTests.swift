import Crypto
import Foundation
import TelemetryCore
import TelemetryTestSupport
import Testing
@testable import TelemetryS3
#if canImport(Glibc)
import Glibc
#endif

/// Against a real S3 API: moto's server on 127.0.0.1 with IAM authentication on (every request's signature is
/// checked by botocore's own SigV4 code). One server per test; serialized to keep the 2-core machine responsive.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct S3ServerTests {
    static let bucket = "telemetry-published"
    static let prefix = "telemetry/v2/"

    static func md5(_ path: String) throws -> String { try LocalFile.md5(path) }

    /// Bytes that do not compress and are large enough to arrive in many chunks.
    static func noise(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    @Test func listsMoreThanAThousandKeysAndAppliesTheFilterBeforeDownloading() async throws {
        let work = TemporaryDirectory("s3-many")
        let tree = try GeneratedData.make(in: work, pings: 1300, filesPerPartition: 30, seed: 7)
        let files = GeneratedData.relativeFiles(tree)
        try #require(files.count > 1000, "the generated tree should have more than 1,000 files, has \(files.count)")
        let readme = try work.write("README.txt", text: "not telemetry\n")
        let hidden = try work.write("hidden", text: "x\n")
        let server = try MotoServer.start(plan: [
            "buckets": [["name": Self.bucket]],
            "trees": [["bucket": Self.bucket, "prefix": Self.prefix, "dir": tree]],
            "objects": [["bucket": Self.bucket, "key": Self.prefix + "README.txt", "file": readme],
                        ["bucket": Self.bucket, "key": Self.prefix + "saved_session/.hidden", "file": hidden],
                        ["bucket": Self.bucket, "key": "elsewhere/x.log", "file": readme]],
        ])
        defer { server.stop() }
        let client = try server.client()
        defer { client.shutdown() }
        let location = S3Location(bucket: Self.bucket, prefix: Self.prefix)

        // No filter: every layout key, over more than one ListObjectsV2 page.
        let all = try await S3Selector.select(client: client, location: location, schema: .seed, filter: nil)
        #expect(all.selected.map(\.key) == files.map { Self.prefix + $0 })
        #expect(all.listRequests >= 2, "more than 1,000 keys take more than one page")
        #expect(all.outsideLayout == [Self.prefix + "README.txt"])
        #expect(all.ignoredKeys == 1)
        #expect(all.totalBytes == files.reduce(0) { $0 + (LocalFile.status(tree + "/" + $1)?.size ?? 0) })
        for object in all.selected.prefix(50) { #expect(object.etag == server.etags[Self.bucket + "/" + object.key]) }

        // A filter: the same files the local walk selects; rejected "directories" are not even listed.
        let filterJSON = """
            {"version": 1, "dimensions": [
              {"field_name": "reason", "allowed_values": ["saved-session"]},
              {"field_name": "appName", "allowed_values": "*"},
              {"field_name": "appUpdateChannel", "allowed_values": ["nightly", "aurora"]},
              {"field_name": "appVersion", "allowed_values": "*"},
              {"field_name": "appBuildID", "allowed_values": "*"},
              {"field_name": "submission_date", "allowed_values": {"min": "20131001", "max": "20131020"}}]}
            """
        let filter = try DimensionSchema(json: Data(filterJSON.utf8), source: "<inline>")
        let expected = StorageLayout.filterFiles(files.map { tree + "/" + $0 }, base: tree, filter: filter).included
            .map { Self.prefix + String($0.dropFirst(tree.count + 1)) }
        try #require(!expected.isEmpty && expected.count < files.count, "the filter should select some files, not all")
        let some = try await S3Selector.select(client: client, location: location, schema: .seed, filter: filter)
        #expect(some.selected.map(\.key) == expected)
        #expect(some.prunedPrefixes.contains(Self.prefix + "idle_daily/"))
        #expect(some.excludedKeys + some.selected.count < files.count, "pruned prefixes were not listed")
        // Nothing was downloaded by selecting.
        #expect(!FileManager.default.fileExists(atPath: server.directory.path + "/cache"))
    }

    @Test func importFromS3EqualsImportFromDiskAndReusesTheCache() throws {
        let work = TemporaryDirectory("s3-import")
        let tree = try GeneratedData.make(in: work, pings: 300, filesPerPartition: 4, seed: 5)
        let server = try MotoServer.start(plan: [
            "buckets": [["name": Self.bucket]],
            "trees": [["bucket": Self.bucket, "prefix": Self.prefix, "dir": tree]],
        ])
        defer { server.stop() }
        let filter = try work.write("filter.json", text: """
            {"version": 1, "dimensions": [
              {"field_name": "reason", "allowed_values": ["saved-session", "idle-daily"]},
              {"field_name": "appName", "allowed_values": "*"},
              {"field_name": "appUpdateChannel", "allowed_values": "*"},
              {"field_name": "appVersion", "allowed_values": "*"},
              {"field_name": "appBuildID", "allowed_values": "*"},
              {"field_name": "submission_date", "allowed_values": {"min": "20131001", "max": "20131025"}}]}
            """)
        let cache = work.file("cache")
        let environment = try server.cliEnvironment(home: work.path)
        let s3URL = "s3://\(Self.bucket)/\(Self.prefix)"
        let s3Arguments = ["import", s3URL, "--endpoint-url", server.endpoint, "--filter", filter, "--cache-dir", cache]

        // --dry-run: the selection, its count and size; nothing fetched, no store.
        let dry = try runProcess(Fixtures.telemetryExecutable, s3Arguments + ["--dry-run", "--store", work.file("dry.db")],
                                 environment: environment)
        #expect(dry.status == 0, "\(dry.stderr)")
        let selectedPaths = StorageLayout.filterFiles(GeneratedData.relativeFiles(tree).map { tree + "/" + $0 }, base: tree,
                                                      filter: try DimensionSchema(contentsOf: filter)).included
        let bytes = selectedPaths.reduce(Int64(0)) { $0 + (LocalFile.status($1)?.size ?? 0) }
        #expect(dry.stdout.contains("\(selectedPaths.count) file(s) selected, \(bytes) bytes"), "\(dry.stdout)")
        #expect(dry.stdout.contains(Self.prefix + String(selectedPaths[0].dropFirst(tree.count + 1))))
        #expect(!FileManager.default.fileExists(atPath: cache) && !FileManager.default.fileExists(atPath: work.file("dry.db")))

        let s3Store = work.file("s3.db")
        let first = try runProcess(Fixtures.telemetryExecutable, s3Arguments + ["--store", s3Store], environment: environment)
        #expect(first.status == 0, "\(first.stderr)\n\(first.stdout)")
        #expect(first.stdout.contains("Fetched \(selectedPaths.count) file(s)"), "\(first.stdout)")
        let diskStore = work.file("disk.db")
        let disk = try runProcess(Fixtures.telemetryExecutable, ["import", tree, "--filter", filter, "--store", diskStore],
                                  environment: ["TELEMETRY_STORE": ""])
        #expect(disk.status == 0, "\(disk.stderr)")

        // The same pings, dimensions and payloads (file paths differ: cache vs tree).
        let query = "SELECT document_id, reason, appName, appUpdateChannel, appVersion, appBuildID, submission_date, os, line, payload "
            + "FROM pings ORDER BY document_id, submission_date, line, payload"
        let fromS3 = try runProcess(Fixtures.telemetryExecutable, ["query", query, "--store", s3Store, "--format", "json"])
        let fromDisk = try runProcess(Fixtures.telemetryExecutable, ["query", query, "--store", diskStore, "--format", "json"])
        #expect(fromS3.status == 0 && fromDisk.status == 0)
        #expect(fromS3.stdout.count > 1000)
        #expect(fromS3.stdout == fromDisk.stdout)
        let countQuery = "SELECT count(*), sum(record_count) FROM source_files"
        #expect(try runProcess(Fixtures.telemetryExecutable, ["query", countQuery, "--store", s3Store, "--format", "csv"]).stdout
            == (try runProcess(Fixtures.telemetryExecutable, ["query", countQuery, "--store", diskStore, "--format", "csv"])).stdout)

        // The cache is a storage-layout tree; a second run downloads nothing and imports nothing new.
        #expect(FileManager.default.fileExists(atPath: cache + "/" + Self.bucket + "/" + Self.prefix
            + String(selectedPaths[0].dropFirst(tree.count + 1))))
        let second = try runProcess(Fixtures.telemetryExecutable, s3Arguments + ["--store", s3Store], environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("\(selectedPaths.count) reused from the cache"), "\(second.stdout)")
        #expect(second.stdout.contains("Imported 0 pings"), "\(second.stdout)")

        // A prefix with no key under it (a typo) is a warning and exit status 1, not an empty success.
        let typo = try runProcess(Fixtures.telemetryExecutable, ["import", "s3://\(Self.bucket)/no-such-prefix/", "--endpoint-url", server.endpoint,
                                                                 "--cache-dir", cache, "--store", s3Store], environment: environment)
        #expect(typo.status == 1)
        #expect(typo.stderr.contains("warning: s3://\(Self.bucket)/no-such-prefix/: no file to import there"), "\(typo.stderr)")

        // Errors reach the command line as one clear line and exit status 2, before any store is created.
        let never = work.file("never.db")
        var wrong = environment
        wrong["AWS_SECRET_ACCESS_KEY"] = "wrong-secret"
        let refused = try runProcess(Fixtures.telemetryExecutable, s3Arguments + ["--store", never], environment: wrong)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("refused the credentials: SignatureDoesNotMatch"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("wrong-secret"))
        var none = environment
        none["AWS_ACCESS_KEY_ID"] = ""
        let noCredentials = try runProcess(Fixtures.telemetryExecutable, s3Arguments + ["--store", never], environment: none)
        #expect(noCredentials.status == 2)
        #expect(noCredentials.stderr.contains("no AWS credentials found"), "\(noCredentials.stderr)")
        let missing = try runProcess(Fixtures.telemetryExecutable, ["import", "s3://no-such-bucket/x", "--endpoint-url", server.endpoint,
                                                                    "--cache-dir", cache, "--store", never], environment: environment)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no such bucket: no-such-bucket"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: never))
    }

    @Test func resumesADownloadCutShort() async throws {
        let work = TemporaryDirectory("s3-resume")
        let big = try work.write("big.bin", Self.noise(6 << 20, seed: 11))
        let replacement = try work.write("replacement.bin", Self.noise(3 << 20, seed: 12))
        let key = Self.prefix + "saved_session/Firefox/nightly/30.0a1/20140101000000.20140102.v2.log.0123456789abcdef0123456789abcdef.xz"
        let server = try MotoServer.start(plan: [
            "buckets": [["name": Self.bucket]],
            "objects": [["bucket": Self.bucket, "key": key, "file": big]],
        ])
        defer { server.stop() }
        let client = try server.client()
        defer { client.shutdown() }
        let cache = S3Cache(root: work.file("cache"))
        let downloader = S3Downloader(client: client, cache: cache, parallel: 2)
        let listed = try await client.listObjects(bucket: Self.bucket, prefix: Self.prefix).objects
        try #require(listed.count == 1)
        let object = listed[0]
        #expect(object.size == 6 << 20)

        // Cut the transfer at its first chunk (the flag is polled once before the transfer and once per chunk):
        // the bytes so far stay in the .partial file.
        let polls = ByteCounter()
        let cut = await downloader.fetch([object], bucket: Self.bucket, isCancelled: { polls.increment() > 1 })
        #expect(cut.interrupted)
        #expect(cut.results.first?.outcome == .failed(.cancelled))
        let destination = cache.path(bucket: Self.bucket, key: key)
        let partialSize = try #require(LocalFile.status(S3Cache.partialPath(of: destination))?.size)
        #expect(partialSize > 0 && partialSize < object.size, "partial file holds \(partialSize) bytes")
        #expect(!FileManager.default.fileExists(atPath: destination))

        // The next run asks for the rest only (Range) and verifies the whole file against the ETag (MD5).
        let resumed = await downloader.fetch([object], bucket: Self.bucket)
        #expect(resumed.results.first?.outcome == .resumed(fromOffset: partialSize))
        #expect(resumed.bytesTransferred == object.size - partialSize)
        #expect(try Self.md5(destination) == object.etag)
        #expect(!FileManager.default.fileExists(atPath: S3Cache.partialPath(of: destination)))
        #expect(FileManager.default.fileExists(atPath: S3Cache.metaPath(of: destination)))

        // A partial file of an older version of the object is not resumed: the ETag differs, so it starts over.
        LocalFile.remove(destination)
        LocalFile.remove(S3Cache.metaPath(of: destination))
        let morePolls = ByteCounter()
        let again = await downloader.fetch([object], bucket: Self.bucket, isCancelled: { morePolls.increment() > 1 })
        #expect(again.interrupted)
        try server.put(bucket: Self.bucket, key: key, file: replacement)
        let changed = try await client.listObjects(bucket: Self.bucket, prefix: Self.prefix).objects[0]
        #expect(changed.etag != object.etag)
        let fresh = await downloader.fetch([changed], bucket: Self.bucket)
        #expect(fresh.results.first?.outcome == .downloaded)
        #expect(try Self.md5(destination) == changed.etag)
        // Fetching with the stale listing now fails cleanly (If-Match → 412) instead of mixing versions.
        LocalFile.remove(destination)
        LocalFile.remove(S3Cache.metaPath(of: destination))
        let stale = await downloader.fetch([object], bucket: Self.bucket)
        #expect(stale.results.first?.outcome == .failed(.changedDuringDownload(bucket: Self.bucket, key: key)))
        #expect(!FileManager.default.fileExists(atPath: destination))
    }

    @Test func refetchesCachedFilesDamagedOnDisk() async throws {
        let work = TemporaryDirectory("s3-corrupt")
        let tree = try GeneratedData.make(in: work, pings: 60, filesPerPartition: 2, seed: 3)
        let multipart = try work.write("multipart.bin", Self.noise(300_000, seed: 5))
        let multipartKey = Self.prefix + "main/Firefox/release/40.0/20150101000000.20150102.v2.log.00000000000000000000000000000001.xz"
        let server = try MotoServer.start(plan: [
            "buckets": [["name": Self.bucket]],
            "trees": [["bucket": Self.bucket, "prefix": Self.prefix, "dir": tree]],
            "objects": [["bucket": Self.bucket, "key": multipartKey, "file": multipart, "multipart_parts": 3]],
        ])
        defer { server.stop() }
        let client = try server.client()
        defer { client.shutdown() }
        let cache = S3Cache(root: work.file("cache"))
        let selection = try await S3Selector.select(client: client, location: S3Location(bucket: Self.bucket, prefix: Self.prefix),
                                                    schema: .seed, filter: nil)
        try #require(selection.selected.count >= 4)
        let downloader = S3Downloader(client: client, cache: cache, parallel: 3)
        let first = await downloader.fetch(selection.selected, bucket: Self.bucket)
        #expect(first.failures.isEmpty, "\(first.failures)")
        #expect(first.count { $0 == .downloaded } == selection.selected.count)
        let multipartObject = try #require(selection.selected.first { $0.key == multipartKey })
        #expect(multipartObject.etag.hasSuffix("-3"), "a multipart upload's ETag is not an MD5: \(multipartObject.etag)")

        let singles = selection.selected.filter(\.hasMD5ETag)
        let truncated = cache.path(bucket: Self.bucket, key: singles[0].key)
        let flipped = cache.path(bucket: Self.bucket, key: singles[1].key)
        let flippedQuietly = cache.path(bucket: Self.bucket, key: singles[2].key)
        let multipartPath = cache.path(bucket: Self.bucket, key: multipartKey)
        // 1. Shorter than the recorded size.
        let truncatedHandle = try #require(FileHandle(forWritingAtPath: truncated))
        try truncatedHandle.truncate(atOffset: 10)
        try truncatedHandle.close()
        // 2. Same size, one byte changed (its mtime moves, so its MD5 is checked against the ETag).
        try Self.flipByte(flipped, preservingMTime: false)
        // 3. Same size, one byte changed, mtime put back: only --verify-cache notices.
        try Self.flipByte(flippedQuietly, preservingMTime: true)
        // 4. Multipart object: only its size can be checked.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: multipartPath))

        let second = await downloader.fetch(selection.selected, bucket: Self.bucket)
        func outcome(_ key: String, _ report: FetchReport) -> FetchOutcome? { report.results.first { $0.key == key }?.outcome }
        #expect(outcome(singles[0].key, second) == .refetchedCorrupt)
        #expect(outcome(singles[1].key, second) == .refetchedCorrupt)
        #expect(outcome(singles[2].key, second) == .reused)
        #expect(outcome(multipartKey, second) == .refetchedCorrupt)
        #expect(second.count { $0 == .reused } == selection.selected.count - 3)
        #expect(try Self.md5(truncated) == singles[0].etag)
        #expect(try Self.md5(flipped) == singles[1].etag)
        #expect(try Self.md5(multipartPath) == SignatureV4.hex(Insecure.MD5.hash(data: Data(contentsOf: URL(fileURLWithPath: multipart)))))

        let verifying = S3Downloader(client: client, cache: cache, parallel: 3, verifyCachedContent: true)
        let third = await verifying.fetch(selection.selected, bucket: Self.bucket)
        #expect(outcome(singles[2].key, third) == .refetchedCorrupt)
        #expect(try Self.md5(flippedQuietly) == singles[2].etag)
        #expect(third.count { $0 == .reused } == selection.selected.count - 1)
    }

    static func flipByte(_ path: String, preservingMTime: Bool) throws {
        var st = stat()
        try #require(stat(path, &st) == 0)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 2] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: path))
        if preservingMTime {
            var times = [st.st_atim, st.st_mtim]
            try #require(utimensat(AT_FDCWD, path, &times, 0) == 0)
        } else {
            // Some file systems keep the old mtime for a write within the same clock tick: set it explicitly.
            var later = [st.st_atim, timespec(tv_sec: st.st_mtim.tv_sec + 2, tv_nsec: 0)]
            try #require(utimensat(AT_FDCWD, path, &later, 0) == 0)
        }
    }

    @Test func refusedCredentialsDeniedAccessAndMissingBucketsAreClearErrors() async throws {
        let work = TemporaryDirectory("s3-errors")
        let file = try work.write("x.log", text: "id\t{}\n")
        let server = try MotoServer.start(plan: [
            "buckets": [["name": Self.bucket]],
            "objects": [["bucket": Self.bucket, "key": "x/a/b/c/d/e.20140101.v2.log", "file": file]],
        ])
        defer { server.stop() }
        let endpoint = "\(try #require(URL(string: server.endpoint)))"
        func list(_ settings: S3Settings, bucket: String = Self.bucket) async throws {
            let client = S3Client(settings: settings, retry: RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(20)))
            defer { client.shutdown() }
            _ = try await client.listObjects(bucket: bucket, prefix: "")
        }
        let reader = try server.settings()
        try await list(reader)   // the real credentials work

        var wrongSecret = reader
        wrongSecret.credentials?.secretAccessKey = "not-the-secret"
        let signatureError = await #expect(throws: S3Error.self) { try await list(wrongSecret) }
        guard case let .credentialsRejected(code, _, errorEndpoint)? = signatureError else {
            Issue.record("expected credentialsRejected, got \(String(describing: signatureError))")
            return
        }
        #expect(code == "SignatureDoesNotMatch")
        #expect(errorEndpoint == endpoint)

        var unknownKey = reader
        unknownKey.credentials?.accessKeyID = "AKIAUNKNOWNUNKNOWN00"
        let keyError = await #expect(throws: S3Error.self) { try await list(unknownKey) }
        if case let .credentialsRejected(code, _, _)? = keyError { #expect(code == "InvalidAccessKeyId") } else {
            Issue.record("expected credentialsRejected, got \(String(describing: keyError))")
        }

        let strangerError = await #expect(throws: S3Error.self) { try await list(try server.settings(user: "stranger")) }
        if case let .accessDenied(bucket, _, _)? = strangerError { #expect(bucket == Self.bucket) } else {
            Issue.record("expected accessDenied, got \(String(describing: strangerError))")
        }

        await #expect(throws: S3Error.noSuchBucket(bucket: "no-such-bucket", endpoint: endpoint)) {
            try await list(reader, bucket: "no-such-bucket")
        }
    }

    @Test func anonymousAccessSendsNoSignature() async throws {
        let work = TemporaryDirectory("s3-anonymous")
        let file = try work.write("x.log", text: "id\t{}\n")
        let key = "public/saved_session/Firefox/nightly/1/2.20140101.v2.log"
        // Authentication off: the public-bucket case (moto answers unsigned requests only then).
        let server = try MotoServer.start(plan: [
            "buckets": [["name": Self.bucket]],
            "objects": [["bucket": Self.bucket, "key": key, "file": file, "public": true]],
            "enforce_auth": false,
        ])
        defer { server.stop() }
        let settings = try AWSConfiguration.resolve(endpointURL: server.endpoint, anonymous: true, environment: [:],
                                                    homeDirectory: work.path)
        #expect(settings.credentials == nil)
        let client = S3Client(settings: settings)
        defer { client.shutdown() }
        let selection = try await S3Selector.select(client: client, location: try S3Location(url: "s3://\(Self.bucket)/public"),
                                                    schema: .seed, filter: nil)
        #expect(selection.selected.map(\.key) == [key])
        let report = await S3Downloader(client: client, cache: S3Cache(root: work.file("cache"))).fetch(selection.selected, bucket: Self.bucket)
        #expect(report.results.map(\.outcome) == [.downloaded])
        #expect(try String(contentsOfFile: report.localPaths[0], encoding: .utf8) == "id\t{}\n")
    }

    /// Conformance case `schema-fetch-list-local-mirror` (`shared/conformance/schema.json`, op `fetch_list`, optional):
    /// 6 keys fetched where 5 exist; the 5 exist afterwards in the target, the missing one fails and leaves no file.
    @Test func conformanceFetchList() async throws {
        let vectors = try #require(try Fixtures.sharedJSON("conformance/schema.json") as? [String: Any])
        let cases = try #require(vectors["cases"] as? [[String: Any]])
        let vector = try #require(cases.first { $0["op"] as? String == "fetch_list" }, "no fetch_list case")
        let input = try #require(vector["input"] as? [String: Any])
        let expected = try #require(vector["expected"] as? [String: Any])
        let keys = try #require(input["keys"] as? [String])
        let mirror = try #require(input["mirror_has"] as? [String])
        let work = TemporaryDirectory("s3-fetch-list")
        var objects: [[String: Any]] = []
        for (index, key) in mirror.enumerated() {
            let file = try work.write("mirror/\(index)", Self.noise(1000 + index, seed: UInt64(index + 1)))
            objects.append(["bucket": Self.bucket, "key": key, "file": file])
        }
        let server = try MotoServer.start(plan: ["buckets": [["name": Self.bucket]], "objects": objects])
        defer { server.stop() }
        let client = try server.client()
        defer { client.shutdown() }
        let cache = S3Cache(root: work.file("target"))
        let report = await S3Downloader(client: client, cache: cache).fetch(keys: keys, bucket: Self.bucket)
        let succeeded = report.results.filter { if case .failed = $0.outcome { false } else { true } }.map(\.key)
        let failed = report.failures.map(\.key)
        #expect(succeeded == expected["succeeded"] as? [String])
        #expect(failed == expected["failed"] as? [String])
        for key in succeeded {
            #expect(try Self.md5(cache.path(bucket: Self.bucket, key: key)) == server.etags[Self.bucket + "/" + key])
        }
        for key in failed {
            #expect(report.failures.first { $0.key == key }?.error == .noSuchKey(bucket: Self.bucket, key: key))
            let path = cache.path(bucket: Self.bucket, key: key)
            #expect(!FileManager.default.fileExists(atPath: path) && !FileManager.default.fileExists(atPath: S3Cache.partialPath(of: path)))
        }
    }
}

/// A thread-safe counter for cancellation polls. `@unchecked Sendable`: `lock` guards `count`.
final class ByteCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count: Int64 = 0
    /// Adds one and returns the new count.
    func increment() -> Int64 { lock.lock(); defer { lock.unlock() }; count += 1; return count }
}
