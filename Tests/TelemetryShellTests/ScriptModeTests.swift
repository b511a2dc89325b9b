import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
import TelemetryTestSupport

/// The REPL reading a script from a non-terminal standard input, end to end through the built `telemetry`
/// (`telemetry --store X < script`): every dot-command and output mode, with exact expected output.
struct ScriptModeTests {
    static let pair = "SELECT document_id, os, memsize, cpucount / 3.0 AS ratio FROM pings WHERE document_id IN ('doc-1', 'doc-2') ORDER BY 1;\n"

    @Test("every output mode, .headers, multi-line and multi-statement input")
    func outputModes() throws {
        let fixture = try ShellFixture()
        let result = try fixture.script(Self.pair + """
            .mode csv
            \(Self.pair).mode tsv
            \(Self.pair).mode json
            \(Self.pair).mode markdown
            \(Self.pair)SELECT 'a|b' AS pipe, NULL AS empty;
            .mode line
            \(Self.pair).mode table
            .headers off
            SELECT document_id, os, memsize FROM pings WHERE document_id IN ('doc-1', 'doc-2') ORDER BY 1;
            .mode csv
            SELECT document_id, os FROM pings WHERE document_id = 'doc-1';
            .headers on
            .mode table
            SELECT os, count(*) AS pings
            FROM pings
            GROUP BY os
            ORDER BY pings DESC, os;
            SELECT 1 AS one; SELECT 'two' AS two;
            """)
        expectText(result.stdout, """
            document_id  os     memsize               ratio
            -----------  -----  -------  ------------------
            doc-1        WINNT     4096  1.3333333333333333
            doc-2        Linux     8192  2.6666666666666665
            document_id,os,memsize,ratio
            doc-1,WINNT,4096,1.3333333333333333
            doc-2,Linux,8192,2.6666666666666665
            document_id\tos\tmemsize\tratio
            doc-1\tWINNT\t4096\t1.3333333333333333
            doc-2\tLinux\t8192\t2.6666666666666665
            [
              {"document_id": "doc-1", "os": "WINNT", "memsize": 4096, "ratio": 1.3333333333333333},
              {"document_id": "doc-2", "os": "Linux", "memsize": 8192, "ratio": 2.6666666666666665}
            ]
            | document_id | os    | memsize |              ratio |
            |-------------|-------|--------:|-------------------:|
            | doc-1       | WINNT |    4096 | 1.3333333333333333 |
            | doc-2       | Linux |    8192 | 2.6666666666666665 |
            | pipe | empty |
            |------|------:|
            | a\\|b |  NULL |
            document_id = doc-1
                     os = WINNT
                memsize = 4096
                  ratio = 1.3333333333333333

            document_id = doc-2
                     os = Linux
                memsize = 8192
                  ratio = 2.6666666666666665
            doc-1  WINNT  4096
            doc-2  Linux  8192
            doc-1,WINNT
            os      pings
            ------  -----
            WINNT       3
            Darwin      1
            Linux       1
            one
            ---
              1
            two
            ---
            two

            """)
        expectText(result.stderr, "", "stderr")
        #expect(result.status == 0)
    }

    @Test(".tables, .schema, .dims, .histograms and .help")
    func listings() throws {
        let fixture = try ShellFixture()
        let result = try fixture.script("""
            .tables
            .schema store_meta
            .schema duplicate%
            .dims
            .dims appupdatechannel
            .histograms
            .histograms gc
            .histograms *_MS
            .mode csv
            .histograms TABS
            .help mode
            .help .hea
            """)
        expectText(result.stdout, """
            name                 type
            -------------------  -----
            duplicate_documents  view
            import_errors        table
            pings                table
            pings_dedup          view
            source_files         table
            store_meta           table
            CREATE TABLE store_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE VIEW duplicate_documents AS
                SELECT document_id, "reason" AS ping_type, count(*) AS copies FROM pings
                GROUP BY document_id, "reason" HAVING count(*) > 1;
            dimension         value           pings
            ----------------  --------------  -----
            reason            idle_daily          1
            reason            saved_session       4
            appName           Firefox             5
            appUpdateChannel  beta                1
            appUpdateChannel  nightly             2
            appUpdateChannel  release             2
            appVersion        25.0                2
            appVersion        26.0                1
            appVersion        28.0a1              2
            appBuildID        20131025151332      2
            appBuildID        20131028111111      1
            appBuildID        20131029030201      2
            submission_date   20131029            2
            submission_date   20131030            3
            dimension         value    pings
            ----------------  -------  -----
            appUpdateChannel  beta         1
            appUpdateChannel  nightly      2
            appUpdateChannel  release      2
            histogram     kind   pings
            ------------  -----  -----
            ADDON_SHIM    keyed      1
            GC_MS         plain      3
            PAGE_LOAD_MS  plain      1
            TABS_OPEN     plain      2
            histogram  kind   pings
            ---------  -----  -----
            GC_MS      plain      3
            histogram     kind   pings
            ------------  -----  -----
            GC_MS         plain      3
            PAGE_LOAD_MS  plain      1
            histogram,kind,pings
            TABS_OPEN,plain,2
            .mode table|csv|tsv|json|markdown|line
                How query results are printed
            .headers on|off
                Column names above the rows (table, csv, tsv)

            """)
        expectText(result.stderr, "", "stderr")
        #expect(result.status == 0)
    }

