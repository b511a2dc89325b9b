import Foundation
import Testing
import TelemetryTestSupport

/// The helpers every end-to-end test relies on: the executable under test and `runProcess`.
struct TestSupportTests {
    @Test("Fixtures.telemetryExecutable is the telemetry built beside this test bundle (whatever the scratch path)")
    func executableIsFromThisBuild() throws {
        let executable = URL(fileURLWithPath: Fixtures.telemetryExecutable)
        #expect(FileManager.default.isExecutableFile(atPath: executable.path))
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        #expect(executable.resolvingSymlinksInPath().deletingLastPathComponent().path
                == testBinary.deletingLastPathComponent().path,
                "telemetry at \(executable.path), tests at \(testBinary.path)")
        let version = try runProcess(executable.path, ["--version"])
        #expect(version.status == 0)
        #expect(version.stdout == "0.1.0\n")
    }

    @Test("runProcess: stdin in, stdout and stderr apart, exit status, environment, working directory")
    func runProcessRoundTrip() throws {
        let directory = TemporaryDirectory("e2e-support")
        let result = try runProcess("/bin/sh", ["-c", "cat; echo \"$E2E_VALUE\" >&2; pwd >&2; exit 3"],
                                    stdin: "line 1\nline 2\n", environment: ["E2E_VALUE": "from env"],
                                    currentDirectory: directory.path)
        #expect(result.status == 3)
        #expect(result.stdout == "line 1\nline 2\n")
        #expect(result.stderr == "from env\n\(directory.url.resolvingSymlinksInPath().path)\n")
        // Output larger than a pipe buffer (64 KiB) does not block the child.
        let big = try runProcess("/bin/sh", ["-c", "yes x | head -c 1000000"])
        #expect(big.status == 0)
        #expect(big.stdout.utf8.count == 1_000_000)
    }

    @Test("runProcess returns when the child exits, even if a grandchild it left behind still runs")
    func grandchildDoesNotBlock() throws {
        let started = Date()
        let result = try runProcess("/bin/sh", ["-c", "sleep 3 & echo started"])
        #expect(result.status == 0)
        #expect(result.stdout == "started\n")
        #expect(Date().timeIntervalSince(started) < 2.5)
    }

    @Test("ChildProcess: exit status, the signal that ended it, and isRunning")
    func childProcessStatus() throws {
        let exited = try ChildProcess("/bin/sh", ["-c", "exit 7"])
        #expect(exited.wait() == 7)
        #expect(exited.exitStatus == 7)
        #expect(exited.terminatingSignal == nil)
        #expect(!exited.isRunning)

        let sleeper = try ChildProcess("/bin/sleep", ["30"])
        #expect(sleeper.isRunning)
        sleeper.send(SIGTERM)   // delivered: the child does not inherit this thread's blocked signals
        #expect(sleeper.wait() == 128 + SIGTERM)
        #expect(sleeper.terminatingSignal == SIGTERM)
        #expect(sleeper.exitStatus == nil)
        #expect(!sleeper.isRunning)
    }

    #if os(Linux)
    @Test("runProcess: the child starts with no blocked signals (else python multiprocessing hangs at exit)")
    func childSignalMaskIsEmpty() throws {
        let result = try runProcess("/bin/grep", ["-E", "^Sig(Blk|Ign):", "/proc/self/status"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("SigBlk:\t0000000000000000\n"), "child: \(result.stdout)")
    }
    #endif
}
