import Foundation
import Testing
import TelemetryTestSupport

/// Exit statuses and messages of the command line: missing store, SQL errors, usage errors, help.
struct CommandLineErrorTests {
    /// ArgumentParser's exit status for a usage (validation) error: EX_USAGE.
    static let usageError: Int32 = 64

    @Test("query on a missing store: non-zero exit, stderr names the path, and no file is created")
    func queryMissingStore() throws {
        let directory = TemporaryDirectory("e2e-missing")
        let store = directory.file("absent.db")
        let result = try CLI.run(["query", "SELECT 1", "--store", store])
        #expect(result.status != 0)
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains(store), "stderr: \(result.stderr)")
        #expect(result.stderr.contains("no store here"), "stderr: \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: store), "a query must not create a store")
    }

    @Test("the store comes from $TELEMETRY_STORE when --store is absent, else ./telemetry.db")
    func storeFromEnvironment() throws {
        let directory = TemporaryDirectory("e2e-env-store")
        let (store, _) = try Sample.importInto(directory)
        let viaEnvironment = try CLI.run(["query", "SELECT count(*) AS n FROM pings", "--format", "csv"],
                                         environment: ["TELEMETRY_STORE": store])
        #expect(viaEnvironment.status == 0, "stderr: \(viaEnvironment.stderr)")
        #expect(viaEnvironment.stdout == "n\n363\n")
        // --store wins over the environment.
        let other = directory.file("other.db")
        let overridden = try CLI.run(["query", "SELECT 1", "--store", other], environment: ["TELEMETRY_STORE": store])
        #expect(overridden.status == 2)
        #expect(overridden.stderr.contains(other))
        // Neither: ./telemetry.db in the working directory.
        let empty = TemporaryDirectory("e2e-cwd")
        let defaulted = try CLI.run(["query", "SELECT 1"], currentDirectory: empty.path)
        #expect(defaulted.status == 2)
        #expect(defaulted.stderr.contains("telemetry.db: no store here"), "stderr: \(defaulted.stderr)")
    }

    @Test("a SQL syntax error: exit 1 with SQLite's message; a missing table likewise")
    func sqlErrors() throws {
        let directory = TemporaryDirectory("e2e-sql-error")
        let (store, _) = try Sample.importInto(directory)
        let syntax = try CLI.run(["query", "SELEC os FROM pings", "--store", store])
        #expect(syntax.status == 1)
        #expect(syntax.stdout.isEmpty)
        #expect(syntax.stderr.contains("near \"SELEC\": syntax error"), "stderr: \(syntax.stderr)")
        let table = try CLI.run(["query", "SELECT * FROM no_such_table", "--store", store])
        #expect(table.status == 1)
        #expect(table.stderr.contains("no such table: no_such_table"), "stderr: \(table.stderr)")
        // Statements before the failing one have run and printed; nothing after it runs.
        let partial = try CLI.run(["query", "SELECT 1 AS a; SELEC 2; SELECT 3 AS c", "--format", "csv", "--store", store])
        #expect(partial.status == 1)
        #expect(partial.stdout == "a\n1\n")
        #expect(partial.stderr.contains("syntax error"))
    }

    @Test("import of a missing path: usage error naming it, and no store is created")
    func importMissingPath() throws {
        let directory = TemporaryDirectory("e2e-no-input")
        let store = directory.file("x.db")
        let result = try CLI.run(["import", "/no/such/dir", "--store", store])
        #expect(result.status == Self.usageError)
        #expect(result.stderr.contains("/no/such/dir: no such file or directory"), "stderr: \(result.stderr)")
        #expect(result.stderr.contains("telemetry import"), "the usage shown should be the import command's: \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: store))
    }

    @Test("option validation: --jobs 0, --max-line-bytes too small, an unknown --format, SQL twice or not at all",
          arguments: [
              (["import", "datasets/sample/storage", "--jobs", "0"], "--jobs must be at least 1"),
              (["import", "datasets/sample/storage", "--max-line-bytes", "10"], "--max-line-bytes must be at least 1024"),
              (["query", "SELECT 1", "--format", "xml"], "'xml' is invalid for '--format <format>'"),
              (["query", "SELECT 1", "--file", "queries/overview.sql"], "not both"),
              (["query"], "give the SQL as an argument or with --file"),
              (["query", "--file", "/no/such/query.sql"], "/no/such/query.sql: cannot read the SQL file"),
          ])
    func rejectedOptions(_ arguments: [String], message: String) throws {
        let directory = TemporaryDirectory("e2e-options")
        let store = directory.file("x.db")
        let result = try CLI.run(arguments + ["--store", store], currentDirectory: Fixtures.packageRoot.path)
        #expect(result.status == Self.usageError, "stderr: \(result.stderr)")
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
        #expect(result.stderr.contains("Usage: telemetry \(arguments[0])"), "usage of the subcommand: \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: store), "a rejected command must not create a store")
    }

    @Test("--help of telemetry, import and query: exit 0, every option mentioned")
    func help() throws {
        let top = try CLI.run(["--help"])
        #expect(top.status == 0)
        for word in ["USAGE: telemetry <subcommand>", "import", "query", "--version", "TELEMETRY_STORE"] {
            #expect(top.stdout.contains(word), "telemetry --help lacks \(word)")
        }
        let importHelp = try CLI.run(["import", "--help"])
        #expect(importHelp.status == 0)
        for option in ["<path>", "--store <path>", "--schema <file>", "--filter <file>", "--jobs <n>",
                       "--max-line-bytes <bytes>", "--json", "(default: 16777216)"] {
            #expect(importHelp.stdout.contains(option), "telemetry import --help lacks \(option)")
        }
        // A default that depends on the machine is described, not printed as a number next to the description.
        #expect(importHelp.stdout.contains("Parser threads (default: the number of cores).\n"), "\(importHelp.stdout)")
        #expect(!importHelp.stdout.contains("(default: the number of cores).\n                          (default:"))
        let queryHelp = try CLI.run(["query", "--help"])
        #expect(queryHelp.status == 0)
        for option in ["<sql>", "-f, --file <file>", "--format <format>", "table, csv, tsv, json", "--no-header", "--store <path>"] {
            #expect(queryHelp.stdout.contains(option), "telemetry query --help lacks \(option)")
        }
        // `help import` is the same text as `import --help`.
        let helpImport = try CLI.run(["help", "import"])
        #expect(helpImport.status == 0)
        #expect(helpImport.stdout == importHelp.stdout)
        #expect(try CLI.run(["--version"]).stdout == "0.1.0\n")
    }

    @Test("help text: paragraphs are wrapped as a whole (no line cut short by a newline in the source)",
          arguments: [["--help"], ["import", "--help"], ["query", "--help"], ["convert", "--help"], ["run", "--help"],
                       ["repl", "--help"]])
    func helpWrapping(_ arguments: [String]) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 0)
        // Between OVERVIEW and USAGE: a line followed by a line in the same paragraph must have been full, i.e. the
        // next line's first word would not have fitted on it (ArgumentParser wraps to lines of at most 79 columns
        // when the output is not a terminal).
        let text = result.stdout.components(separatedBy: "\nUSAGE:")[0]
        let lines = text.components(separatedBy: "\n")
        for (line, next) in zip(lines, lines.dropFirst()) where !line.isEmpty && !next.isEmpty && !next.hasPrefix(" ") {
            let firstWord = next.split(separator: " ").first.map(String.init) ?? ""
            #expect(line.count + 1 + firstWord.count >= 80, "line broken early in \(arguments): \"\(line)\" / \"\(next)\"")
        }
    }
}