    @Test(".help lists every command of the table, with keys and statement rules")
    func help() throws {
        let fixture = try ShellFixture()
        let result = try fixture.script(".help\n")
        expectText(result.stdout, """
            .bail on|off                      Stop at the first error (default off; a terminal session ends)
            .check [--full]                   Verify the store, its column files and ping index; say what repairs any damage
            .dims [DIMENSION]                 Dimensions and their values, with ping counts
            .filter [FILE|clear]              Restrict queries and imports to what a job filter allows; no argument shows it
            .headers on|off                   Column names above the rows (table, csv, tsv)
            .help [COMMAND]                   List the commands, or show one
            .histograms [PATTERN]             Histogram names in the store (sampled); PATTERN: a substring or a glob
            .import PATH... [--filter FILE] [--histogram-cache DIR]
                                              Import storage files or raw logs, as telemetry import (incremental; the session filter applies)
            .job NAME|FILE.swift [ARGS]       Run a MapReduce job (built-in or Swift script; Ctrl-C cancels)
            .mode table|csv|tsv|json|markdown|line
                                              How query results are printed
            .once FILE                        Write the next command's output to FILE
            .open STORE                       Use another store file (.import creates a missing one)
            .output [FILE]                    Write output to FILE; no argument: back to the terminal
            .param set NAME VALUE | unset NAME | list | clear
                                              Values bound to :NAME, @NAME and $NAME in statements
            .quit                             Leave (also Ctrl-D)
            .run FILE                         Run the SQL and dot-commands in FILE
            .schema [TABLE]                   CREATE statements of the store, or of one table or view
            .tables                           Tables and views
            .timer on|off                     Print how long each statement took

            SQL statements end with ";" and may span lines. .param values bind to :NAME, @NAME and $NAME.
            Keys: Tab completes; Up/Down recall history; Ctrl-C cancels a query or import, and at an empty
            prompt twice exits; Ctrl-D exits.

            """)
        #expect(result.status == 0)
    }

    @Test(".param set, list, unset and clear; :NAME, @NAME and $NAME bind the same value; an unset parameter is an error naming it")
    func parameters() throws {
        let fixture = try ShellFixture()
        let result = try fixture.script("""
            .param set os WINNT
            .param set :min 2048
            .param set $label "'4096'"
            .param set @ratio 0.5
            .param set nothing NULL
            .param list
            SELECT document_id, memsize FROM pings WHERE os = :os AND memsize >= @min ORDER BY 1;
            SELECT $label AS label, typeof($label) AS type, :ratio * 2 AS doubled, :nothing IS NULL AS is_null, :unset AS unset;
            SELECT $label AS label, typeof($label) AS type, :ratio * 2 AS doubled, :nothing IS NULL AS is_null;
            .param unset os
            SELECT count(*) AS n FROM pings WHERE os = :os;
            .param unset os
            .param clear
            .param list
            """)
        expectText(result.stdout, """
            name     value
            -------  -------
            label    '4096'
            min      2048
            nothing  NULL
            os       'WINNT'
            ratio    0.5
            document_id  memsize
            -----------  -------
            doc-1           4096
            doc-3           2048
            label  type  doubled  is_null
            -----  ----  -------  -------
            4096   text      1.0        1
            name  value
            ----  -----

            """)
        expectText(result.stderr, """
            Error: stdin:8: parameter :unset has no value (give it with --param unset=VALUE or .param set unset VALUE; NULL is allowed) \
            in: SELECT $label AS label, typeof($label) AS type, :ratio * 2 AS doubled, :nothing IS NULL AS is_null, :unset AS unset;
            Error: stdin:11: parameter :os has no value (give it with --param os=VALUE or .param set os VALUE; NULL is allowed) \
            in: SELECT count(*) AS n FROM pings WHERE os = :os;
            Error: stdin:12: no parameter named os

            """, "stderr")
        #expect(result.status == 1)
    }

