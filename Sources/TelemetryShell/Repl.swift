import Foundation
import TelemetryOperations
import TelemetryStore
#if canImport(Glibc)
import Glibc
#endif

/// Entry points for `telemetry repl` (also `telemetry` alone) and `telemetry run FILE`.
///
/// Exit statuses: 0 — no error; 1 — a script met an error (or `.bail on` stopped the session); 2 — the store
/// could not be opened; 130 — Ctrl-C stopped a script.
public enum Repl {
    /// History file name in `$HOME`.
    public static let historyFileName = ".telemetry_history"

    /// Runs a session on standard input: interactive with libedit when it is a terminal, otherwise as a script
    /// (no prompts; stops with status 1 under `.bail on`, and ends with 1 when any error occurred).
    /// - Parameter banner: first line printed on a terminal (program name and version).
    /// - Returns: the exit status.
    public static func run(storePath: String, banner: String) -> Int32 {
        let interactive = isatty(0) == 1
        InterruptWatcher.shared.install(interactive: interactive)
        let errors = FileDescriptorSink.standardError()
        var session: ShellSession
        do {
            session = try ShellSession(storePath: storePath, interactive: interactive, interrupts: .shared)
        } catch {
            errors.write("telemetry: \(error)\n")
            return 2
        }
        guard interactive else {
            return exitStatus(session.run(StreamInput(standardInputNamed: "stdin")), session: session)
        }
        let home = session.home.flatMap { $0.isEmpty ? nil : $0 } ?? Self.passwordHome()
        let historyPath = home.map { ($0.hasSuffix("/") ? $0 : $0 + "/") + historyFileName }
        guard let input = EditLineInput(historyPath: historyPath, completer: session.makeCompleter()) else {
            return exitStatus(session.run(StreamInput(standardInputNamed: "stdin")), session: session)
        }
        FileDescriptorSink.standardOutput().write(
            "\(banner) · store \(session.storePath)\n"
                + "Enter SQL ending with \";\", or .help. Tab completes; Ctrl-C cancels; Ctrl-D exits.\n")
        if session.store == nil {
            errors.write("No store at \(session.storePath) yet: .import PATH creates it, .open STORE opens another.\n")
        }
        let end = session.run(input)
        return end == .bailed ? 1 : 0
    }

    /// Runs the script at `path` (`-` = standard input) non-interactively: `telemetry run`.
    /// - Parameters:
    ///   - parameters: `.param` values set before the first line (`--param name=value`, parsed like `.param set`).
    ///   - settings: initial `.mode`, `.headers`, `.bail`.
    /// - Returns: the exit status.
    public static func runScript(path: String, storePath: String, parameters: [(String, String)],
                                 settings: ShellSettings = ShellSettings()) -> Int32 {
        InterruptWatcher.shared.install(interactive: false)
        let errors = FileDescriptorSink.standardError()
        var session: ShellSession
        let input: InputSource
        do {
            session = try ShellSession(storePath: storePath, interactive: false, interrupts: .shared)
            input = path == "-" ? StreamInput(standardInputNamed: "stdin") : try StreamInput(path: path)
        } catch {
            errors.write("telemetry: \(error)\n")
            return 2
        }
        session.settings = settings
        for (name, value) in parameters { session.setParameter(name, to: QueryOperation.parameterValue(value)) }
        return exitStatus(session.run(input), session: session)
    }

    /// A script's exit status from how it ended.
    static func exitStatus(_ end: SessionEnd, session: ShellSession) -> Int32 {
        switch end {
        case .interrupted:
            FileDescriptorSink.standardError().write("Interrupted.\n")
            return 130
        case .bailed: return 1
        case .quit, .endOfInput: return session.errorCount > 0 ? 1 : 0
        }
    }

    /// The home directory from the password database, when `$HOME` is unset.
    static func passwordHome() -> String? {
        guard let entry = getpwuid(getuid()), let directory = entry.pointee.pw_dir else { return nil }
        return String(cString: directory)
    }
}
