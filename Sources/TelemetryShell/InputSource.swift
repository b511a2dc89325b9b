import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one read from an input gave.
public enum InputEvent: Sendable, Equatable {
    /// A line without its line break. Text recalled from history may hold several lines separated by `\n`.
    case line(String)
    /// Ctrl-C at the prompt; `discardedText` is true when the line being edited was not empty.
    case interrupt(discardedText: Bool)
    /// End of input (Ctrl-D on an empty line, end of file or pipe).
    case end
}

/// A source of shell input: the terminal through libedit, or lines from a pipe or file.
///
/// - Important: Not `Sendable`: read on the session's thread only.
public protocol InputSource: AnyObject {
    /// Names the input in error locations (`stdin`, a script path); `nil` for an interactive terminal, whose
    /// errors carry no location.
    var name: String? { get }
    /// True for a terminal: prompts, history, Ctrl-C at the prompt; at its end an unfinished statement is dropped
    /// rather than run.
    var isTerminal: Bool { get }
    /// Reads the next line. `continuation` is true while an SQL statement is unfinished (the continuation prompt).
    func next(continuation: Bool) -> InputEvent
    /// Records a complete entry (a statement, possibly several lines, or a dot-command) in the history, if any.
    func addHistory(_ entry: String)
}

/// Lines of a file or of standard input, read with `getline` / `readLine()`; no prompts, no history.
public final class StreamInput: InputSource {
    public let name: String?
    public var isTerminal: Bool { false }
    private let file: UnsafeMutablePointer<FILE>?

    /// Standard input (`readLine()`), named `stdin` in error messages.
    public init(standardInputNamed name: String = "stdin") {
        self.name = name
        file = nil
    }

    /// The file at `path`.
    /// - Throws: `ShellError.fileNotFound`, `.unreadableFile` (a directory, no permission).
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ShellError.fileNotFound(path: path) }
        guard !isDirectory.boolValue else { throw ShellError.unreadableFile(path: path, reason: "is a directory") }
        guard let file = fopen(path, "r") else {
            throw ShellError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
        }
        self.file = file
        name = path
    }

    deinit { if let file { fclose(file) } }

    public func next(continuation: Bool) -> InputEvent {
        guard let file else {
            return readLine(strippingNewline: true).map { .line(Self.strip($0)) } ?? .end
        }
        var buffer: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(buffer) }
        let count = getline(&buffer, &capacity, file)
        guard count >= 0, let buffer else { return .end }
        var text = String(decoding: UnsafeRawBufferPointer(start: buffer, count: count), as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        return .line(Self.strip(text))
    }

    public func addHistory(_ entry: String) {}

    /// Drops a trailing carriage return (CRLF files). Swift treats "\r\n" as one Character, so check the scalars.
    static func strip(_ line: String) -> String {
        var text = line
        while let last = text.unicodeScalars.last, last == "\r" || last == "\n" { text.unicodeScalars.removeLast() }
        return text
    }
}

/// Lines of an in-memory text, for tests and for scripts given as strings.
public final class TextInput: InputSource {
    public let name: String?
    public var isTerminal: Bool { false }
    private var lines: [String]
    private var index = 0

    /// The lines of `text` (split at `\n`; a final line break adds no empty line).
    public init(_ text: String, name: String? = "input") {
        var parts = text.components(separatedBy: "\n")
        if parts.last == "" { parts.removeLast() }
        lines = parts
        self.name = name
    }

    public func next(continuation: Bool) -> InputEvent {
        guard index < lines.count else { return .end }
        defer { index += 1 }
        return .line(StreamInput.strip(lines[index]))
    }

    public func addHistory(_ entry: String) {}
}
