import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the shell writes text: standard output or error, a file (`.output`, `.once`), or a buffer (tests).
///
/// - Important: Not `Sendable`: used by the thread running the session only.
public protocol OutputSink: AnyObject {
    /// Writes `text` (UTF-8) as is; no newline is added.
    func write(_ text: String)
    /// Columns of the terminal this sink writes to, or `nil` when it is not a terminal (a file or a pipe):
    /// table output is fitted to this width, and never truncated when it is `nil`.
    var terminalWidth: Int? { get }
    /// The first write failure since the last call (the system's reason, e.g. "No space left on device"), which
    /// it clears; nil when every write succeeded. Writes after a failure are dropped until it is taken, so the
    /// session reports it once, naming the file, and goes on (or stops under `.bail on`).
    func takeWriteFailure() -> (file: String, reason: String)?
}

extension OutputSink {
    public func takeWriteFailure() -> (file: String, reason: String)? { nil }
}

/// Writes to a file descriptor with `write(2)`, unbuffered, so it interleaves correctly with libedit's output.
public final class FileDescriptorSink: OutputSink {
    /// The descriptor written to (1 = standard output, 2 = standard error).
    public let descriptor: Int32
    private let closesDescriptor: Bool
    /// What the descriptor writes to, for messages: "standard output" or the file's path.
    public let name: String
    private var failure: String?

    /// Standard output.
    public static func standardOutput() -> FileDescriptorSink { FileDescriptorSink(descriptor: 1, name: "standard output") }
    /// Standard error.
    public static func standardError() -> FileDescriptorSink { FileDescriptorSink(descriptor: 2, name: "standard error") }

    /// Wraps `descriptor`; closes it on deinit when `closesDescriptor`.
    public init(descriptor: Int32, closesDescriptor: Bool = false, name: String? = nil) {
        self.descriptor = descriptor
        self.closesDescriptor = closesDescriptor
        self.name = name ?? "file descriptor \(descriptor)"
    }

    /// Creates or truncates the file at `path` for writing (mode 0644 before umask).
    /// - Throws: `ShellError.cannotWrite` with the system's reason.
    public convenience init(creatingFileAt path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ShellError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        self.init(descriptor: fd, closesDescriptor: true, name: path)
    }

    deinit { if closesDescriptor { close(descriptor) } }

    public func write(_ text: String) {
        guard failure == nil, !text.isEmpty else { return }
        var bytes = Array(text.utf8)
        var done = 0
        let count = bytes.count
        bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            while done < count {
                let n = Glibc.write(descriptor, base + done, count - done)
                if n > 0 { done += n; continue }
                if n < 0 && errno == EINTR { continue }
                failure = n < 0 ? String(cString: strerror(errno)) : "short write"   // EPIPE, disk full: report, don't spin
                return
            }
        }
    }

    public func takeWriteFailure() -> (file: String, reason: String)? {
        defer { failure = nil }
        return failure.map { (name, $0) }
    }

    public var terminalWidth: Int? {
        guard isatty(descriptor) == 1 else { return nil }
        var size = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }
}

/// Collects everything written, for tests and for capturing a command's output.
public final class StringSink: OutputSink {
    /// Everything written so far.
    public private(set) var text = ""
    /// Reported as the terminal width (nil: behaves like a file or pipe).
    public var terminalWidth: Int?

    /// An empty sink that reports `terminalWidth` (nil: a file or pipe).
    public init(terminalWidth: Int? = nil) { self.terminalWidth = terminalWidth }

    public func write(_ text: String) { self.text += text }

    /// Returns the text written so far and clears it.
    public func take() -> String {
        defer { text = "" }
        return text
    }
}
