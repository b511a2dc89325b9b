import CEditLine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Turns Ctrl-C (SIGINT) into a cancel request for whatever the shell is running.
///
/// The signal handler (C, in `CEditLine/shim.h`) only writes a byte to a pipe; a watcher thread reads it and calls
/// the cancel action of the running operation: `Connection.interrupt()` for a query, raising the importer's
/// `isCancelled` flag for an import. A second Ctrl-C during the same operation exits at once (status 130), for an
/// operation that does not notice the first. Between operations: an interactive session ignores the signal (at
/// the prompt Ctrl-C is a key, handled by the line editor); a script stops after the current line, and a second
/// Ctrl-C exits at once.
///
/// Isolation: `shared` is used from the session's thread (`during`, `takeStopRequest`) and from the watcher
/// thread; `lock` guards all mutable state.
public final class InterruptWatcher: @unchecked Sendable {   // `lock` guards `cancel`, `presses`, `stopRequested`, `interactive`
    /// The process's watcher (SIGINT is process-wide). `install()` it before use.
    public static let shared = InterruptWatcher()

    private let lock = NSLock()
    private var installed = false
    private var cancel: (@Sendable () -> Void)?
    private var presses = 0
    private var stopRequested = false
    private var interactive = true

    private init() {}

    /// Installs the SIGINT handler and starts the watcher thread (once per process; later calls only update
    /// `interactive`). Without it, Ctrl-C keeps its default effect (the process ends).
    /// - Parameter interactive: whether Ctrl-C between operations is ignored (terminal) or stops the script.
    public func install(interactive: Bool) {
        lock.lock()
        self.interactive = interactive
        let first = !installed
        installed = true
        lock.unlock()
        guard first else { return }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = cedit_set_cloexec(readEnd)
        _ = cedit_set_nonblocking_cloexec(writeEnd)   // the handler must never block on a full pipe
        let thread = Thread { [self] in
            var byte: UInt8 = 0
            while true {
                let n = read(readEnd, &byte, 1)
                if n == 1 { handleSignal() } else if n < 0 && errno == EINTR { continue } else if n <= 0 { return }
            }
        }
        thread.name = "telemetry-sigint"
        thread.start()
        _ = cedit_install_sigint(writeEnd)
    }

    /// Runs `body` with `cancel` as the Ctrl-C action, and tells whether Ctrl-C was pressed meanwhile.
    /// - Parameter cancel: called on the watcher thread; must be thread-safe and quick.
    public func during<T>(cancel: @escaping @Sendable () -> Void, _ body: () throws -> T) rethrows -> (value: T, interrupted: Bool) {
        lock.lock()
        self.cancel = cancel
        presses = 0
        lock.unlock()
        defer {
            lock.lock()
            self.cancel = nil
            lock.unlock()
        }
        let value = try body()
        lock.lock()
        let interrupted = presses > 0
        lock.unlock()
        return (value, interrupted)
    }

    /// True (once) when a script was asked to stop by a Ctrl-C that came between operations.
    public func takeStopRequest() -> Bool {
        lock.lock()
        defer { stopRequested = false; lock.unlock() }
        return stopRequested
    }

    private func handleSignal() {
        lock.lock()
        if let cancel {
            presses += 1
            let again = presses > 1
            lock.unlock()
            if again { Self.exitNow() }
            cancel()
            return
        }
        if interactive { lock.unlock(); return }
        let again = stopRequested
        stopRequested = true
        lock.unlock()
        if again { Self.exitNow() }
    }

    private static func exitNow() -> Never {
        let message = Array("\ninterrupted twice: exiting\n".utf8)
        _ = message.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        _exit(130)
    }
}
