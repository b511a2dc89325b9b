import Foundation

/// What Tab offers at the cursor: the word it replaces and the candidates for it.
public struct Completion: Sendable, Equatable {
    /// The text just before the cursor that a candidate replaces (may be empty).
    public var word: String
    /// Candidates, sorted and distinct.
    public var candidates: [Candidate]

    /// One replacement for `word`.
    public struct Candidate: Sendable, Equatable, Comparable {
        /// Replaces the word.
        public var text: String
        /// Appended after `text` when it is the only candidate: `" "`, `"/"` (a directory), `"("` (a function),
        /// `"'"` (closes a string literal) or nothing.
        public var suffix: String

        /// A candidate `text`, followed by `suffix` when it is the only one.
        public init(_ text: String, suffix: String = " ") {
            self.text = text
            self.suffix = suffix
        }

        public static func < (a: Candidate, b: Candidate) -> Bool { (a.text, a.suffix) < (b.text, b.suffix) }
    }

    /// Sorts the candidates and drops repeated texts (the first of each kept).
    public init(word: String, candidates: [Candidate]) {
        self.word = word
        var seen = Set<String>()
        self.candidates = candidates.sorted().filter { seen.insert($0.text).inserted }
    }

    /// The longest prefix all candidates share (compared case-insensitively, spelled as the first candidate),
    /// or the single candidate's text plus its suffix.
    public var insertion: String? {
        guard let first = candidates.first else { return nil }
        if candidates.count == 1 { return first.text + first.suffix }
        var common = Array(first.text)
        for candidate in candidates.dropFirst() {
            let other = Array(candidate.text)
            var length = 0
            while length < min(common.count, other.count), String(common[length]).lowercased() == String(other[length]).lowercased() {
                length += 1
            }
            common = Array(common.prefix(length))
        }
        let prefix = String(common)
        return prefix.count > word.count ? prefix : nil
    }
}

/// Decides what Tab completes, from the text before the cursor: dot-command names; their arguments (file paths
/// after `.open`, `.import`, `.run`, `.output`, `.once`, `.filter`; modes; on/off; tables; histogram names;
/// dimensions; parameter names); in SQL, keywords, tables, columns and functions, histogram names inside a JSON path
/// string (`'$.histograms.SAMPLE_<Tab>`), and dimension values after `column =` or `column IN (`, quoted.
///
/// - Important: Not `Sendable` (reads the store through `catalog`); runs on the session's thread.
public struct Completer {
    /// Where table, column, histogram and dimension names come from.
    public let catalog: Catalog
    /// `$HOME`, for `~/` in file paths.
    public var home: String?

    /// A completer over `catalog`; `home` expands `~/` in paths.
    public init(catalog: Catalog, home: String? = nil) {
        self.catalog = catalog
        self.home = home
    }

    /// SQL keywords offered in statements (SQLite's most used).
    public static let keywords = [
        "ALL", "AND", "AS", "ASC", "ATTACH", "BEGIN", "BETWEEN", "BY", "CASE", "CAST", "COLLATE", "COMMIT", "CREATE",
        "CROSS", "DELETE", "DESC", "DETACH", "DISTINCT", "DROP", "ELSE", "END", "ESCAPE", "EXCEPT", "EXISTS", "EXPLAIN",
        "FILTER", "FROM", "GLOB", "GROUP", "HAVING", "IN", "INDEX", "INNER", "INSERT", "INTERSECT", "INTO", "IS", "JOIN",
        "LEFT", "LIKE", "LIMIT", "MATERIALIZED", "NOT", "NULL", "NULLS", "OFFSET", "ON", "OR", "ORDER", "OUTER", "OVER",
        "PARTITION", "PRAGMA", "QUERY", "PLAN", "RECURSIVE", "REPLACE", "ROLLBACK", "SELECT", "SET", "TABLE", "TEMP",
        "THEN", "UNION", "UPDATE", "USING", "VALUES", "VIEW", "WHEN", "WHERE", "WINDOW", "WITH",
    ]

    /// Completes the text before the cursor.
    /// - Parameters:
    ///   - pending: earlier lines of an unfinished SQL statement (empty at the main prompt).
    ///   - line: the current line up to the cursor.
    /// - Complexity: may read the store on first use (cached in `catalog`); file completion lists one directory.
    public func complete(pending: String, line: String) -> Completion {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        if pending.allSatisfy(\.isWhitespace), trimmed.hasPrefix(".") {
            return completeDotCommand(String(trimmed))
        }
        return completeSQL(pending + line)
    }

    // MARK: dot-commands

