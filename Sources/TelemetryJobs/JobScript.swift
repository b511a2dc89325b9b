import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a job script's plugin hands the host: a type-erased runner for one `Job`.
///
/// A script declares its job as a global `let telemetryJob = MyJob()`; the compile step adds the
/// `@_cdecl("telemetry_make_job")` factory that returns one of these (docs/jobs.md).
public final class JobScriptEntry: Sendable {
    /// Runs the job with its arguments against the store.
    public let run: @Sendable (_ arguments: [String], _ storePath: String, _ options: JobOptions) async throws -> JobResult
    /// The job with the identity the host gives it (`JobScript.loadJob`), for partials and merges.
    public let make: @Sendable (_ identity: JobIdentity) -> AnyJob

    public init<J: Job>(_ job: J) {
        run = { _, path, options in try await JobRunner.run(job, storePath: path, options: options) }
        make = { identity in AnyJob(job, identity: identity) }
    }

    /// A +1 pointer for the C factory.
    public func retained() -> UnsafeMutableRawPointer { Unmanaged.passRetained(self).toOpaque() }
}

/// Compiles a Swift job script into a shared library (cached by content hash) and loads it.
public enum JobScript {
    /// The factory symbol the compile step adds.
    static let factorySymbol = "telemetry_make_job"

