import Foundation

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
public func runProcess(_ executable: String, _ arguments: [String], stdin: String? = nil,
                       environment: [String: String] = [:], currentDirectory: String? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try? input.fileHandleForWriting.close()
    // Read both pipes concurrently so a full pipe cannot block the child.
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}