    @Test("errors name the line and point at the token; the session goes on; exit status 1")
    func errorsAndRecovery() throws {
        let fixture = try ShellFixture()
        let result = try fixture.script("""
            SELECT count(*) FORM pings;
            SELECT os,
                   count(*) AS n
            FROM pings
            GROUP BY oss;
            SELECT 1 AS before_error; SELECT * FROM nowhere; SELECT 2 AS never;
            SELECT json_extract('{', '$');
            .mdoe csv
            .h
            .mode xml
            .frobnicate
            .schema nowhere
            .dims nowhere
            .run nowhere.sql
            .open
            SELECT 'still here' AS status;
            """)
        expectText(result.stdout, """
            before_error
            ------------
                       1
            status
            ----------
            still here

            """)
        expectText(result.stderr, """
            Error: stdin:1: near "pings": syntax error
              SELECT count(*) FORM pings;
                                   ^--- error here
            Error: stdin:5: no such column: oss
              GROUP BY oss;
                       ^--- error here
            Error: stdin:6: no such table: nowhere
            Error: stdin:7: malformed JSON
            Error: stdin:8: unknown command .mdoe; did you mean .mode?
            Error: stdin:9: .h is ambiguous: .headers, .help, .histograms
            Error: stdin:10: usage: .mode table|csv|tsv|json|markdown|line
            Error: stdin:11: unknown command .frobnicate; .help lists the commands
            Error: stdin:12: no table or view named nowhere
            Error: stdin:13: no dimension named nowhere; the store's dimensions are reason, appName, appUpdateChannel, appVersion, appBuildID, submission_date
            Error: stdin:14: nowhere.sql: no such file
            Error: stdin:15: usage: .open STORE

            """, "stderr")
        #expect(result.status == 1)
    }

    @Test(".bail on stops at the first error; a clean script exits 0; a last statement without ';' runs")
    func bailAndExitStatus() throws {
        let fixture = try ShellFixture()
        let bailed = try fixture.script(".bail on\nSELECT 1 AS a;\nSELECT * FROM nowhere;\nSELECT 2 AS b;\n")
        expectText(bailed.stdout, "a\n-\n1\n")
        expectText(bailed.stderr, "Error: stdin:3: no such table: nowhere\n", "stderr")
        #expect(bailed.status == 1)

        let clean = try fixture.script("SELECT 1 AS a;\n")
        #expect(clean.status == 0)

        let unterminated = try fixture.script("select count(*) from pings")
        expectText(unterminated.stdout, "count(*)\n--------\n       5\n")
        #expect(unterminated.status == 0)

        let bailFlag = try fixture.telemetry(["run", "-", "--bail", "--store", fixture.store], stdin: "SELECT * FROM nowhere;\nSELECT 2;\n")
        expectText(bailFlag.stdout, "")
        #expect(bailFlag.status == 1)
    }

    @Test(".filter shadows pings (and the views over it) with a TEMP view, applies to .import; .filter clear")
    func filterAndImport() throws {
        let fixture = try ShellFixture()
        let result = try fixture.script("""
            .filter
            .filter filter.json
            .filter
            SELECT document_id, reason, submission_date FROM pings ORDER BY 1;
            SELECT count(*) AS every_ping FROM main.pings;
            SELECT count(*) AS documents FROM pings_dedup;
            .tables
            .dims reason
            .histograms
            .import more
            SELECT document_id, reason, submission_date FROM pings ORDER BY 1;
            DELETE FROM pings;
            .filter clear
            .filter
            SELECT count(*) AS n FROM pings;
            .import more --filter filter.json
            .import more
            SELECT count(*) AS n FROM pings;
            """)
        expectText(result.stdout, """
            No filter: queries and imports see everything.
            filter.json: "reason" IN ('saved_session') AND "submission_date" IN ('20131030')
            document_id  reason         submission_date
            -----------  -------------  ---------------
            doc-3        saved_session  20131030
            doc-4        saved_session  20131030
            every_ping
            ----------
                     5
            documents
            ---------
                    2
            name                 type
            -------------------  ---------------
            duplicate_documents  view, filtered
            import_errors        table
            pings                table, filtered
            pings_dedup          view, filtered
            source_files         table
            store_meta           table
            dimension  value          pings
            ---------  -------------  -----
            reason     saved_session      2
            histogram     kind   pings
            ------------  -----  -----
            GC_MS         plain      1
            PAGE_LOAD_MS  plain      1
            TABS_OPEN     plain      1
            document_id  reason         submission_date
            -----------  -------------  ---------------
            doc-3        saved_session  20131030
            doc-4        saved_session  20131030
            doc-6        saved_session  20131031
            No filter: queries and imports see everything.
            n
            -
            6
            n
            -
            7

            """)
        expectText(result.stderr, """
            Imported 1 ping from 1 file.
            Skipped files: 1 excluded by the filter.
            Error: stdin:12: cannot modify pings because it is a view
            Imported 0 pings from 0 files.
            Skipped files: 1 unchanged, 1 excluded by the filter.
            Imported 1 ping from 1 file.
            Skipped files: 1 unchanged.

            """, "stderr")
        #expect(result.status == 1)
    }

