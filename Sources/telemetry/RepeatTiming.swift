import Foundation

/// `--repeat N` of `query` and `job`: runs the same work N times in one process (warm store, mapped columns) and
/// reports wall-clock times on standard error, for benchmarks (`scripts/bench-query.sh`).
///
/// Output line: `timing: runs=N first_ms=F min_ms=M median_ms=D` (milliseconds, three decimals; the median of
/// the runs after the first when N ≥ 2, else the only run).
enum RepeatTiming {
    /// Runs `body(isLast)` `runs` times and prints the timing line when `runs` > 1 or `always` is set.
    static func measure(runs: Int, _ body: (_ isLast: Bool) throws -> Void) rethrows {
        var times: [Double] = []
        for index in 0..<max(1, runs) {
            let start = DispatchTime.now().uptimeNanoseconds
            try body(index == max(1, runs) - 1)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        if runs > 1 { printError(line(times)) }
    }

    static func line(_ times: [Double]) -> String {
        let hot = times.count > 1 ? Array(times.dropFirst()).sorted() : times
        let median = hot.count % 2 == 1 ? hot[hot.count / 2] : (hot[hot.count / 2 - 1] + hot[hot.count / 2]) / 2
        func ms(_ value: Double) -> String { String(format: "%.3f", value) }
        return "timing: runs=\(times.count) first_ms=\(ms(times[0])) min_ms=\(ms(times.min() ?? 0)) median_ms=\(ms(median))"
    }
}