    /// Compiles (or reuses) and loads the script at `path`.
    /// - Throws: `JobError.script` when no toolchain or module is found, with the compiler's diagnostics
    ///   (file:line:column) when compiling fails, or when loading fails.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> JobScriptEntry {
        let library = try compile(path: path, environment: environment)
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
            throw JobError.script("\(path): cannot load \(library): \(String(cString: dlerror()))")
        }
        guard let symbol = dlsym(handle, factorySymbol) else {
            throw JobError.script("\(path): the plugin has no \(factorySymbol)")
        }
        typealias Factory = @convention(c) () -> UnsafeMutableRawPointer
        let factory = unsafeBitCast(symbol, to: Factory.self)
        guard let entry = Unmanaged<AnyObject>.fromOpaque(factory()).takeRetainedValue() as? JobScriptEntry else {
            throw JobError.script("\(path): the plugin's job is not a TelemetryJobs.JobScriptEntry (was it built against another copy of TelemetryJobs?)")
        }
        return entry
    }

    /// Compiles (or reuses) and loads the script at `path` as a job named by the file (`MyJob.swift`) whose version
    /// is the FNV-1a 64 of its source: an edited script refuses partials of the old one.
    /// - Throws: as `load`.
    public static func loadJob(path: String, arguments: [String],
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AnyJob {
        let entry = try load(path: path, environment: environment)
        guard let source = FileManager.default.contents(atPath: path) else { throw JobError.script("\(path): cannot read the job script") }
        var hasher = FNV1a()
        hasher.add(Array(source))
        return entry.make(JobIdentity(name: URL(fileURLWithPath: path).lastPathComponent, version: String(hasher.value, radix: 16),
                                      arguments: arguments))
    }

    /// Compiles `path` unless a library for the same source, compiler and module is cached; returns its path.
    public static func compile(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        guard let source = FileManager.default.contents(atPath: path) else { throw JobError.script("\(path): cannot read the job script") }
        guard source.range(of: Data("telemetryJob".utf8)) != nil else {
            throw JobError.script("\(path): the script must declare its job as a global: let telemetryJob = MyJob() (see queries/ExampleJob.swift)")
        }
        guard let swiftc = findCompiler(environment) else {
            throw JobError.script("no Swift toolchain found: set $SWIFTC or put swiftc on PATH to run job scripts (built-in jobs need none)")
        }
        guard let modules = modulesDirectory() else {
            throw JobError.script("TelemetryJobs.swiftmodule not found next to \(executablePath() ?? "the executable") (expected in Modules/ beside it)")
        }
        let moduleStamp = (try? FileManager.default.attributesOfItem(atPath: modules + "/TelemetryJobs.swiftmodule")[.modificationDate] as? Date)?
            .timeIntervalSince1970 ?? 0
        var hasher = FNV1a()
        hasher.add(Array(source)); hasher.add(Array(swiftc.utf8)); hasher.add(Array(modules.utf8)); hasher.add(Array("\(moduleStamp)".utf8))
        let key = String(hasher.value, radix: 16)
        let cache = cacheDirectory(environment)
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        let library = "\(cache)/job-\(key).so"
        if FileManager.default.fileExists(atPath: library) { return library }

        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let factoryFile = "\(cache)/job-\(key)-factory.swift"
        try Data("""
            import TelemetryJobs
            @_cdecl("\(factorySymbol)")
            public func telemetryMakeJob() -> UnsafeMutableRawPointer { JobScriptEntry(telemetryJob).retained() }

            """.utf8).write(to: URL(fileURLWithPath: factoryFile))
        let partial = library + ".partial"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: swiftc)
        process.arguments = ["-emit-library", "-swift-version", "6", "-Onone", "-module-name", "TelemetryJob_\(key)",
                             "-I", modules] + clangModuleMaps(modules: modules).flatMap { ["-Xcc", "-fmodule-map-file=" + $0] }
            + [absolute, factoryFile, "-o", partial]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = errors
        try process.run()
        let diagnostics = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: factoryFile)
        guard process.terminationStatus == 0 else {
            try? FileManager.default.removeItem(atPath: partial)
            throw JobError.script("\(path): compiling the job script failed:\n" + String(decoding: diagnostics, as: UTF8.self))
        }
        try FileManager.default.moveItem(atPath: partial, toPath: library)
        return library
    }

    /// `$SWIFTC`, then `swiftc` on PATH, then beside the running toolchain's `swift` (`/usr/bin`).
    static func findCompiler(_ environment: [String: String]) -> String? {
        if let explicit = environment["SWIFTC"], !explicit.isEmpty {
            return FileManager.default.isExecutableFile(atPath: explicit) ? explicit : nil
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/swiftc"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// `Modules/` beside the running executable (SwiftPM's `.build/<config>/Modules`), or the executable's directory.
    static func modulesDirectory() -> String? {
        guard let executable = executablePath() else { return nil }
        let directory = URL(fileURLWithPath: executable).deletingLastPathComponent().path
        for candidate in [directory + "/Modules", directory] where FileManager.default.fileExists(atPath: candidate + "/TelemetryJobs.swiftmodule") {
            return candidate
        }
        return nil
    }

    static func executablePath() -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments.first
    }

    /// Module maps of the C modules TelemetryJobs' dependencies import (CSQLite, CLZMA, …): those SwiftPM
    /// generated beside the build (`<config>/<Target>.build/module.modulemap`) and the system-library ones in the
    /// package's `Sources/` (found from this file's path, so job scripts need a source checkout build).
    static func clangModuleMaps(modules: String) -> [String] {
        let fm = FileManager.default
        var maps: [String] = []
        let buildDirectory = URL(fileURLWithPath: modules).lastPathComponent == "Modules"
            ? URL(fileURLWithPath: modules).deletingLastPathComponent().path : modules
        for name in ((try? fm.contentsOfDirectory(atPath: buildDirectory)) ?? []).sorted() where name.hasSuffix(".build") {
            let map = "\(buildDirectory)/\(name)/module.modulemap"
            if fm.fileExists(atPath: map) { maps.append(map) }
        }
        var sources = URL(fileURLWithPath: #filePath)
        sources.deleteLastPathComponent(); sources.deleteLastPathComponent()   // Sources/TelemetryJobs/JobScript.swift
        for name in ((try? fm.contentsOfDirectory(atPath: sources.path)) ?? []).sorted() {
            let map = "\(sources.path)/\(name)/module.modulemap"
            if fm.fileExists(atPath: map) { maps.append(map) }
        }
        return maps
    }

    /// `$XDG_CACHE_HOME/telemetry/jobs`, else `~/.cache/telemetry/jobs`.
    static func cacheDirectory(_ environment: [String: String]) -> String {
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/telemetry/jobs" }
        return NSHomeDirectory() + "/.cache/telemetry/jobs"
    }
}

/// 64-bit FNV-1a, for cache keys.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: [UInt8]) {
        for byte in bytes { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
        value = (value ^ 0xff) &* 0x100_0000_01b3   // field separator
    }
}
