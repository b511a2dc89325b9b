import ArgumentParser
import Foundation
import TelemetryCore
import TelemetryS3
import TelemetryShell
import TelemetryStore

/// The `s3://` side of `telemetry import` (docs/s3.md): resolve credentials, list and select keys with the filter,
/// download them into the cache, and hand the cached files to the normal importer.
struct S3ImportOptions: ParsableArguments {
    @Option(name: .customLong("endpoint-url"),
            help: ArgumentHelp("An S3-compatible endpoint (MinIO, Ceph, …), addressed path-style. Default: AWS.", valueName: "url"))
    var endpointURL: String?

    @Option(help: ArgumentHelp("The bucket's region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1).", valueName: "region"))
    var region: String?

    @Option(help: ArgumentHelp("A profile of ~/.aws/credentials and ~/.aws/config (default: AWS_PROFILE or default).", valueName: "name"))
    var profile: String?

    @Flag(name: .customLong("no-sign-request"), help: "Send anonymous requests (public buckets); no credentials are looked up.")
    var noSignRequest = false

    @Option(name: .customLong("cache-dir"),
            help: ArgumentHelp("Download cache, <dir>/<bucket>/<key> (default: $XDG_CACHE_HOME/telemetry/s3 or ~/.cache/telemetry/s3).", valueName: "dir"))
    var cacheDir: String?

    @Option(help: ArgumentHelp("Parallel downloads.", valueName: "n"))
    var downloads = 4

    @Flag(name: .customLong("verify-cache"), help: "Re-hash every cached file against its ETag, not only those whose mtime changed.")
    var verifyCache = false

    @Flag(name: .customLong("dry-run"), help: "Print the keys (and local files) the filter selects, their count and total size; fetch and import nothing.")
    var dryRun = false

    @Option(name: .customLong("keys-from"),
            help: ArgumentHelp("With one s3:// path: import only the keys listed in FILE (one per line, as --dry-run prints them: SIZE TAB KEY, or KEY); a listed key the selection lacks is an error.", valueName: "file"))
    var keysFrom: String?

    func validate() throws {
        guard downloads >= 1 else { throw ValidationError("--downloads must be at least 1") }
    }

    /// Checks the s3:// arguments among `paths` (the rest are local paths).
    func validate(paths: [String]) throws {
        for path in paths where S3Location.isS3URL(path) {
            do { _ = try S3Location(url: path) } catch { throw ValidationError("\(error)") }
        }
        if keysFrom != nil && paths.filter(S3Location.isS3URL).count != 1 {
            throw ValidationError("--keys-from applies to exactly one s3:// path")
        }
    }

    /// The keys selected under the s3:// paths, and the client to fetch them with.
    final class Selected {
        let client: S3Client
        let selections: [S3Selection]
        init(client: S3Client, selections: [S3Selection]) { (self.client, self.selections) = (client, selections) }
        /// URLs under which no key is selectable at all (a misspelt prefix): warned about, exit status 1.
        var emptyLocations: [String] {
            selections.filter { $0.selected.isEmpty && $0.excludedKeys == 0 && $0.prunedPrefixes.isEmpty }.map { "\($0.location)" }
        }
        deinit { client.shutdown() }
    }

    /// The cached files of the selected keys, fetched now or earlier.
    struct Fetched {
        var localPaths: [String] = []
        /// Some selected key could not be fetched, or a URL selected nothing (the others are imported; exit status 1).
        var hadFailures = false
    }

