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
/// The child is a `ChildProcess` (see there for why not Foundation's `Process`). Its stdin, stdout and stderr are
/// temporary regular files, not pipes: reading a pipe with `FileHandle` traps when `read` fails with EINTR, and a
/// full pipe blocks the child. `status` is the exit status, or 128 + the signal number when a signal ended it.
public func runProcess(_ executable: String, _ arguments: [String], stdin: String? = nil,
                       environment: [String: String] = [:], currentDirectory: String? = nil) throws -> ProcessResult {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("runProcess-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let inURL = scratch.appendingPathComponent("stdin")
    let outURL = scratch.appendingPathComponent("stdout")
    let errURL = scratch.appendingPathComponent("stderr")
    try Data((stdin ?? "").utf8).write(to: inURL)
    let child = try ChildProcess(executable, arguments, environment: environment, currentDirectory: currentDirectory,
                                 stdin: inURL.path, stdout: outURL.path, stderr: errURL.path)
    let status = child.wait()
    return ProcessResult(status: status,
                         stdout: String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self),
                         stderr: String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self))
}

/// Errors of `ChildProcess`.
public enum ChildProcessError: Error, CustomStringConvertible {
    /// `posix_spawn` (or setting up its attributes) failed with `errno`.
    case spawnFailed(executable: String, errno: Int32)

    public var description: String {
        switch self {
        case let .spawnFailed(executable, code): "cannot start \(executable): \(String(cString: strerror(code)))"
        }
    }
}

/// A child process started with `posix_spawn` and waited for with `waitpid` on its own pid.
///
/// Not Foundation's `Process`, which on Linux (a) notices the child's exit through a socket the child inherits,
/// so it waits for ever while any descendant keeps that socket open (a daemon such as a tmux server, or a process
/// another test spawned at that moment: swift-corelibs-foundation issue 4795); (b) starts the child with the
/// spawning thread's signal mask, and test threads block SIGTERM, SIGINT, SIGHUP, SIGUSR1…, so a Python
/// `multiprocessing.Pool` in the child can never stop its workers (`gen_pings.py` hung for ever) and a SIGINT
/// sent to the child is never delivered. Here the child starts with no signal blocked, the usual signals at their
/// default action (SIGPIPE is not ignored), no descriptors but 0–2 when the C library can close them, and its
/// standard streams on files.
///
/// - Important: Not `Sendable`; use it from one thread.
public final class ChildProcess {
    /// The child's process id.
    public let pid: pid_t
    private var rawStatus: Int32?

    /// Starts `executable` (a path; no `PATH` search) with `arguments`, the test process's environment plus
    /// `environment`, in `currentDirectory` (default: the current one), standard streams from/to the given files
    /// (stdout and stderr are created or truncated).
    /// - Throws: `ChildProcessError.spawnFailed` when the child cannot be started.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                currentDirectory: String? = nil, stdin: String = "/dev/null", stdout: String = "/dev/null",
                stderr: String = "/dev/null") throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let closeFrom = Self.closeFrom { _ = closeFrom(&actions, 3) }
        if let currentDirectory {
            guard let chdir = Self.changeDirectory else { throw ChildProcessError.spawnFailed(executable: executable, errno: ENOSYS) }
            let rc = chdir(&actions, currentDirectory)
            guard rc == 0 else { throw ChildProcessError.spawnFailed(executable: executable, errno: rc) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ, SIGWINCH] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw ChildProcessError.spawnFailed(executable: executable, errno: rc) }
        self.pid = pid
    }

    deinit {
        // Never leave a zombie (or a running child) behind.
        if rawStatus == nil { kill(pid, SIGKILL); _ = wait() }
    }

    /// True until the child has ended (and then it has been reaped).
    public var isRunning: Bool {
        if rawStatus != nil { return false }
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == pid { rawStatus = status; return false }
        if rc < 0 && errno != EINTR { rawStatus = -1; return false }
        return true
    }

    /// Sends `signal` to the child (if it has not been reaped yet).
    public func send(_ signal: Int32) {
        if rawStatus == nil { kill(pid, signal) }
    }

    /// Waits for the child to end; returns its exit status, or 128 + the signal number when a signal ended it.
    @discardableResult
    public func wait() -> Int32 {
        while rawStatus == nil {
            var status: Int32 = 0
            let rc = waitpid(pid, &status, 0)
            if rc == pid { rawStatus = status } else if rc < 0 && errno != EINTR { rawStatus = -1 }
        }
        if let signal = terminatingSignal { return 128 + signal }
        return exitStatus ?? -1
    }

    /// The exit status, when the child has ended by exiting.
    public var exitStatus: Int32? {
        guard let status = rawStatus, status >= 0, status & 0x7F == 0 else { return nil }
        return (status >> 8) & 0xFF
    }

    /// The signal that ended the child, when one did.
    public var terminatingSignal: Int32? {
        guard let status = rawStatus, status >= 0, status & 0x7F != 0, status & 0x7F != 0x7F else { return nil }
        return status & 0x7F
    }

    private typealias FileActionsPointer = UnsafeMutablePointer<posix_spawn_file_actions_t>

    /// `posix_spawn_file_actions_addchdir_np` (glibc 2.29, macOS 10.15), looked up at run time: Swift's C
    /// library module does not declare it.
    private static let changeDirectory: (@convention(c) (FileActionsPointer, UnsafePointer<CChar>) -> Int32)? =
        symbol("posix_spawn_file_actions_addchdir_np")

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34), looked up at run time; nil elsewhere.
    private static let closeFrom: (@convention(c) (FileActionsPointer, Int32) -> Int32)? =
        symbol("posix_spawn_file_actions_addclosefrom_np")

    private static func symbol<T>(_ name: String) -> T? {
        guard let handle = dlopen(nil, RTLD_NOW), let pointer = dlsym(handle, name) else { return nil }
        return unsafeBitCast(pointer, to: T.self)
    }
}
