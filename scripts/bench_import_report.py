#!/usr/bin/env python3
"""Report side of scripts/bench-import.sh (Python 3 standard library only).

  bench_import_report.py table RUN_DIR [--doc docs/benchmarks.md]
      Reads RUN_DIR/meta.tsv and RUN_DIR/results.tsv (written by bench-import.sh), prints the results table
      and the goal ratios as Markdown, and with --doc replaces the "## Import" section of that file (creating
      the file if needed; other sections are left as they are).
  bench_import_report.py profile FREQ < perf-script-output > profile.md
      Summarises `perf script -F pid,tid,ip,sym,dso` output (with call chains) of one `telemetry import`:
      CPU seconds by thread role (writer = main thread, parsers = the others) and by component.
"""
import os
import re
import statistics
import sys
from collections import defaultdict

GOAL_DUCKDB_SPEEDUP = 2.0   # TelemetryEngine at least 2x faster than the DuckDB load
GOAL_SQLITE_SPEEDUP = 1.0   # no slower than the sqlite3 shell
GOAL_RSS_MB = 300.0
NOISY_OTHER_CPU_S = 1.0     # other processes' CPU seconds during a run above which the row is flagged

# Row order and labels. `data` says which dataset's JSON size the MB/s and pings/s use.
ROWS = [
    ("te", "**TelemetryEngine** `telemetry import` (xz files → fresh store)", "xz files"),
    ("xz1", "`xz -dc` (1 process, all files → /dev/null)", "xz files"),
    ("xz2", "`xz -dc`, 2 processes (`xargs -P2`), context", "xz files"),
    ("duck_json", "**DuckDB** `read_json` → table (fastest DuckDB way)", "decompressed JSON lines"),
    ("duck_csv", "DuckDB `read_csv` + `json_transform` → table", "decompressed TSV"),
    ("sqlite", "**sqlite3 shell** `.mode tabs` / `.import` → (id TEXT, json TEXT)", "decompressed TSV"),
    ("duck_csv_xz", "context: `xz -dc` \\| DuckDB `read_csv` + `json_transform` (pipe)", "xz files"),
    ("sqlite_xz", "context: `xz -dc` \\| sqlite3 shell `.import /dev/stdin` (pipe)", "xz files"),
    ("te_j1", "diag: TelemetryEngine `--jobs 1`", "xz files"),
    ("te_plain", "diag: TelemetryEngine from plain-text files (same layout, not compressed)", "plain files"),
    ("te_x2", "scale: TelemetryEngine on the 2× dataset", "xz files, 2×"),
]
NO_PINGS = {"xz1", "xz2"}


