import ArgumentParser
import Foundation
import TelemetryCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes to standard output and files that report write failures (disk full, a closed pipe) instead of
/// trapping as `FileHandle.write(_:)` does (docs/store.md "Full disk").
enum Output {
    /// A failed write: `file` is "standard output" or the path, `reason` the system's.
    struct WriteFailure: Error, CustomStringConvertible {
        var file: String
        var reason: String
        var description: String { "\(file): write failed: \(reason)" }
    }

    /// Writes all of `text` to `descriptor`, retrying on EINTR and short writes (`FileOutput.writeAll`).
    /// - Throws: `WriteFailure` naming `name`.
    static func write(_ text: String, to descriptor: Int32, name: String) throws {
        do throws(FileOutput.Failure) { try FileOutput.writeAll(descriptor, text, name: name) } catch {
            throw WriteFailure(file: name, reason: error.reason)
        }
    }

    /// Writes `text` to standard output.
    static func standardOutput(_ text: String) throws { try write(text, to: 1, name: "standard output") }

    /// Creates or truncates `path` and writes `text` (`FileOutput.writeWhole`); on a failure the partial file is
    /// removed (a device such as `/dev/full` never is).
    /// - Throws: `WriteFailure` naming `path`.
    static func file(_ text: String, path: String) throws {
        do throws(FileOutput.Failure) { try FileOutput.writeWhole(Array(text.utf8), to: path) } catch {
            throw WriteFailure(file: path, reason: error.reason)
        }
    }

    /// `ExitCode(2)` after printing `error`: what a command does when its output cannot be written.
    static func failed(_ error: Error) -> ExitCode {
        printError("\(error)")
        return ExitCode(2)
    }
}
