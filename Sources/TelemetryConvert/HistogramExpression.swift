/// Integer arithmetic expressions as old `Histograms.json` files write numeric fields: `"10 * 1000"`,
/// `"80 + 1"`, `"(1 + 2) * 3"` (`spec/histograms.md` §1.1). Mozilla's tool used Python `eval`; this evaluates only
/// decimal digits, `+ - * /`, unary `+`/`-`, parentheses and spaces, nothing else. `/` is floor division, as
/// Python 2 divided integers.
enum HistogramExpression {
    /// Why an expression could not be evaluated.
    enum Failure: Error, Equatable {
        case syntax(String)
        case overflow
        case divisionByZero
    }

    /// Nesting limit for parentheses and unary signs (the grammar recurses).
    static let maxDepth = 64

    /// The value of `text`.
    /// - Throws: `Failure` for anything else than the grammar above (named constants such as
    ///   `JS::gcreason::NUM_TELEMETRY_REASONS`, empty text), on int64 overflow and on division by zero.
    /// - Complexity: O(text length).
    static func evaluate(_ text: String) throws(Failure) -> Int64 {
        var parser = Parser(bytes: Array(text.utf8))
        let value = try parser.expression(depth: 0)
        parser.skipSpaces()
        guard parser.index == parser.bytes.count else {
            throw .syntax("unexpected character at offset \(parser.index)")
        }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipSpaces() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 }
        }

        mutating func peek() -> UInt8? {
            skipSpaces()
            return index < bytes.count ? bytes[index] : nil
        }

        /// expression := term (('+' | '-') term)*
        mutating func expression(depth: Int) throws(Failure) -> Int64 {
            var value = try term(depth: depth)
            while let op = peek(), op == UInt8(ascii: "+") || op == UInt8(ascii: "-") {
                index += 1
                let rhs = try term(depth: depth)
                let (result, overflow) = op == UInt8(ascii: "+")
                    ? value.addingReportingOverflow(rhs) : value.subtractingReportingOverflow(rhs)
                if overflow { throw .overflow }
                value = result
            }
            return value
        }

        /// term := factor (('*' | '/') factor)*
        mutating func term(depth: Int) throws(Failure) -> Int64 {
            var value = try factor(depth: depth)
            while let op = peek(), op == UInt8(ascii: "*") || op == UInt8(ascii: "/") {
                index += 1
                let rhs = try factor(depth: depth)
                if op == UInt8(ascii: "*") {
                    let (result, overflow) = value.multipliedReportingOverflow(by: rhs)
                    if overflow { throw .overflow }
                    value = result
                } else {
                    guard rhs != 0 else { throw .divisionByZero }
                    if value == .min && rhs == -1 { throw .overflow }
                    // Floor division: round toward negative infinity when the signs differ.
                    var quotient = value / rhs
                    if value % rhs != 0 && ((value < 0) != (rhs < 0)) { quotient -= 1 }
                    value = quotient
                }
            }
            return value
        }

        /// factor := ('+' | '-') factor | digits | '(' expression ')'
        mutating func factor(depth: Int) throws(Failure) -> Int64 {
            guard depth < HistogramExpression.maxDepth else { throw .syntax("nested too deeply") }
            guard let c = peek() else { throw .syntax("unexpected end of expression") }
            switch c {
            case UInt8(ascii: "-"):
                index += 1
                let operand = try factor(depth: depth + 1)
                guard operand != .min else { throw .overflow }
                return -operand
            case UInt8(ascii: "+"):
                index += 1
                return try factor(depth: depth + 1)
            case UInt8(ascii: "("):
                index += 1
                let value = try expression(depth: depth + 1)
                guard peek() == UInt8(ascii: ")") else { throw .syntax("missing ')' at offset \(index)") }
                index += 1
                return value
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                var value: Int64 = 0
                while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                    let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times10.addingReportingOverflow(Int64(bytes[index] - 0x30))
                    if o1 || o2 { throw .overflow }
                    value = sum
                    index += 1
                }
                return value
            default:
                throw .syntax("unexpected character at offset \(index)")
            }
        }
    }
}