def read_meta(run):
    meta = {}
    with open(os.path.join(run, "meta.tsv")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            meta[key] = value
    return meta


def read_results(run):
    rows = defaultdict(list)
    with open(os.path.join(run, "results.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            rec = dict(zip(header, line.rstrip("\n").split("\t")))
            rows[rec["key"]].append(rec)
    return rows


def num(rec, field):
    value = rec.get(field, "")
    return float(value) if value not in ("", "-") else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    return "—" if value is None else ("%.*f" % (digits, value))


def summarise(rows, meta):
    out = {}
    for key, _, _ in ROWS:
        recs = rows.get(key)
        if not recs:
            continue
        bytes_ = int(meta["json_bytes_x2"] if key == "te_x2" else meta["json_bytes"])
        pings = int(meta["pings_x2"] if key == "te_x2" else meta["pings"])
        # The best run: on a shared machine, other work only ever adds time.
        best = min(recs, key=lambda r: num(r, "wall_s"))
        wall = num(best, "wall_s")
        out[key] = {
            "wall": wall, "all": [num(r, "wall_s") for r in recs], "n": len(recs),
            "median": median([num(r, "wall_s") for r in recs]),
            "rss_mb": max(num(r, "rss_kb") for r in recs) / 1024.0,
            "cpu": num(best, "user_s") + num(best, "sys_s"),
            "other": num(best, "other_cpu_s"),
            "written_mb": (num(best, "fs_out_blocks") or 0) * 512 / 1e6,
            "inproc": num(best, "inproc_s"),
            "pings_s": None if key in NO_PINGS else pings / wall,
            "mb_s": bytes_ / 1e6 / wall,
        }
    return out


def verdict(ok):
    return "**met**" if ok else "**missed**"


def render(meta, s):
    n = int(meta["repeat"])
    lines = []
    lines.append("## Import")
    lines.append("")
    lines.append("Written by `scripts/bench-import.sh`; rerun it to refresh this section (it replaces only this section).")
    lines.append("")
    lines.append("- Command: `%s`" % meta["command"])
    lines.append("- Date: %s; commit `%s`%s; telemetry binary: %s" % (
        meta["date"], meta["commit"], " (Sources/ had uncommitted changes)" if meta.get("dirty") == "1" else "",
        meta.get("binary", "?")))
    lines.append("- Machine: `nproc` = %s, %s, %s RAM, %s" % (meta["nproc"], meta["cpu_model"], meta["mem"], meta["kernel"]))
    lines.append("- Tools: %s" % meta["versions"])
    lines.append("- Dataset: `%s` → `%s`: %s pings, %s files, %.1f MB xz, %.1f MB of JSON lines "
                 "(`<uuid>\\t<json>\\n`, the bytes that the MB/s columns divide)" % (
                     meta["gen_command"], meta["dataset"], meta["pings"], meta["files"],
                     int(meta["xz_bytes"]) / 1e6, int(meta["json_bytes"]) / 1e6))
    lines.append("- Runs: %d round(s); each round runs every command once, one after another (never two at a time), "
                 "after `sync` and after waiting (at most %s s) for the machine to be idle, with the inputs in the page "
                 "cache.%s Peak RSS is the largest of the rounds." % (
                     n, meta.get("quiet_wait", "?"),
                     " Each row shows its best (fastest) run, and the rates, CPU and noise columns are that run's; "
                     "all runs are listed in round order." if n > 1 else ""))
    lines.append("")
    if n > 1:
        lines.append("| what | input | wall s (best of %d) | all runs, s | pings/s | MB/s JSON | peak RSS MB | CPU s (user+sys) | written MB | other CPU s during run |" % n)
        lines.append("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    else:
        lines.append("| what | input | wall s | pings/s | MB/s JSON | peak RSS MB | CPU s (user+sys) | written MB | other CPU s during run |")
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    any_noisy = False
    for key, label, data in ROWS:
        if key not in s:
            continue
        r = s[key]
        pings_s = "—" if r["pings_s"] is None else "%.0f" % r["pings_s"]
        runs = " | " + " / ".join(fmt(w) for w in r["all"]) if n > 1 else ""
        noisy = r["other"] is not None and r["other"] > NOISY_OTHER_CPU_S
        any_noisy = any_noisy or noisy
        lines.append("| %s | %s | %s%s%s | %s | %.0f | %.0f | %s | %.0f | %s |" % (
            label, data, fmt(r["wall"]), " †" if noisy else "", runs, pings_s, r["mb_s"], r["rss_mb"], fmt(r["cpu"], 1), r["written_mb"],
            fmt(r["other"], 1)))
    lines.append("")
    if any_noisy:
        lines.append("† Even the best run of this row had more than %.0f s of other CPU use on the machine: its wall "
                     "time (and the rates computed from it) is inflated." % NOISY_OTHER_CPU_S)
        lines.append("")
    lines.append("\"written MB\" is what the command wrote to files (`/usr/bin/time` \"File system outputs\" × 512 bytes).")
    lines.append("")
    lines.append("\"other CPU s during run\" is CPU time that the rest of the machine used while the command ran "
                 "(from /proc/stat, minus the command's own user+sys): the noise from other work on this shared "
                 "%s-core machine (another engineer builds and tests on it). Above about 1 s, that row's wall time is "
                 "inflated." % meta["nproc"])
    lines.append("")

    # Goals.
    lines.append("### Goals")
    lines.append("")
    te = s.get("te")
    if te:
        duck = s.get("duck_json") or s.get("duck_csv")
        if duck:
            ratio = duck["wall"] / te["wall"]
            extra = ""
            if duck.get("inproc"):
                extra = " (against DuckDB's in-process time %.2f s, without Python start-up: %.2f×)" % (
                    duck["inproc"], duck["inproc"] / te["wall"])
            lines.append("- vs DuckDB load: DuckDB wall / TelemetryEngine wall = **%.2f×**%s; goal ≥ %.1f×: %s." % (
                ratio, extra, GOAL_DUCKDB_SPEEDUP, verdict(ratio >= GOAL_DUCKDB_SPEEDUP)))
        sq = s.get("sqlite")
        if sq:
            ratio = sq["wall"] / te["wall"]
            lines.append("- vs sqlite3 shell `.import`: sqlite3 wall / TelemetryEngine wall = **%.2f×**; goal ≥ %.1f× (no slower): %s." % (
                ratio, GOAL_SQLITE_SPEEDUP, verdict(ratio >= GOAL_SQLITE_SPEEDUP)))
        lines.append("- TelemetryEngine peak RSS: **%.0f MB**; goal < %.0f MB: %s." % (
            te["rss_mb"], GOAL_RSS_MB, verdict(te["rss_mb"] < GOAL_RSS_MB)))
        x2 = s.get("te_x2")
        if x2:
            lines.append("- 2× dataset (%s pings, %.0f MB JSON): peak RSS **%.0f MB** (%.2f× the 1× run), wall %.2f s "
                         "(%.2f× the 1× run): %s." % (
                             meta["pings_x2"], int(meta["json_bytes_x2"]) / 1e6, x2["rss_mb"], x2["rss_mb"] / te["rss_mb"],
                             x2["wall"], x2["wall"] / te["wall"],
                             "RSS does not grow with the dataset" if x2["rss_mb"] < 1.25 * te["rss_mb"] and x2["rss_mb"] < GOAL_RSS_MB
                             else "RSS grows with the dataset"))
        lines.append("")
        lines.append("Where the time goes (from the rows above):")
        lines.append("")
        xz1, xz2 = s.get("xz1"), s.get("xz2")
        if xz1:
            lines.append("- Decompressing the xz files alone takes %.2f s on one core (`xz -dc`, %.0f%% of TelemetryEngine's "
                         "wall time)%s. The DuckDB and sqlite3 rows do not do this work: their input was decompressed "
                         "before the clock started." % (
                             xz1["wall"], 100 * xz1["wall"] / te["wall"],
                             (" and %.2f s on two processes (`xargs -P2`, %.0f%%)" % (xz2["wall"], 100 * xz2["wall"] / te["wall"]))
                             if xz2 else ""))
            floor = (xz2 or xz1)["wall"]
            duck = s.get("duck_json") or s.get("duck_csv")
            sq = s.get("sqlite")
            parts = []
            if duck:
                parts.append("at most %.2f× against DuckDB (goal %.1f×: %s)" % (
                    duck["wall"] / floor, GOAL_DUCKDB_SPEEDUP,
                    "out of reach while the input is xz" if duck["wall"] / floor < GOAL_DUCKDB_SPEEDUP else "reachable"))
            if sq:
                parts.append("at most %.2f× against the sqlite3 shell (goal %.1f×: %s)" % (
                    sq["wall"] / floor, GOAL_SQLITE_SPEEDUP,
                    "out of reach" if sq["wall"] / floor < GOAL_SQLITE_SPEEDUP else "reachable"))
            if parts:
                lines.append("- Even an import that did nothing but decompress (%.2f s, the best `xz -dc` row) would reach %s." % (
                    floor, " and ".join(parts)))
        plain = s.get("te_plain")
        if plain:
            cmp = []
            duck = s.get("duck_json") or s.get("duck_csv")
            if duck:
                cmp.append("DuckDB / TelemetryEngine = %.2f×" % (duck["wall"] / plain["wall"]))
            if s.get("sqlite"):
                cmp.append("sqlite3 shell / TelemetryEngine = %.2f×" % (s["sqlite"]["wall"] / plain["wall"]))
            lines.append("- TelemetryEngine on the same pings as plain-text files: %.2f s (%.0f MB/s), vs %.2f s from xz: "
                         "decompression costs it %.2f s of wall time. From the same uncompressed input as the others: %s." % (
                             plain["wall"], plain["mb_s"], te["wall"], te["wall"] - plain["wall"], ", ".join(cmp)))
        store_mb = int(meta.get("te_store_bytes") or 0) / 1e6
        e2e = [(name, s[key]) for key, name in (("duck_csv_xz", "DuckDB"), ("sqlite_xz", "the sqlite3 shell")) if key in s]
        if e2e:
            lines.append("- End to end from the same xz files (one `xz -dc` process piped into the loader): %s." % "; ".join(
                "%s %.2f s, %s / TelemetryEngine = %.2f×" % (name, r["wall"], name.replace("the ", ""), r["wall"] / te["wall"])
                for name, r in e2e))
        if te.get("written_mb") and store_mb:
            text = "- TelemetryEngine wrote %.0f MB to produce a %.0f MB store (%.1f× its size)" % (
                te["written_mb"], store_mb, te["written_mb"] / store_mb)
            sq = s.get("sqlite")
            sq_mb = int(meta.get("sqlite_db_bytes") or 0) / 1e6
            if sq and sq.get("written_mb") and sq_mb:
                text += "; the sqlite3 shell wrote %.0f MB for a %.0f MB database (%.1f×)" % (
                    sq["written_mb"], sq_mb, sq["written_mb"] / sq_mb)
            if te["written_mb"] / store_mb > 1.5:
                text += (". The store runs in WAL mode: every page is written to the WAL first and copied into the "
                         "database file at checkpoints (read back, written again)")
            lines.append(text + ".")
        j1 = s.get("te_j1")
        if j1:
            lines.append("- `--jobs 1`: %.2f s vs %.2f s with the default `--jobs %s` (%.2f× from the second parser thread). "
                         "CPU time per run: %.1f s (jobs 1) and %.1f s (default) on %s cores." % (
                             j1["wall"], te["wall"], meta["nproc"], j1["wall"] / te["wall"], j1["cpu"], te["cpu"], meta["nproc"]))
        lines.append("- TelemetryEngine used %.1f CPU s in %.2f s of wall time (%.0f%% of %s cores)." % (
            te["cpu"], te["wall"], 100 * te["cpu"] / te["wall"] / int(meta["nproc"]), meta["nproc"]))
        lines.append("")
    prof = meta.get("profile_md")
    if prof and os.path.exists(prof):
        with open(prof) as f:
            lines.append(f.read().rstrip("\n"))
        lines.append("")
    lines.append("### Method")
    lines.append("")
    lines.append("- TelemetryEngine: `%s` into a fresh store (default `--jobs` = number of cores; WAL mode, one "
                 "transaction per file, a WAL checkpoint at the end). Its `pings` table keeps the whole payload text "
                 "besides the dimensions from the path and typed `info` columns: %s. "
                 "Release build: `swift build -c release --scratch-path .build-bench`." % (
                     meta["te_command"], meta.get("te_store", "?")))
    lines.append("- `xz -dc`: `xz -dc FILES... > /dev/null` over the same %s files; the 2-process row is "
                 "`xargs -P2 -n 40 xz -dc`." % meta["files"])
    lines.append("- Before any clock starts, the files are decompressed once (`xz -dc`) into one TSV file of `<uuid>\\t<json>` "
                 "lines (%.1f MB); for `read_json` that file is also rewritten as `{\"id\": \"<uuid>\", \"ping\": <json>}` lines. "
                 "Neither step is timed." % (int(meta["json_bytes"]) / 1e6))
    lines.append("- DuckDB %s (Python package, default settings: %s threads), into a fresh persistent `.duckdb` file, "
                 "timed to the end of `CHECKPOINT` (the table has document id, reason, appName, appUpdateChannel, "
                 "appVersion, appBuildID and `histograms.GC_MS` as BIGINT[]; submission date skipped; the payload is "
                 "not kept). The wall time includes starting Python and importing duckdb. The SQL is in "
                 "`scripts/bench_duckdb.py`:" % (meta.get("duckdb_version", "?"), meta.get("duckdb_threads", "?")))
    lines.append("")
    lines.append("  ```sql")
    for line in meta.get("duckdb_sql", "").rstrip("\x1f").split("\x1f"):
        lines.append("  " + line)
    lines.append("  ```")
    lines.append("")
    lines.append("- sqlite3 shell %s: `CREATE TABLE pings(id TEXT, json TEXT); .mode tabs; .import TSV pings` into a "
                 "fresh database (default settings; `.import` runs in one transaction; no indexes)." % meta.get("sqlite_version", ""))
    lines.append("- Context rows (pipe): `xz -dc FILES... | python3 scripts/bench_duckdb.py load read_csv /dev/stdin DB` and "
                 "`xz -dc FILES... | sqlite3 -cmd '.mode tabs' DB '.import /dev/stdin pings'`, timed as a whole (CPU and "
                 "peak RSS cover both processes; RSS is the larger one's).")
    lines.append("- Wall time and peak RSS: `/usr/bin/time -v` (\"Elapsed (wall clock) time\", \"Maximum resident set size\"). "
                 "Every load's row count is checked after its run (%s rows)." % meta["pings"])
    lines.append("")
    return "\n".join(lines) + "\n"


def replace_section(doc, section):
    text = ""
    if os.path.exists(doc):
        with open(doc) as f:
            text = f.read()
    if not text.strip():
        text = "# Benchmarks\n\n"
    match = re.search(r"^## Import[ \t]*$", text, flags=re.M)
    if match:
        rest = text[match.end():]
        nxt = re.search(r"^## ", rest, flags=re.M)
        end = match.end() + (nxt.start() if nxt else len(rest))
        text = text[:match.start()] + section + ("\n" if nxt else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc)


# --- perf profile summary -------------------------------------------------------------------------------

def component(frames):
    """Component of one sample from its call chain (leaf first): (sym, dso) pairs."""
    sym, dso = frames[0]
    base = os.path.basename(dso.strip("()"))
    if "liblzma" in base:
        return "xz decompression (liblzma)"
    if "libsimdjson" in base:
        return "JSON parsing (libsimdjson)"
    if "libsqlite3" in base:
        return "SQLite, user space (libsqlite3)"
    if base == "telemetry":
        return "telemetry binary (Swift code, CSimdjson DOM walk)"
    if base.startswith("libswift") or base.startswith("libFoundation") or base.startswith("lib_Foundation"):
        return "Swift runtime / Foundation"
    if base.startswith("libc.so") or base.startswith("ld-linux"):
        return "libc (memcpy, malloc, ...)"
    if "kernel" in base:
        names = " ".join(s for s, _ in frames)
        for pattern, label in (("sys_pwrite64", "kernel: pwrite (store and WAL writes)"),
                               ("sys_pread64", "kernel: pread"),
                               ("sys_fsync", "kernel: fsync"), ("sys_fdatasync", "kernel: fsync"),
                               ("sys_write", "kernel: write"), ("sys_read", "kernel: read"),
                               ("futex", "kernel: futex (thread hand-off)"),
                               ("sys_munmap", "kernel: mmap/munmap"), ("sys_mmap", "kernel: mmap/munmap"),
                               ("page_fault", "kernel: page faults"), ("exc_page_fault", "kernel: page faults")):
            if pattern in names:
                return label
        return "kernel: other"
    return "other (%s)" % (base or "unknown")


def profile(freq):
    samples = []   # (pid, tid, frames)
    header = None
    frames = []
    head_re = re.compile(r"^\s*(\d+)/(\d+)\b")
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        if not line.strip():
            if header:
                samples.append((header[0], header[1], frames or [("?", "(unknown)")]))
            header, frames = None, []
            continue
        if not line.startswith("\t"):
            m = head_re.match(line)
            header = (int(m.group(1)), int(m.group(2))) if m else None
            frames = []
        else:
            parts = line.strip().split(None, 1)
            rest = parts[1] if len(parts) > 1 else ""
            dso_at = rest.rfind(" (")
            sym, dso = (rest[:dso_at], rest[dso_at + 1:]) if dso_at >= 0 else (rest, "(unknown)")
            frames.append((sym, dso))
    if header:
        samples.append((header[0], header[1], frames or [("?", "(unknown)")]))
    if not samples:
        print("(no perf samples)")
        return
    table = defaultdict(lambda: [0, 0])
    tids = defaultdict(int)
    for pid, tid, fr in samples:
        role = 0 if pid == tid else 1
        table[component(fr)][role] += 1
        tids[(role, tid)] += 1
    per = 1.0 / freq
    writer = sum(v[0] for v in table.values()) * per
    parsers = sum(v[1] for v in table.values()) * per
    nparsers = len([t for r, t in tids if r == 1])
    print("### Profile of one TelemetryEngine import (`perf record -F %d -g`)" % freq)
    print()
    print("CPU seconds from %d samples at %d Hz: the writer (main thread: SQLite inserts, one transaction per file) "
          "used %.1f s; the %d parser threads (decompress, split lines, simdjson) used %.1f s together." % (
              len(samples), freq, writer, nparsers, parsers))
    print()
    print("| component | writer CPU s | parser threads CPU s |")
    print("|---|---:|---:|")
    for name, (w, p) in sorted(table.items(), key=lambda kv: -(kv[1][0] + kv[1][1])):
        if (w + p) * per < 0.05:
            continue
        print("| %s | %.2f | %.2f |" % (name, w * per, p * per))


def main(argv):
    if len(argv) >= 3 and argv[1] == "table":
        run = argv[2]
        doc = argv[argv.index("--doc") + 1] if "--doc" in argv else None
        meta = read_meta(run)
        section = render(meta, summarise(read_results(run), meta))
        sys.stdout.write(section)
        if doc:
            replace_section(doc, section)
        return 0
    if len(argv) == 3 and argv[1] == "profile":
        profile(int(argv[2]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