    private func completeDotCommand(_ line: String) -> Completion {
        guard let firstSpace = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
            let typed = line.dropFirst().lowercased()
            let names = DotCommand.all.map(\.name).filter { $0.hasPrefix(typed) }
            return Completion(word: line, candidates: names.map { .init("." + $0) })
        }
        let name = String(line[line.index(after: line.startIndex)..<firstSpace]).lowercased()
        guard case let .found(command) = DotCommand.lookup(name) else { return Completion(word: "", candidates: []) }
        let rest = line[firstSpace...]
        let endsInSpace = rest.last == " " || rest.last == "\t"
        var arguments = rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let word = endsInSpace ? "" : (arguments.popLast() ?? "")
        return completeArgument(command.completion, word: word, previous: arguments)
    }

    private func completeArgument(_ kind: DotCommand.ArgumentCompletion, word: String, previous: [String]) -> Completion {
        func choices(_ options: [String]) -> Completion {
            Completion(word: word, candidates: options.filter { $0.lowercased().hasPrefix(word.lowercased()) }.map { .init($0) })
        }
        switch kind {
        case .none:
            return Completion(word: word, candidates: [])
        case .files:
            return files(word)
        case let .filesOr(words):
            let fileCandidates = files(word).candidates
            return Completion(word: word, candidates: fileCandidates + choices(words).candidates)
        case .importArguments:
            if previous.last == "--filter" { return files(word) }
            if word.hasPrefix("-") { return choices(["--filter"]) }
            return files(word)
        case let .firstArgument(options):
            return previous.isEmpty ? choices(options) : Completion(word: word, candidates: [])
        case .tables:
            return previous.isEmpty ? choices(catalog.tableNames()) : Completion(word: word, candidates: [])
        case .histograms:
            return previous.isEmpty ? choices(catalog.histogramNames()) : Completion(word: word, candidates: [])
        case .dimensions:
            return previous.isEmpty ? choices(catalog.dimensionNames) : Completion(word: word, candidates: [])
        case .commands:
            return previous.isEmpty ? choices(DotCommand.all.map(\.name)) : Completion(word: word, candidates: [])
        case .parameters:
            if previous.isEmpty { return choices(["clear", "list", "set", "unset"]) }
            if previous.count == 1, ["set", "unset"].contains(previous[0].lowercased()) {
                return Completion(word: word, candidates: catalog.parameterNames.filter { $0.hasPrefix(word) }.map { .init($0) })
            }
            return Completion(word: word, candidates: [])
        }
    }

    /// File and directory names starting with `word` (`~/` expanded for the lookup, kept in the result).
    func files(_ word: String) -> Completion {
        let slash = word.lastIndex(of: "/")
        let directoryPart = slash.map { String(word[...$0]) } ?? ""
        let base = slash.map { String(word[word.index(after: $0)...]) } ?? word
        var lookup = directoryPart.isEmpty ? "." : directoryPart
        if let home, !home.isEmpty, lookup.hasPrefix("~/") { lookup = home + lookup.dropFirst() }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: lookup) else {
            return Completion(word: word, candidates: [])
        }
        let candidates: [Completion.Candidate] = names.filter { name in
            name.hasPrefix(base) && (base.hasPrefix(".") || !name.hasPrefix("."))
        }.map { name in
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: (lookup.hasSuffix("/") ? lookup : lookup + "/") + name, isDirectory: &isDirectory)
            return .init(directoryPart + name, suffix: isDirectory.boolValue ? "/" : " ")
        }
        return Completion(word: word, candidates: candidates)
    }

    // MARK: SQL

    /// Lexical state at the end of `text`: inside a '…' string, a "…" identifier, a comment, or code.
    enum Lexical: Equatable {
        case code
        case string(start: String.Index)
        case quotedIdentifier(start: String.Index)
        case comment
    }

    static func lexicalState(_ text: String) -> Lexical {
        var state = Lexical.code
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            switch state {
            case .code:
                if character == "'" { state = .string(start: next) }
                else if character == "\"" { state = .quotedIdentifier(start: next) }
                else if character == "-", next < text.endIndex, text[next] == "-" {
                    // A line comment runs to the end of the line.
                    if let newline = text[next...].firstIndex(of: "\n") { index = newline } else { return .comment }
                } else if character == "/", next < text.endIndex, text[next] == "*" {
                    guard let end = text[text.index(after: next)...].range(of: "*/") else { return .comment }
                    index = text.index(before: end.upperBound)
                }
            case .string:
                if character == "'" { state = .code }   // '' inside a string: leaves and re-enters at once
            case .quotedIdentifier:
                if character == "\"" { state = .code }
            case .comment:
                break
            }
            index = text.index(after: index)
        }
        return state
    }

    private func completeSQL(_ text: String) -> Completion {
        switch Self.lexicalState(text) {
        case .comment:
            return Completion(word: "", candidates: [])
        case let .quotedIdentifier(start):
            let word = String(text[start...])
            let names = catalog.tableNames() + catalog.columnNames()
            return Completion(word: word, candidates: names.filter { $0.lowercased().hasPrefix(word.lowercased()) }.map { .init($0, suffix: "\"") })
        case let .string(start):
            let content = String(text[start...])
            let before = String(text[..<text.index(before: start)])
            return completeInString(content, before: before)
        case .code:
            break
        }
        let wordStart = text.lastIndex(where: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "$") }).map { text.index(after: $0) }
            ?? text.startIndex
        let word = String(text[wordStart...])
        let before = String(text[..<wordStart])
        // `column = nig<Tab>` → 'nightly'
        if let column = Self.comparedColumn(before), !catalog.values(ofDimension: column).isEmpty {
            let values = catalog.values(ofDimension: column).filter { $0.lowercased().hasPrefix(word.lowercased()) }
            return Completion(word: word, candidates: values.map { .init(SessionFilter.literal($0), suffix: "") })
        }
        if before.hasSuffix(".") {   // main.pi<Tab>, p.os<Tab>
            let names = catalog.tableNames() + catalog.columnNames()
            return Completion(word: word, candidates: names.filter { $0.lowercased().hasPrefix(word.lowercased()) }.map { .init($0) })
        }
        let previous = before.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).last.map { $0.uppercased() }
        if let previous, ["FROM", "JOIN", "INTO", "UPDATE", "TABLE"].contains(previous), before.last?.isWhitespace ?? false {
            return Completion(word: word, candidates: catalog.tableNames().filter { $0.lowercased().hasPrefix(word.lowercased()) }.map { .init($0) })
        }
        guard !word.isEmpty else { return Completion(word: word, candidates: []) }
        let lower = word.lowercased()
        let uppercase = word.first.map { $0.isUppercase } ?? true
        var candidates: [Completion.Candidate] = Self.keywords.filter { $0.lowercased().hasPrefix(lower) }.map {
            .init(uppercase ? $0 : $0.lowercased())
        }
        candidates += catalog.tableNames().filter { $0.lowercased().hasPrefix(lower) }.map { .init($0) }
        candidates += catalog.columnNames().filter { $0.lowercased().hasPrefix(lower) }.map { .init($0) }
        candidates += catalog.functionNames().filter { $0.lowercased().hasPrefix(lower) }.map { .init($0, suffix: "(") }
        return Completion(word: word, candidates: candidates)
    }

    /// Inside a string literal: histogram names in a JSON path, dimension values after `column =`, else both.
    private func completeInString(_ content: String, before: String) -> Completion {
        if content.hasPrefix("$") {
            let segments = content.split(separator: ".", omittingEmptySubsequences: false)
            guard segments.count >= 2, let container = segments.dropLast().last,
                  container.lowercased().hasSuffix("histograms") else { return Completion(word: "", candidates: []) }
            let word = String(segments.last ?? "")
            let names = catalog.histogramNames().filter { $0.lowercased().hasPrefix(word.lowercased()) }
            return Completion(word: word, candidates: names.map { .init($0, suffix: "'") })
        }
        let lower = content.lowercased()
        if let column = Self.comparedColumn(before) {
            let values = catalog.values(ofDimension: column)
            if !values.isEmpty {
                return Completion(word: content, candidates: values.filter { $0.lowercased().hasPrefix(lower) }.map {
                    .init($0.replacingOccurrences(of: "'", with: "''"), suffix: "'")
                })
            }
        }
        var names = catalog.histogramNames()
        for dimension in catalog.dimensionNames { names += catalog.values(ofDimension: dimension) }
        return Completion(word: content, candidates: names.filter { $0.lowercased().hasPrefix(lower) }.map {
            .init($0.replacingOccurrences(of: "'", with: "''"), suffix: "'")
        })
    }

    /// The column compared in `… column = ` / `column IN ('a', ` at the end of `text`, if any.
    static func comparedColumn(_ text: String) -> String? {
        let pattern = #"([A-Za-z_][A-Za-z0-9_]*)"?\s*(?:=|==|!=|<>|<=|>=|<|>|\s+(?:NOT\s+)?IN\s*\((?:\s*'(?:[^']|'')*'\s*,)*)\s*$"#
        guard let regex = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else { return nil }
        let range = NSRange(text.startIndex..., in: text)
        guard let match = regex.firstMatch(in: text, range: range), let name = Range(match.range(at: 1), in: text) else { return nil }
        return String(text[name])
    }
}
