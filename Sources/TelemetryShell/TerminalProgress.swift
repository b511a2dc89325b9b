import Foundation
import TelemetryStore
#if canImport(Glibc)
import Glibc
#endif

/// Draws an import's progress on standard error: a bar with files, pings, MB/s and ETA when stderr is a
/// terminal; nothing while running otherwise (the caller prints a one-line summary at the end).
public final class TerminalProgress: @unchecked Sendable {   // used from the importer's writer thread only
    public let isTerminal: Bool
    private var lastWidth = 0

    public init() { isTerminal = isatty(2) == 1 }

    /// Redraws the progress line for an import.
    public func update(_ p: ImportProgress) {
        update(label: "pings \(p.pings)  bad \(p.badLines)", done: p.compressedBytesDone, total: p.compressedBytesTotal,
               filesDone: p.filesDone, filesTotal: p.filesTotal,
               bytesPerSecond: p.elapsedSeconds > 0 ? Double(p.uncompressedBytes) / p.elapsedSeconds : 0, elapsed: p.elapsedSeconds)
    }

    /// Redraws the progress line: a bar of `done`/`total` (bytes), files, `label`, MB/s and ETA.
    public func update(label: String, done: Int, total: Int, filesDone: Int, filesTotal: Int, bytesPerSecond: Double, elapsed: Double) {
        guard isTerminal else { return }
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let barWidth = 24
        let filled = Int((fraction * Double(barWidth)).rounded(.down))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: max(0, barWidth - filled))
        var eta = "--"
        if fraction > 0.01 && fraction < 1 {
            eta = Self.duration(elapsed * (1 - fraction) / fraction)
        } else if fraction >= 1 { eta = "0s" }
        let text = String(format: "%@ %3.0f%%  files %d/%d  %@  %.1f MB/s  ETA %@",
                          bar, fraction * 100, filesDone, filesTotal, label, bytesPerSecond / 1e6, eta)
        FileDescriptorSink.standardError().write("\r" + text + "\u{1B}[K")
        lastWidth = text.count
    }

    /// Clears the progress line.
    public func finish() {
        guard isTerminal, lastWidth > 0 else { return }
        FileDescriptorSink.standardError().write("\r\u{1B}[K")
        lastWidth = 0
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }
}
