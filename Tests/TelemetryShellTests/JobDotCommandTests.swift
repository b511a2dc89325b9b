import Foundation
import Testing
import TelemetryTestSupport

/// `.job` in the REPL (script mode): built-in jobs over the fixture store, with the session filter applied.
struct JobDotCommandTests {
    @Test(".job runs a built-in job; the session filter applies; bad usage is an error")
    func jobDotCommand() throws {
        let fixture = try ShellFixture()
        let result = try fixture.script(".job os-distribution\n.filter \(fixture.filter)\n.job pings-per-day\n")
        expectText(result.stdout, "Darwin\t1\nLinux\t1\nWINNT\t3\n20131030\t2\n")
        #expect(result.stderr.contains("5 pings mapped"), "\(result.stderr)")
        #expect(result.stderr.contains("2 pings mapped"), "\(result.stderr)")
        #expect(result.status == 0)
        let bad = try fixture.script(".job no-such-job\n")
        #expect(bad.stderr.contains("no job named 'no-such-job'"), "\(bad.stderr)")
    }
}
