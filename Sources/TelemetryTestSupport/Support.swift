import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Locations of test inputs: the repository root and `../shared` (real data, conformance vectors, hazards).
public enum Fixtures {
    /// The package root (the directory holding Package.swift), derived from this file's path.
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }   // Sources/TelemetryTestSupport/Support.swift
        return url
    }()

    /// `../shared` beside the package root, or `$TELEMETRY_SHARED` when set.
    public static let shared: URL = {
        if let override = ProcessInfo.processInfo.environment["TELEMETRY_SHARED"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    /// A path inside `../shared`.
    public static func sharedPath(_ relative: String) -> String { shared.appendingPathComponent(relative).path }

    /// A path inside the repository.
    public static func repoPath(_ relative: String) -> String { packageRoot.appendingPathComponent(relative).path }

    /// Parses a JSON file under `../shared` (conformance vectors) with Foundation.
    public static func sharedJSON(_ relative: String) throws -> Any {
        let data = try Data(contentsOf: shared.appendingPathComponent(relative))
        return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }

    /// The built `telemetry` executable next to the test bundle (`.build/<config>/telemetry`).
    public static var telemetryExecutable: String {
        let bundle = Bundle.main.bundleURL
        var dir = bundle
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("telemetry").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        // Fall back to scanning the build directory next to the test binary's argv[0].
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var probe = argv0
        for _ in 0..<4 {
            let candidate = probe.appendingPathComponent("telemetry").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            probe.deleteLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/telemetry").path
    }
}

/// A fresh temporary directory, removed when the value is deinitialised.
public final class TemporaryDirectory: @unchecked Sendable {   // immutable after init
    public let url: URL
    public var path: String { url.path }

    public init(_ label: String = "telemetry-test") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Path of `relative` inside the directory; creates intermediate directories.
    public func file(_ relative: String) -> String {
        let target = url.appendingPathComponent(relative)
        try? FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        return target.path
    }

    /// Writes `bytes` to `relative` and returns its path.
    @discardableResult
    public func write(_ relative: String, _ bytes: [UInt8]) throws -> String {
        let path = file(relative)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Writes UTF-8 `text` to `relative` and returns its path.
    @discardableResult
    public func write(_ relative: String, text: String) throws -> String { try write(relative, Array(text.utf8)) }
}

/// Runs a process and captures its output.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `executable` with `arguments`, optional stdin text and extra environment; waits for it.
///
/// The child's stdin, stdout and stderr are temporary regular files, not pipes: reading a pipe with `FileHandle`
/// traps when `read` fails with EINTR (Foundation's SIGCHLD handler fires whenever another test's child exits),
/// and a pipe can fill and block the child. The child starts with no blocked signals (see `withChildSignalMask`).
public func runProcess(_ executable: String, _ arguments: [String], stdin: String? = nil,
                       environment: [String: String] = [:], currentDirectory: String? = nil) throws -> ProcessResult {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("runProcess-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let inURL = scratch.appendingPathComponent("stdin")
    let outURL = scratch.appendingPathComponent("stdout")
    let errURL = scratch.appendingPathComponent("stderr")
    try Data((stdin ?? "").utf8).write(to: inURL)
    try Data().write(to: outURL)
    try Data().write(to: errURL)

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let input = try FileHandle(forReadingFrom: inURL)
    let output = try FileHandle(forWritingTo: outURL)
    let error = try FileHandle(forWritingTo: errURL)
    defer { try? input.close(); try? output.close(); try? error.close() }
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    try withChildSignalMask { try process.run() }
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                         stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
}

/// Runs `body` (which should start a child process with `Process.run()`) with no signals blocked on this thread.
///
/// A child inherits the signal mask of the thread that spawns it, and `Process` on Linux does not reset it. Test
/// code runs on Swift concurrency / Dispatch worker threads, which block almost every signal, so without this a
/// child starts with SIGTERM, SIGINT, SIGCHLD… blocked: Python's `multiprocessing.Pool` then never ends its
/// workers (`gen_pings.py` hangs for ever) and a SIGINT sent to the child is never delivered.
public func withChildSignalMask<T>(_ body: () throws -> T) rethrows -> T {
    #if canImport(Glibc)
    var none = sigset_t(), previous = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    #endif
    return try body()
}