    /// Resolves credentials and lists the s3:// `paths`, applying `filter` to the keys. Nil when there are none.
    /// - Parameter schema: the store's schema (its dimension count fixes the layout depth): `selectionSchema`.
    /// - Throws: `ValidationError` for a filter of another dimension count; `ExitCode(2)` after printing an S3
    ///   failure (credentials, bucket, region, endpoint).
    func select(_ paths: [String], schema: DimensionSchema, filter: DimensionSchema?) throws -> Selected? {
        let urls = paths.filter(S3Location.isS3URL)
        guard !urls.isEmpty else { return nil }
        if let filter, filter.dimensions.count != schema.dimensions.count {
            throw ValidationError("the filter has \(filter.dimensions.count) dimensions, the store's schema \(schema.dimensions.count)")
        }
        let client: S3Client
        do {
            let settings = try AWSConfiguration.resolve(profile: profile, region: region, endpointURL: endpointURL, anonymous: noSignRequest)
            client = S3Client(settings: settings, connectionsPerHost: downloads)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        let wanted = try keysFrom.map { try ImportCommand.listedPaths($0) }
        var selections: [S3Selection] = []
        do {
            for url in urls {
                let location = try S3Location(url: url)
                var selection = try S3Blocking.run {
                    try await S3Selector.select(client: client, location: location, schema: schema, filter: filter)
                }
                if let wanted, let keysFrom {
                    // Keep the listing's order; every listed key must be selected (else some pings would be missing).
                    let keep = Set(wanted)
                    let found = Set(selection.selected.map(\.key))
                    if let absent = wanted.first(where: { !found.contains($0) }) {
                        client.shutdown()
                        printError("\(keysFrom): key \(absent) is not among the keys selected under \(location) (\(wanted.count) listed)")
                        throw ExitCode(2)
                    }
                    selection.selected = selection.selected.filter { keep.contains($0.key) }
                }
                selections.append(selection)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            client.shutdown()
            printError("\(error)")
            throw ExitCode(2)
        }
        let selected = Selected(client: client, selections: selections)
        for location in selected.emptyLocations { printError("warning: \(location): no file to import there") }
        return selected
    }

    /// `--dry-run`: one `<size>\t<key>` line per selected key, then a count and size line per URL.
    func printDryRun(_ selected: Selected?) {
        for selection in selected?.selections ?? [] {
            var out = ""
            for object in selection.selected { out += "\(object.size)\t\(object.key)\n" }
            out += "\(selection.location): \(selection.selected.count) file(s) selected, \(selection.totalBytes) bytes"
                + " (\(Self.megabytes(selection.totalBytes)))\(Self.listingNotes(selection)).\n"
            print(out, terminator: "")
        }
    }

    /// Downloads the selected keys into the cache; reports per URL on stdout (stderr with `--json`), progress on
    /// stderr. Failed keys are reported and left out; the rest are returned for import.
    func fetch(_ selected: Selected?, progress: TerminalProgress, json: Bool, isCancelled: @escaping @Sendable () -> Bool) throws -> Fetched {
        var fetched = Fetched()
        guard let selected else { return fetched }
        if !selected.emptyLocations.isEmpty { fetched.hadFailures = true }
        let cache = S3Cache(root: cacheDir ?? S3Cache.defaultRoot())
        for selection in selected.selections {
            let downloader = S3Downloader(client: selected.client, cache: cache, parallel: downloads, verifyCachedContent: verifyCache)
            let label = "downloading \(selection.location)"
            let (objects, bucket) = (selection.selected, selection.location.bucket)
            let report = try S3Blocking.run {
                await downloader.fetch(objects, bucket: bucket, progress: { p in
                    progress.update(label: label, done: Int(p.bytesDone), total: Int(p.bytesTotal), filesDone: p.filesDone,
                                    filesTotal: p.filesTotal, bytesPerSecond: p.elapsedSeconds > 0 ? Double(p.bytesTransferred) / p.elapsedSeconds : 0,
                                    elapsed: p.elapsedSeconds)
                }, isCancelled: isCancelled)
            }
            progress.finish()
            fetched.localPaths += report.localPaths
            if !report.failures.isEmpty { fetched.hadFailures = true }
            let text = Self.describe(report, selection: selection, cache: cache)
            if json { try? Output.write(text, to: 2, name: "standard error") } else { print(text, terminator: "") }
        }
        return fetched
    }

    static func describe(_ report: FetchReport, selection: S3Selection, cache: S3Cache) -> String {
        let ready = report.localPaths.count
        var parts = ["\(report.count { $0 == .downloaded }) downloaded"]
        let resumed = report.count { if case .resumed = $0 { true } else { false } }
        if resumed > 0 { parts.append("\(resumed) resumed") }
        parts.append("\(report.count { $0 == .reused }) reused from the cache")
        let refetched = report.count { $0 == .refetchedCorrupt }
        if refetched > 0 { parts.append("\(refetched) refetched (damaged in the cache)") }
        var out = "Fetched \(ready) file(s) from \(selection.location) into \(cache.layoutRoot(for: selection.location))"
            + " (\(megabytes(report.bytesTransferred)) transferred in \(String(format: "%.2f", report.seconds)) s): "
            + parts.joined(separator: ", ") + listingNotes(selection) + ".\n"
        let failures = report.failures.filter { $0.error != .cancelled }
        if !failures.isEmpty {
            out += "Download failures: \(failures.count)\n"
            for failure in failures.prefix(20) { out += "  \(failure.error)\n" }
            if failures.count > 20 { out += "  … and \(failures.count - 20) more\n" }
        }
        if report.interrupted { out += "Interrupted: finished downloads are cached, partial ones resume on the next run.\n" }
        return out
    }

    private static func listingNotes(_ selection: S3Selection) -> String {
        var notes: [String] = []
        if selection.excludedKeys > 0 || !selection.prunedPrefixes.isEmpty {
            notes.append("\(selection.excludedKeys) key(s) and \(selection.prunedPrefixes.count) prefix(es) excluded by the filter")
        }
        if !selection.outsideLayout.isEmpty {
            let shown = selection.outsideLayout.prefix(3).joined(separator: ", ")
            notes.append("\(selection.outsideLayout.count) key(s) outside the storage layout skipped (\(shown)\(selection.outsideLayout.count > 3 ? ", …" : ""))")
        }
        return notes.isEmpty ? "" : "; " + notes.joined(separator: "; ")
    }

    static func megabytes(_ bytes: Int64) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }

    /// The schema keys are classified with, before the store is opened: `--schema`, else the existing store's,
    /// else the seed's (what `Store(path:create:schema:)` will use).
    static func selectionSchema(requested: DimensionSchema?, storePath: String) -> DimensionSchema {
        if let requested { return requested }
        if FileManager.default.fileExists(atPath: storePath), let store = try? Store(path: storePath, create: false, readOnly: true) {
            return store.schema
        }
        return .seed
    }
}
