import Foundation

/// Errors of the REPL and the script runner. The session prints them as `Error: …` and goes on (it stops only
/// under `.bail on`). Descriptions never contain bound parameter values or ping contents.
public enum ShellError: Error, Equatable, CustomStringConvertible {
    /// A dot-command that is not in the table; `suggestion` is the closest name (`did you mean .mode?`).
    case unknownCommand(name: String, suggestion: String?)
    /// An abbreviation that matches several dot-commands.
    case ambiguousCommand(name: String, candidates: [String])
    /// Wrong arguments for `command`; `usage` is its line from `.help`.
    case usage(command: String, usage: String)
    /// A query or command needs a store and there is none at `path` yet.
    case noStore(path: String)
    /// A file named by a command does not exist.
    case fileNotFound(path: String)
    /// A file exists but cannot be read (a directory, no permission, not UTF-8 text).
    case unreadableFile(path: String, reason: String)
    /// An output file cannot be created or written.
    case cannotWrite(path: String, reason: String)
    /// `.schema NAME` or completion asked for a table or view the store does not have.
    case unknownTable(name: String)
    /// `.dims NAME` names no dimension of the store's schema.
    case unknownDimension(name: String, known: [String])
    /// `.param unset NAME` for a parameter that was never set.
    case unknownParameter(name: String)
    /// A filter (`.filter FILE`) whose dimension count differs from the store's schema.
    case filterMismatch(path: String, filterDimensions: Int, storeDimensions: Int)
    /// `.run` nested deeper than `ShellSession.maxScriptDepth` (a script that runs itself).
    case scriptTooDeep(path: String, depth: Int)
    /// The running query or import was cancelled with Ctrl-C.
    case interrupted
    /// An operation stopped on an environment failure (an unreadable histogram cache file, …); `message` says which.
    case operationFailed(message: String)

    public var description: String {
        switch self {
        case let .unknownCommand(name, suggestion):
            "unknown command .\(name)" + (suggestion.map { "; did you mean .\($0)?" } ?? "; .help lists the commands")
        case let .ambiguousCommand(name, candidates):
            ".\(name) is ambiguous: " + candidates.map { "." + $0 }.joined(separator: ", ")
        case let .usage(_, usage): "usage: \(usage)"
        case let .noStore(path): "no store at \(path): .import PATH creates it, .open STORE opens another"
        case let .fileNotFound(path): "\(path): no such file"
        case let .unreadableFile(path, reason): "\(path): cannot read: \(reason)"
        case let .cannotWrite(path, reason): "\(path): cannot write: \(reason)"
        case let .unknownTable(name): "no table or view named \(name)"
        case let .unknownDimension(name, known):
            "no dimension named \(name); the store's dimensions are \(known.joined(separator: ", "))"
        case let .unknownParameter(name): "no parameter named \(name)"
        case let .filterMismatch(path, filter, store):
            "\(path): the filter has \(filter) dimensions, the store's schema \(store)"
        case let .scriptTooDeep(path, depth): "\(path): .run nested \(depth) deep; is a script running itself?"
        case .interrupted: "interrupted"
        case let .operationFailed(message): message
        }
    }
}