    @Test(".import creates a missing store and reports bad lines; .open switches stores")
    func importIntoNewStoreAndOpen() throws {
        let fixture = try ShellFixture()
        let fresh = fixture.directory.path + "/fresh.db"
        let result = try fixture.script("""
            SELECT count(*) FROM pings;
            .tables
            .import storage
            SELECT count(*) AS n FROM pings;
            SELECT reason, count(*) AS n FROM import_errors GROUP BY reason;
            .open store.db
            .import more
            SELECT count(*) AS n FROM pings;
            .open fresh.db
            SELECT count(*) AS n FROM pings;
            .open missing.db
            SELECT 1;
            """, store: fresh)
        expectText(result.stdout, """
            n
            -
            5
            reason  n
            ------  -
            no_tab  1
            n
            -
            7
            n
            -
            5

            """)
        expectText(fixture.masked(result.stderr), """
            Error: stdin:1: no store at $DIR/fresh.db: .import PATH creates it, .open STORE opens another
            Error: stdin:2: no store at $DIR/fresh.db: .import PATH creates it, .open STORE opens another
            Imported 5 pings from 3 files.
            Bad lines: 1 (no_tab 1).
            Details: SELECT path, line, reason, message FROM import_errors;
            Imported 2 pings from 2 files.
            No store at missing.db yet: .import PATH creates it.
            Error: stdin:12: no store at missing.db: .import PATH creates it, .open STORE opens another

            """, "stderr")
        #expect(result.status == 1)
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.path + "/missing.db"))
    }

    @Test(".output and .once write to files, untruncated; .output alone comes back to standard output")
    func outputRedirection() throws {
        let fixture = try ShellFixture()
        let result = try fixture.script("""
            .output out.txt
            SELECT payload FROM pings WHERE document_id = 'doc-1';
            .tables
            .once once.txt
            SELECT 'once' AS target;
            SELECT 'back to out.txt' AS target;
            .output
            SELECT 'stdout' AS target;
            .output sub/missing/dir.txt
            """)
        expectText(result.stdout, "target\n------\nstdout\n")
        expectText(fixture.masked(result.stderr), "Error: stdin:9: sub/missing/dir.txt: cannot write: No such file or directory\n", "stderr")
        let payload = ShellFixture.payloads[0]
        let out = try String(contentsOfFile: fixture.directory.path + "/out.txt", encoding: .utf8)
        expectText(out, """
            payload
            \(String(repeating: "-", count: payload.count))
            \(payload)
            name                 type
            -------------------  -----
            duplicate_documents  view
            import_errors        table
            pings                table
            pings_dedup          view
            source_files         table
            store_meta           table
            target
            ---------------
            back to out.txt

            """, "out.txt")
        let once = try String(contentsOfFile: fixture.directory.path + "/once.txt", encoding: .utf8)
        expectText(once, "target\n------\nonce\n", "once.txt")
    }

    @Test(".run FILE shares the session and names FILE:LINE in errors; recursion stops; .quit ends everything")
    func runFiles() throws {
        let fixture = try ShellFixture()
        try fixture.directory.write("inner.sql", text: "SELECT 'inner' AS source;\nSELECT * FROM nowhere;\n.mode csv\n")
        try fixture.directory.write("self.sql", text: ".run self.sql\n")
        let result = try fixture.script("""
            .run inner.sql
            SELECT 'after run' AS target;
            .run self.sql
            .quit
            SELECT 'not reached';
            """)
        expectText(result.stdout, "source\n------\ninner\ntarget\nafter run\n")
        expectText(result.stderr, """
            Error: inner.sql:2: no such table: nowhere
            Error: self.sql:1: self.sql: .run nested 17 deep; is a script running itself?

            """, "stderr")
        #expect(result.status == 1)
    }

    @Test(".timer on prints each statement's time on standard error")
    func timer() throws {
        let fixture = try ShellFixture()
        let result = try fixture.script(".timer on\nSELECT 1 AS a; SELECT 2 AS b;\n.timer off\nSELECT 3 AS c;\n")
        expectText(result.stdout, "a\n-\n1\nb\n-\n2\nc\n-\n3\n")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 2, "\(result.stderr)")
        #expect(lines.allSatisfy { $0.wholeMatch(of: /Run Time: \d+\.\d{3} s/) != nil }, "\(result.stderr)")
    }

    @Test("telemetry run FILE --param k=v, by name from queries/, from standard input, and with --mode")
    func runCommand() throws {
        let fixture = try ShellFixture()
        try fixture.directory.write("queries/by_os.sql", text: """
            -- Pings per OS on or after a day.
            SELECT os, count(*) AS pings FROM pings WHERE submission_date >= :day GROUP BY os ORDER BY os;

            """)
        let byName = try fixture.telemetry(["run", "by_os", "--param", "day=20131030", "--store", fixture.store, "--mode", "csv"])
        expectText(byName.stdout, "os,pings\nDarwin,1\nWINNT,2\n")
        #expect(byName.status == 0, "\(byName.stderr)")

        let byPath = try fixture.telemetry(["run", "queries/by_os.sql", "--param", "day='20131029'", "--store", fixture.store, "--no-header"])
        expectText(byPath.stdout, "Darwin  1\nLinux   1\nWINNT   3\n")
        #expect(byPath.status == 0)

        let fromStdin = try fixture.telemetry(["run", "-", "--store", fixture.store, "--param", "x=1", "--mode", "json"], stdin: "SELECT :x AS x;")
        expectText(fromStdin.stdout, "[\n  {\"x\": 1}\n]\n")

        let failing = try fixture.telemetry(["run", "-", "--store", fixture.store], stdin: "SELECT 1 AS a;\nSELECT * FROM nowhere;\n")
        expectText(failing.stderr, "Error: stdin:2: no such table: nowhere\n", "stderr")
        #expect(failing.status == 1)

        let missing = try fixture.telemetry(["run", "nope", "--store", fixture.store])
        #expect(missing.status == 64)
        #expect(missing.stderr.contains("nope: no such file (nor in queries/)"))

        let badParam = try fixture.telemetry(["run", "queries/by_os.sql", "--param", "day", "--store", fixture.store])
        #expect(badParam.status == 64)
    }

    @Test("Ctrl-C (SIGINT) cancels a script's running statement and ends the script with status 130")
    func interruptedScript() throws {
        let fixture = try ShellFixture()
        let script = try fixture.directory.write("long.sql", text: """
            SELECT 'before' AS step;
            WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c;
            SELECT 'after' AS step;

            """)
        let out = fixture.directory.path + "/long.out", err = fixture.directory.path + "/long.err"
        let child = try ChildProcess(Fixtures.telemetryExecutable, ["run", script, "--store", fixture.store, "--mode", "csv"],
                                     environment: ["HOME": fixture.home], stdout: out, stderr: err)
        // Wait until the long statement runs (the first result is out), then press Ctrl-C.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, (try? String(contentsOfFile: out, encoding: .utf8))?.contains("before") != true {
            Thread.sleep(forTimeInterval: 0.1)
        }
        Thread.sleep(forTimeInterval: 0.3)
        child.send(SIGINT)
        #expect(child.wait() == 130)
        expectText(try String(contentsOfFile: out, encoding: .utf8), "step\nbefore\n")
        expectText(try String(contentsOfFile: err, encoding: .utf8), "Interrupted.\n", "stderr")
    }

    @Test("`echo SQL | telemetry` and `telemetry repl` read standard input as a script; a broken store exits 2")
    func pipesIntoTheDefaultCommand() throws {
        let fixture = try ShellFixture()
        let piped = try fixture.telemetry(["--store", fixture.store], stdin: "select count(*) from pings;\n")
        expectText(piped.stdout, "count(*)\n--------\n       5\n")
        #expect(piped.status == 0)

        let repl = try fixture.telemetry(["repl", "--store", fixture.store], stdin: ".mode csv\nSELECT os FROM pings WHERE document_id = 'doc-2';\n")
        expectText(repl.stdout, "os\nLinux\n")

        let notAStore = try fixture.directory.write("not-a-store.db", text: "hello")
        let broken = try fixture.telemetry(["--store", notAStore], stdin: "SELECT 1;\n")
        #expect(broken.status == 2)
        #expect(broken.stderr.hasPrefix("telemetry: "), "\(broken.stderr)")
    }
}
