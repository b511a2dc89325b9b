/// Suggestions for a histogram name the store does not have (issue 11 item 8: a typo is an error, never NULL or 0).
public enum HistogramNames {
    /// The largest edit distance of a suggested name.
    public static let maximumDistance = 3

    /// Names of `known` within `maximumDistance` edits (Levenshtein, case-insensitive) of `name`, closest first
    /// (ties in name order), at most `limit`.
    /// - Complexity: O(|known| · |name| · length of a known name).
    public static func closest(to name: String, in known: [String], limit: Int = 5) -> [String] {
        let wanted = Array(name.uppercased().utf8)
        var scored: [(distance: Int, name: String)] = []
        for candidate in known {
            let distance = editDistance(wanted, Array(candidate.uppercased().utf8), bound: maximumDistance)
            if distance <= maximumDistance { scored.append((distance, candidate)) }
        }
        scored.sort { ($0.distance, $0.name) < ($1.distance, $1.name) }
        return scored.prefix(limit).map(\.name)
    }

    /// `no histogram named NAME in the store; closest: A, B` (or why there is no suggestion).
    public static func unknownNameMessage(_ name: String, known: [String]) -> String {
        let close = closest(to: name, in: known)
        if known.isEmpty { return "no histogram named \(name) in the store (it has no histograms)" }
        if close.isEmpty {
            return "no histogram named \(name) in the store (no name within \(maximumDistance) edits among its \(known.count) histogram names)"
        }
        return "no histogram named \(name) in the store; closest: " + close.joined(separator: ", ")
    }

    /// Levenshtein distance of two byte strings, or `bound + 1` once it must exceed `bound`.
    static func editDistance(_ a: [UInt8], _ b: [UInt8], bound: Int) -> Int {
        if abs(a.count - b.count) > bound { return bound + 1 }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            current[0] = i
            var rowMinimum = current[0]
            for j in stride(from: 1, through: b.count, by: 1) {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
                rowMinimum = min(rowMinimum, current[j])
            }
            if rowMinimum > bound { return bound + 1 }
            swap(&previous, &current)
        }
        return min(previous[b.count], bound + 1)
    }
}

/// A histogram name the store does not have: `CONTEXT: no histogram named NAME in the store; closest: A, B`.
public struct UnknownHistogramError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Who asked (an SQL function such as `histogram_sum`, or a job), or nil.
    public var context: String?
    public var name: String
    /// The closest names of the store (`HistogramNames.closest`).
    public var suggestions: [String]
    public let description: String

    public init(context: String?, name: String, known: [String]) {
        self.context = context
        self.name = name
        suggestions = HistogramNames.closest(to: name, in: known)
        description = (context.map { $0 + ": " } ?? "") + HistogramNames.unknownNameMessage(name, known: known)
    }
}
