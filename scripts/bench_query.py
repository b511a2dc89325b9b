#!/usr/bin/env python3
"""Measuring and report side of scripts/bench-query.sh (the query benchmark of issue 5).

Run with the bench venv's python (it has duckdb; everything else is the standard library).

  bench_query.py measure --pings N --storage DIR --work DIR --telemetry BIN --out RESULTS.json
                         [--repeat N] [--slow-runs N] [--timeout S] [--quiet-wait S] [--expect-j1 JSON]
      Runs every system on one dataset, one at a time, checks that all answers agree and writes RESULTS.json.
      Needs, prepared (untimed) by bench-query.sh: WORK/te.db (telemetry import + reindex), WORK/pings.jsonl
      (one ping payload per line) and WORK/sqlite.db (table pings(id TEXT, json TEXT)).
      Exit status 3 when the systems disagree (the diff is printed), else non-zero on other failures.
  bench_query.py report RESULTS.json [RESULTS.json ...] --meta META.tsv [--doc docs/benchmarks.md]
      Prints the tables and goal ratios as Markdown; with --doc replaces the "## Query" section of that file.

Helpers that measure in-process, each started by `measure` as its own process (bounded by --timeout):
  bench_query.py duckdb-hot JSONL RUNS QUIET_WAIT       table loaded once (untimed), then J1-J3 timed
  bench_query.py duckdb-cold JSONL RUNS QUIET_WAIT      each run: a fresh connection, query on the JSON lines
  bench_query.py sqlite DB RUNS QUIET_WAIT              JSON1 over pings(id, json)
  bench_query.py mapreduce JOB STORAGE_DIR              seed-style multiprocessing MapReduce over the xz files
  bench_query.py sql SYSTEM                             print the SQL a system runs (for the report)

The queries (the same answers in every system; see docs/benchmarks.md "## Query"):
  J1   ping count by info.OS
  J2   element-wise sum of the 50 buckets of histograms.GC_MS, grouped by info.appUpdateChannel
  J3   J2 restricted to reason saved-session and appUpdateChannel release or beta
  J2d  J2 grouped by the appUpdateChannel *dimension* (esr and other values not in the default schema's
       list become OTHER); TelemetryEngine only, checked against J2 of the reference
"""
import glob
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict

QUERIES = ["J1", "J2", "J3"]
HISTOGRAM = "GC_MS"
BUCKETS = 50                      # GC_MS: 50 buckets + 5 statistics = 55 numbers
ARRAY_LENGTH = BUCKETS + 5
SCHEMA_CHANNELS = ("release", "beta", "nightly", "aurora")   # the default schema's appUpdateChannel values
J3_REASON_PAYLOAD = "saved-session"   # info.reason in the payload ...
J3_REASON_DIMENSION = "saved_session"  # ... and the sanitised dimension value (storage path, store column)
J3_CHANNELS = ("release", "beta")
MAX_OBJECT = 16 << 20
HZ = os.sysconf("SC_CLK_TCK")

GOAL_DUCKDB_RATIO = 1.0   # TelemetryEngine hot / DuckDB hot below this
GOAL_MR_SPEEDUP = 100.0   # Python MapReduce / TelemetryEngine hot at least this
NOISY_OTHER_CPU_S = 1.0


def die(msg, code=2):
    sys.stderr.write("bench-query: %s\n" % msg)
    sys.exit(code)


def say(msg):
    sys.stderr.write("==> %s\n" % msg)
    sys.stderr.flush()


# --- machine state ------------------------------------------------------------------------------------------

def busy_jiffies():
    with open("/proc/stat") as f:
        parts = f.readline().split()
    # cpu user nice system idle iowait irq softirq ...: the same fields as bench-import.sh
    return int(parts[1]) + int(parts[2]) + int(parts[3]) + int(parts[6]) + int(parts[7])


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_quiet(max_seconds):
    """Waits (at most max_seconds) until the machine used less than a quarter of a core over the last second.
    Returns (seconds waited, still busy)."""
    waited = 0
    while waited < max_seconds:
        a = busy_jiffies()
        time.sleep(1)
        b = busy_jiffies()
        if (b - a) * 4 < HZ:
            return waited, False
        waited += 1
    if max_seconds > 0:
        say("the machine is still busy after %d s of waiting; measuring anyway" % max_seconds)
    return waited, max_seconds > 0


def hot_of(times):
    """The median of the runs after the first (the first warms up), or the only run: the same rule as
    `telemetry --repeat`."""
    rest = times[1:] if len(times) > 1 else times
    return statistics.median(rest)


def timed_runs(fn, runs, quiet):
    """Runs fn() `runs` times in this process; returns (stats, last answer)."""
    waited, busy = wait_quiet(quiet)
    la = loadavg()
    b0, c0 = busy_jiffies(), time.process_time()
    times, answer = [], None
    for _ in range(runs):
        t = time.perf_counter()
        answer = fn()
        times.append((time.perf_counter() - t) * 1e3)
    own = time.process_time() - c0
    other = max(0.0, (busy_jiffies() - b0) / HZ - own)
    return {"runs": runs, "times_ms": times, "first_ms": times[0], "min_ms": min(times), "hot_ms": hot_of(times),
            "median_all_ms": statistics.median(times), "loadavg": la, "other_cpu_s": other, "cpu_s": own,
            "waited_s": waited, "busy": busy}, answer


# --- canonical answers --------------------------------------------------------------------------------------

def key_of(value):
    return "NULL" if value is None else str(value)


def canon_counts(rows):
    out = {}
    for key, count in rows:
        k = key_of(key)
        out[k] = out.get(k, 0) + int(count)
    return out


def canon_buckets(rows, source):
    """rows: (key, list of numbers or None). Keeps the first 50 buckets; groups without the histogram (None, or
    all None) are left out, as a job writes nothing for them."""
    out = {}
    for key, buckets in rows:
        if buckets is None or all(b is None for b in buckets):
            continue
        if len(buckets) not in (BUCKETS, ARRAY_LENGTH):
            raise SystemExit("%s: %s for %r has %d numbers, expected %d or %d" % (
                source, HISTOGRAM, key, len(buckets), BUCKETS, ARRAY_LENGTH))
        values = []
        for b in buckets[:BUCKETS]:
            if b is None or float(b) != int(b):
                raise SystemExit("%s: a bucket of %r is not an integer: %r" % (source, key, b))
            values.append(int(b))
        out[key_of(key)] = values
    return out


def to_dimension(j2):
    """J2 by info.appUpdateChannel -> J2 by the appUpdateChannel dimension of the default schema."""
    out = {}
    for key, buckets in j2.items():
        dim = key if key in SCHEMA_CHANNELS else "OTHER"
        if dim in out:
            out[dim] = [a + b for a, b in zip(out[dim], buckets)]
        else:
            out[dim] = list(buckets)
    return out


def diff_answers(query, ref_name, ref, name, got, limit=8):
    lines = []
    for key in sorted(set(ref) | set(got)):
        if key not in got:
            lines.append("  %s: %s has no group %r (%s has %s)" % (query, name, key, ref_name, short(ref[key])))
        elif key not in ref:
            lines.append("  %s: %s has an extra group %r = %s" % (query, name, key, short(got[key])))
        elif ref[key] != got[key]:
            if isinstance(ref[key], list) and isinstance(got[key], list) and len(ref[key]) == len(got[key]):
                idx = [i for i, (a, b) in enumerate(zip(ref[key], got[key])) if a != b]
                shown = ", ".join("b%d %s: %d, %s: %d" % (i, ref_name, ref[key][i], name, got[key][i]) for i in idx[:5])
                lines.append("  %s: group %r differs in %d bucket(s): %s%s" % (
                    query, key, len(idx), shown, " ..." if len(idx) > 5 else ""))
            else:
                lines.append("  %s: group %r: %s has %s, %s has %s" % (query, key, ref_name, short(ref[key]), name, short(got[key])))
        if len(lines) >= limit:
            lines.append("  ...")
            break
    return lines


def short(value):
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- SQL of the anchors --------------------------------------------------------------------------------------

def duck_sums(col):
    # The fastest correct DuckDB J2 found: 50 explicit sum(gc[i]) in one GROUP BY pass over the BIGINT[] column
    # (unnest + generate_subscripts + list(... ORDER BY i) was 2-4x slower, UNNEST ... WITH ORDINALITY ~10x).
    return "[" + ", ".join("sum(%s[%d])" % (col, i) for i in range(1, BUCKETS + 1)) + "]"


def duck_hot_sql():
    in_ch = ", ".join("'%s'" % c for c in J3_CHANNELS)
    return {
        "J1": "SELECT os, count(*) FROM t GROUP BY os ORDER BY os",
        "J2": "SELECT ch, %s FROM t GROUP BY ch ORDER BY ch" % duck_sums("gc"),
        "J3": "SELECT ch, %s FROM t WHERE reason = '%s' AND ch IN (%s) GROUP BY ch ORDER BY ch" % (
            duck_sums("gc"), J3_REASON_PAYLOAD, in_ch),
    }


def duck_load_sql(path):
    return ("CREATE TABLE t AS SELECT info.OS AS os, info.appUpdateChannel AS ch, info.reason AS reason, "
            "histograms.GC_MS AS gc\nFROM %s" % duck_read_json(path, os_=True, ch=True, reason=True, gc=True))


def duck_read_json(path, os_=False, ch=False, reason=False, gc=False):
    info = []
    if os_:
        info.append('"OS" VARCHAR')
    if ch:
        info.append('"appUpdateChannel" VARCHAR')
    if reason:
        info.append('"reason" VARCHAR')
    columns = ["'info': 'STRUCT(%s)'" % ", ".join(info)]
    if gc:
        columns.append("'histograms': 'STRUCT(\"GC_MS\" BIGINT[])'")
    # records = true: with a single column in `columns` the default (records = 'auto') made the read ~5x slower.
    return "read_json('%s', format = 'newline_delimited', records = true, maximum_object_size = %d, columns = {%s})" % (
        path.replace("'", "''"), MAX_OBJECT, ", ".join(columns))


def duck_cold_sql(path):
    in_ch = ", ".join("'%s'" % c for c in J3_CHANNELS)
    sums = duck_sums("histograms.GC_MS")
    return {
        "J1": "SELECT info.OS, count(*) FROM %s GROUP BY 1 ORDER BY 1" % duck_read_json(path, os_=True),
        "J2": "SELECT info.appUpdateChannel, %s FROM %s GROUP BY 1 ORDER BY 1" % (
            sums, duck_read_json(path, ch=True, gc=True)),
        "J3": ("SELECT info.appUpdateChannel, %s FROM %s\nWHERE info.reason = '%s' AND info.appUpdateChannel IN (%s) "
               "GROUP BY 1 ORDER BY 1" % (sums, duck_read_json(path, ch=True, reason=True, gc=True), J3_REASON_PAYLOAD, in_ch)),
    }


def sqlite_sql():
    # J1: the MATERIALIZED CTE is ~1.7x faster than `SELECT json_extract(...) AS os, count(*) ... GROUP BY os`.
    # J2/J3: the payload is parsed once per row in a MATERIALIZED CTE (json_extract of the channel and of the small
    # GC_MS array, from SQLite's per-statement JSON parse cache), and json_each walks only that array. The direct
    # form `FROM pings p, json_each(p.json, '$.histograms.GC_MS')` took 50x longer (190 s vs 3.7 s on 20,000
    # pings, mostly system time), and without MATERIALIZED SQLite flattens the CTE into that form.
    in_ch = ", ".join("'%s'" % c for c in J3_CHANNELS)
    j2 = ("WITH p AS MATERIALIZED (\n"
          "  SELECT json_extract(json, '$.info.appUpdateChannel') AS ch, json_extract(json, '$.histograms.GC_MS') AS gc\n"
          "  FROM pings%s)\n"
          "SELECT p.ch, h.key, sum(h.value) FROM p, json_each(p.gc) h WHERE h.key < %d\n"
          "GROUP BY p.ch, h.key ORDER BY p.ch, h.key")
    return {
        "J1": ("WITH p AS MATERIALIZED (SELECT json_extract(json, '$.info.OS') AS os FROM pings)\n"
               "SELECT os, count(*) FROM p GROUP BY os ORDER BY os"),
        "J2": j2 % ("", BUCKETS),
        "J3": j2 % ("\n  WHERE json_extract(json, '$.info.reason') = '%s'"
                    "\n    AND json_extract(json, '$.info.appUpdateChannel') IN (%s)" % (J3_REASON_PAYLOAD, in_ch), BUCKETS),
    }


def te_sql():
    in_ch = ", ".join("'%s'" % c for c in J3_CHANNELS)
    return {
        "J1": "SELECT os, count(*) FROM pings GROUP BY os ORDER BY os",
        "J2": "SELECT update_channel, histogram_sum(ping_id, '%s') FROM pings GROUP BY update_channel ORDER BY 1" % HISTOGRAM,
        "J3": ("SELECT update_channel, histogram_sum(ping_id, '%s') FROM pings WHERE %s GROUP BY update_channel ORDER BY 1"
               % (HISTOGRAM, te_where())),
        "J2d": "SELECT appUpdateChannel, histogram_sum(ping_id, '%s') FROM pings GROUP BY appUpdateChannel ORDER BY 1" % HISTOGRAM,
    }


def te_where():
    return "reason = '%s' AND appUpdateChannel IN (%s)" % (J3_REASON_DIMENSION, ", ".join("'%s'" % c for c in J3_CHANNELS))


# --- in-process helpers --------------------------------------------------------------------------------------

def duck_rows_to_answers(query, rows, source):
    if query == "J1":
        return canon_counts(rows)
    return canon_buckets([(r[0], list(r[1]) if r[1] is not None else None) for r in rows], source)


def cmd_duckdb_hot(jsonl, runs, quiet):
    import duckdb
    con = duckdb.connect()
    t = time.perf_counter()
    con.execute(duck_load_sql(jsonl))
    load_s = time.perf_counter() - t
    checks = {
        "rows": con.execute("SELECT count(*) FROM t").fetchone()[0],
        "gc_lengths": {key_of(n): c for n, c in con.execute("SELECT len(gc), count(*) FROM t GROUP BY 1 ORDER BY 1").fetchall()},
        "j3_pings": con.execute("SELECT count(*) FROM t WHERE reason = ? AND ch IN (%s)" % ", ".join("?" * len(J3_CHANNELS)),
                                [J3_REASON_PAYLOAD] + list(J3_CHANNELS)).fetchone()[0],
        "j3_pings_with_histogram": con.execute(
            "SELECT count(gc) FROM t WHERE reason = ? AND ch IN (%s)" % ", ".join("?" * len(J3_CHANNELS)),
            [J3_REASON_PAYLOAD] + list(J3_CHANNELS)).fetchone()[0],
        "reason_values": {key_of(k): c for k, c in con.execute("SELECT reason, count(*) FROM t GROUP BY 1 ORDER BY 1").fetchall()},
        "channel_values": {key_of(k): c for k, c in con.execute("SELECT ch, count(*) FROM t GROUP BY 1 ORDER BY 1").fetchall()},
    }
    out = {"load_s": load_s, "checks": checks, "queries": {}, "answers": {},
           "duckdb_version": duckdb.__version__, "threads": con.execute("SELECT current_setting('threads')").fetchone()[0]}
    for q, sql in duck_hot_sql().items():
        stats, rows = timed_runs(lambda: con.execute(sql).fetchall(), runs, quiet)
        out["queries"][q] = stats
        out["answers"][q] = duck_rows_to_answers(q, rows, "DuckDB hot " + q)
    print(json.dumps(out))


def cmd_duckdb_cold(jsonl, runs, quiet):
    import duckdb
    out = {"queries": {}, "answers": {}}

    for q, sql in duck_cold_sql(jsonl).items():
        def once():
            con = duckdb.connect()     # a fresh in-memory database each time: nothing loaded, nothing cached
            try:
                return con.execute(sql).fetchall()
            finally:
                con.close()
        stats, rows = timed_runs(once, runs, quiet)
        # Every run is cold (fresh connection): report the median of all runs.
        stats["hot_ms"] = stats["median_all_ms"]
        out["queries"][q] = stats
        out["answers"][q] = duck_rows_to_answers(q, rows, "DuckDB cold " + q)
    print(json.dumps(out))


def cmd_sqlite(db, runs, quiet):
    import sqlite3
    con = sqlite3.connect(db)
    out = {"queries": {}, "answers": {}, "sqlite_version": sqlite3.sqlite_version,
           "rows": con.execute("SELECT count(*) FROM pings").fetchone()[0]}
    for q, sql in sqlite_sql().items():
        stats, rows = timed_runs(lambda: con.execute(sql).fetchall(), runs, quiet)
        out["queries"][q] = stats
        if q == "J1":
            out["answers"][q] = canon_counts(rows)
        else:
            grouped = defaultdict(dict)
            for ch, idx, total in rows:
                grouped[ch][int(idx)] = total
            pairs = []
            for ch, by_index in grouped.items():
                if sorted(by_index) != list(range(BUCKETS)):
                    raise SystemExit("sqlite3 %s: group %r has bucket indexes %s" % (q, ch, sorted(by_index)))
                pairs.append((ch, [by_index[i] for i in range(BUCKETS)]))
            out["answers"][q] = canon_buckets(pairs, "sqlite3 " + q)
    con.close()
    print(json.dumps(out))


# --- seed-style MapReduce -------------------------------------------------------------------------------------
# As the seed's mapreduce/job.py: the job filter selects files by their storage-layout path (the dimensions),
# mappers decompress and parse every record of their files and call map(key, dimensions, value, context);
# the emitted (key, value) pairs are grouped by key and reduce(key, values, context) writes the result.

def map_j1(key, dims, value, ctx):
    ctx.append((value.get("info", {}).get("OS"), 1))


def map_j2(key, dims, value, ctx):
    gc = value.get("histograms", {}).get(HISTOGRAM)
    if gc is not None:
        ctx.append((value.get("info", {}).get("appUpdateChannel"), gc[:BUCKETS]))


def reduce_count(key, values):
    return sum(values)


def reduce_buckets(key, values):
    total = [0] * BUCKETS
    for v in values:
        for i, x in enumerate(v):
            total[i] += x
    return total


def j3_filter(dims):
    # dims from the path: reason, appName, appUpdateChannel, appVersion, then the file name
    return dims[0] == J3_REASON_DIMENSION and dims[2] in J3_CHANNELS


MR_JOBS = {
    "J1": (map_j1, reduce_count, None),
    "J2": (map_j2, reduce_buckets, None),
    "J3": (map_j2, reduce_buckets, j3_filter),
}


def mr_map_file(args):
    import lzma
    job, path, dims = args
    mapper = MR_JOBS[job][0]
    ctx = []
    with lzma.open(path, "rb") as f:
        for line in f:
            key, sep, payload = line.rstrip(b"\n").partition(b"\t")
            if not sep:
                continue
            mapper(key.decode(), dims, json.loads(payload), ctx)
    return ctx


def cmd_mapreduce(job, storage):
    from multiprocessing import Pool
    started = time.perf_counter()
    _, reducer, filt = MR_JOBS[job]
    tasks = []
    for d, _, files in os.walk(storage):
        for name in files:
            path = os.path.join(d, name)
            dims = os.path.relpath(path, storage).split(os.sep)
            if filt is None or filt(dims):
                tasks.append((os.path.getsize(path), (job, path, dims)))
    tasks = [t for _, t in sorted(tasks, key=lambda x: -x[0])]   # biggest files first: even mappers
    grouped = defaultdict(list)
    with Pool(os.cpu_count()) as pool:
        for emitted in pool.imap_unordered(mr_map_file, tasks, chunksize=1):
            for k, v in emitted:
                grouped[k].append(v)
        pool.close()
        pool.join()
    result = {k: reducer(k, vs) for k, vs in grouped.items()}
    seconds = time.perf_counter() - started
    if job == "J1":
        answer = canon_counts(result.items())
    else:
        answer = canon_buckets(result.items(), "MapReduce " + job)
    print(json.dumps({"seconds": seconds, "files": len(tasks), "processes": os.cpu_count(), "answer": answer}))


# --- measuring driver ------------------------------------------------------------------------------------------

class Measurer:
    def __init__(self, args):
        self.args = args
        self.timeout = args["timeout"]
        self.quiet = args["quiet_wait"]

    def run(self, cmd, what, timeout=None, check=True):
        """Runs cmd bounded by the timeout; returns (CompletedProcess, wall s, own CPU s of the children)."""
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            die("%s timed out after %s s: %s" % (what, timeout or self.timeout, " ".join(cmd[:6])))
        wall = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        if check and proc.returncode != 0:
            sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
            die("%s failed (exit %d): %s" % (what, proc.returncode, " ".join(cmd[:8])))
        return proc, wall, cpu

    def run_measured(self, cmd, what, wait=True):
        """wait_quiet (unless the command waits itself), run, and the machine-noise numbers of the run."""
        waited, busy = wait_quiet(self.quiet) if wait else (0, False)
        la = loadavg()
        b0 = busy_jiffies()
        proc, wall, cpu = self.run(cmd, what)
        other = max(0.0, (busy_jiffies() - b0) / HZ - cpu)
        return proc, {"wall_s": wall, "cpu_s": cpu, "loadavg": la, "other_cpu_s": other, "waited_s": waited, "busy": busy}

    def helper(self, *argv):
        return [sys.executable, os.path.abspath(__file__)] + [str(a) for a in argv]


# `telemetry` prefixes its standard-error lines with "telemetry: ".
TIMING_RE = re.compile(r"^(?:telemetry: )?timing: runs=(\d+) first_ms=([0-9.]+) min_ms=([0-9.]+) median_ms=([0-9.]+)\s*$", re.M)


def parse_timing(stderr, what):
    m = TIMING_RE.search(stderr)
    if not m:
        die("%s: no 'timing: runs=N first_ms=F min_ms=M median_ms=D' line on standard error:\n%s" % (what, stderr[-2000:]))
    return {"runs": int(m.group(1)), "first_ms": float(m.group(2)), "min_ms": float(m.group(3)),
            "hot_ms": float(m.group(4))}


def parse_te_output(query, text, source):
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("\t")
        if not sep:
            die("%s: an output line without a tab: %r" % (source, line[:200]))
        key = None if key in ("", "NULL") else key
        if query == "J1":
            rows.append((key, int(value)))
        else:
            rows.append((key, None if value in ("", "NULL") else json.loads(value)))
    if query == "J1":
        return canon_counts(rows)
    return canon_buckets(rows, source)


def te_measure(m, base_cmd, query, repeat, has_repeat, what):
    """One TelemetryEngine measurement: with --repeat, one process running `repeat` times (hot = its median_ms,
    first = its first_ms); without it, `repeat` processes (hot = their median wall time after the first)."""
    if has_repeat:
        cmd = base_cmd(["--repeat", str(repeat)])
        proc, noise = m.run_measured(cmd, what)
        stderr = proc.stderr.decode(errors="replace")
        stats = parse_timing(stderr, what)
        stats.update(noise)
        stats["mode"] = "repeat"
        stats["process_wall_ms"] = noise["wall_s"] * 1e3
        return stats, parse_te_output(query, proc.stdout.decode(), what)
    waited, busy = wait_quiet(m.quiet)
    la = loadavg()
    b0 = busy_jiffies()
    times, cpu, proc = [], 0.0, None
    for _ in range(repeat):
        proc, wall, c = m.run(base_cmd([]), what)
        times.append(wall * 1e3)
        cpu += c
    other = max(0.0, (busy_jiffies() - b0) / HZ - cpu)
    stats = {"runs": repeat, "times_ms": times, "first_ms": times[0], "min_ms": min(times), "hot_ms": hot_of(times),
             "mode": "process", "loadavg": la, "other_cpu_s": other, "cpu_s": cpu, "waited_s": waited, "busy": busy}
    return stats, parse_te_output(query, proc.stdout.decode(), what)


def warm(paths):
    """Reads files into the page cache (untimed)."""
    buf = bytearray(1 << 20)
    for p in paths:
        if os.path.isdir(p):
            warm(sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs))
            continue
        if not os.path.exists(p):
            continue
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def cmd_measure(a):
    m = Measurer(a)
    work, storage, te = a["work"], a["storage"], a["telemetry"]
    store = os.path.join(work, "te.db")
    jsonl = os.path.join(work, "pings.jsonl")
    sqlite_db = os.path.join(work, "sqlite.db")
    repeat, slow = a["repeat"], a["slow_runs"]
    res = {"pings": a["pings"], "storage": storage, "repeat": repeat, "slow_runs": slow, "rows": {}, "answers": {},
           "notes": [], "checks": {}, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    # TelemetryEngine capabilities (the --repeat and --by options are recent).
    qhelp = m.run([te, "query", "--help"], "telemetry query --help", timeout=60)[0].stdout.decode()
    jhelp = m.run([te, "job", "--help"], "telemetry job --help", timeout=60)[0].stdout.decode()
    has_repeat_q, has_repeat_j = "--repeat" in qhelp, "--repeat" in jhelp
    probe = m.run([te, "job", "--store", store, "histogram-by-channel", "--histogram", HISTOGRAM, "--by", "info"],
                  "telemetry job histogram-by-channel --by info", timeout=m.timeout, check=False)[0]
    has_by = probe.returncode == 0
    res["te"] = {"query_repeat": has_repeat_q, "job_repeat": has_repeat_j, "job_by": has_by}
    if not has_repeat_q or not has_repeat_j:
        res["notes"].append("this telemetry binary has no `--repeat` for %s: each TelemetryEngine time is the wall time of a "
                            "whole process (start, open the store, run, print), median of %d processes after the first"
                            % (" and ".join(c for c, h in (("query", has_repeat_q), ("job", has_repeat_j)) if not h), repeat))
    if not has_by:
        res["notes"].append("this telemetry binary's `histogram-by-channel` job has no `--by info`: it groups by the "
                            "appUpdateChannel dimension, so its J2 is measured as J2 by dimension only (J3 is the same "
                            "either way: release and beta are values of the dimension)")
        say("telemetry job histogram-by-channel has no --by (exit %d: %s); the job form groups by the dimension" % (
            probe.returncode, probe.stderr.decode(errors="replace").strip().splitlines()[-1:] or ""))

    # Checks of the store against the anchors' filter (untimed).
    count_sql = "SELECT count(*) FROM pings WHERE " + te_where()
    out = m.run([te, "query", "--store", store, "--format", "tsv", "--no-header", count_sql], "telemetry query (J3 count)",
                timeout=m.timeout)[0].stdout.decode().split()
    res["checks"]["te_j3_pings"] = int(out[0])
    out = m.run([te, "query", "--store", store, "--format", "tsv", "--no-header", "SELECT count(*) FROM pings"],
                "telemetry query (count)", timeout=m.timeout)[0].stdout.decode().split()
    res["checks"]["te_rows"] = int(out[0])

    # --- TelemetryEngine: SQL form
    say("TelemetryEngine SQL (telemetry query --repeat %d)" % repeat)
    warm([store] + sorted(glob.glob(glob.escape(store) + ".*")))   # the store and its side files (columns, ping index)
    sql = te_sql()
    row_sql = res["rows"].setdefault("te_sql", {})
    for q in QUERIES + ["J2d"]:
        what = "telemetry query %s" % q
        base = (lambda extra, q=q: [te, "query", "--store", store, "--format", "tsv", "--no-header"] + extra + [sql[q]])
        stats, ans = te_measure(m, base, q, repeat, has_repeat_q, what)
        row_sql[q] = stats
        res["answers"].setdefault("te_sql", {})[q] = ans
        say("  %-3s hot %9.2f ms  first %9.2f ms" % (q, stats["hot_ms"], stats["first_ms"]))

    # --- TelemetryEngine: job form
    say("TelemetryEngine job (telemetry job --repeat %d)" % repeat)
    jobs = {
        "J1": ([], ["os-distribution"]),
        "J2": ([], ["histogram-by-channel", "--histogram", HISTOGRAM, "--by", "info"]),
        "J3": (["--where", te_where()], ["histogram-by-channel", "--histogram", HISTOGRAM] + (["--by", "info"] if has_by else [])),
        "J2d": ([], ["histogram-by-channel", "--histogram", HISTOGRAM] + (["--by", "dimension"] if has_by else [])),
    }
    if not has_by:
        del jobs["J2"]
    res["job_commands"] = {q: " ".join(["telemetry job"] + [shq(x) for x in pre] + [shq(x) for x in job]) for q, (pre, job) in jobs.items()}
    row_job = res["rows"].setdefault("te_job", {})
    for q, (pre, job) in jobs.items():
        what = "telemetry job %s" % q
        base = (lambda extra, pre=pre, job=job: [te, "job", "--store", store] + pre + extra + job)
        stats, ans = te_measure(m, base, q, repeat, has_repeat_j, what)
        row_job[q] = stats
        res["answers"].setdefault("te_job", {})[q] = ans
        say("  %-3s hot %9.2f ms  first %9.2f ms" % (q, stats["hot_ms"], stats["first_ms"]))

    # --- DuckDB hot table
    say("DuckDB, hot table (loaded once, not timed; %d runs per query)" % repeat)
    warm([jsonl])
    proc, noise = m.run_measured(m.helper("duckdb-hot", jsonl, repeat, m.quiet), "DuckDB hot", wait=False)
    duck = json.loads(proc.stdout)
    res["rows"]["duck_hot"] = duck["queries"]
    res["answers"]["duck_hot"] = duck["answers"]
    res["checks"].update({"duck_" + k: v for k, v in duck["checks"].items()})
    res["duckdb"] = {"version": duck["duckdb_version"], "threads": duck["threads"], "load_s": duck["load_s"]}
    for q in QUERIES:
        say("  %-3s hot %9.2f ms  first %9.2f ms" % (q, duck["queries"][q]["hot_ms"], duck["queries"][q]["first_ms"]))

    # --- DuckDB cold
    say("DuckDB, cold (fresh connection, read_json on the JSON lines; %d run(s) per query)" % slow)
    proc, noise = m.run_measured(m.helper("duckdb-cold", jsonl, slow, m.quiet), "DuckDB cold", wait=False)
    cold = json.loads(proc.stdout)
    res["rows"]["duck_cold"] = cold["queries"]
    res["answers"]["duck_cold"] = cold["answers"]
    for q in QUERIES:
        say("  %-3s %9.2f ms" % (q, cold["queries"][q]["hot_ms"]))

    # --- sqlite3 JSON1
    say("sqlite3 JSON1 (%d run(s) per query; hot = after the first)" % slow)
    warm([sqlite_db])
    proc, noise = m.run_measured(m.helper("sqlite", sqlite_db, slow, m.quiet), "sqlite3", wait=False)
    sq = json.loads(proc.stdout)
    res["rows"]["sqlite"] = sq["queries"]
    res["answers"]["sqlite"] = sq["answers"]
    res["sqlite"] = {"version": sq["sqlite_version"], "rows": sq["rows"]}
    for q in QUERIES:
        say("  %-3s %9.2f ms" % (q, sq["queries"][q]["hot_ms"]))

    # --- Python MapReduce
    say("Python MapReduce, seed-style (%d process(es); %d run(s) per job, end to end)" % (os.cpu_count(), slow))
    warm([storage])
    row_mr = res["rows"].setdefault("mapreduce", {})
    for q in QUERIES:
        times, answer, noises = [], None, []
        for _ in range(slow):
            proc, noise = m.run_measured(m.helper("mapreduce", q, storage), "Python MapReduce " + q)
            out = json.loads(proc.stdout)
            times.append(noise["wall_s"] * 1e3)
            noises.append(noise)
            answer = out["answer"]
        row_mr[q] = {"runs": slow, "times_ms": times, "first_ms": times[0], "min_ms": min(times),
                     "hot_ms": statistics.median(times), "loadavg": max(n["loadavg"] for n in noises),
                     "other_cpu_s": max(n["other_cpu_s"] for n in noises), "cpu_s": statistics.median(n["cpu_s"] for n in noises),
                     "waited_s": sum(n["waited_s"] for n in noises), "busy": any(n["busy"] for n in noises),
                     "files": out["files"], "processes": out["processes"]}
        res["answers"].setdefault("mapreduce", {})[q] = answer
        say("  %-3s %9.0f ms" % (q, row_mr[q]["hot_ms"]))

    # --- agreement
    failures = check_answers(res, a.get("expect_j1"))
    res["agreement"] = "all systems agree" if not failures else "DISAGREE"
    res["failures"] = failures
    tmp = a["out"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, a["out"])
    if failures:
        sys.stderr.write("\nbench-query: FAILED: the systems do not give the same answers (%s pings):\n" % a["pings"])
        sys.stderr.write("\n".join(failures) + "\n")
        sys.exit(3)
    say("answers: every system agrees on J1-J3 (%s pings)" % a["pings"])


SYSTEM_ORDER = ["mapreduce", "duck_hot", "duck_cold", "sqlite", "te_sql", "te_job"]
SYSTEM_NAMES = {"mapreduce": "Python MapReduce", "duck_hot": "DuckDB hot", "duck_cold": "DuckDB cold",
                "sqlite": "sqlite3", "te_sql": "TelemetryEngine SQL", "te_job": "TelemetryEngine job"}


def check_answers(res, expect_j1):
    failures = []
    answers = res["answers"]
    ref_name = next(s for s in SYSTEM_ORDER if s in answers)   # the seed-style MapReduce: the reference
    ref = answers[ref_name]
    rn = SYSTEM_NAMES[ref_name]
    if expect_j1 is not None and ref.get("J1") != expect_j1:
        failures.append("J1 of %s is %s, expected %s for this dataset" % (rn, json.dumps(ref.get("J1")), json.dumps(expect_j1)))
    for name in SYSTEM_ORDER:
        if name == ref_name or name not in answers:
            continue
        for q in QUERIES:
            if q not in answers[name]:
                continue
            d = diff_answers(q, rn, ref[q], SYSTEM_NAMES[name], answers[name][q])
            if d:
                failures.append("%s disagrees with %s:" % (SYSTEM_NAMES[name], rn))
                failures.extend(d)
    ref_dim = to_dimension(ref["J2"])
    for name in ("te_sql", "te_job"):
        got = answers.get(name, {}).get("J2d")
        if got is not None:
            d = diff_answers("J2 by dimension", rn + " (J2 mapped to the dimension)", ref_dim, SYSTEM_NAMES[name], got)
            if d:
                failures.append("%s J2 by dimension disagrees:" % SYSTEM_NAMES[name])
                failures.extend(d)
    c = res["checks"]
    if "duck_j3_pings" in c and c["duck_j3_pings"] != c.get("te_j3_pings"):
        failures.append("J3 filter: %s pings match the payload fields (info.reason = '%s', info.appUpdateChannel in %s) "
                        "but %s match the store's dimensions (%s)" % (
                            c["duck_j3_pings"], J3_REASON_PAYLOAD, list(J3_CHANNELS), c.get("te_j3_pings"), te_where()))
    lengths = {k: v for k, v in c.get("duck_gc_lengths", {}).items() if k not in ("NULL", str(ARRAY_LENGTH))}
    if lengths:
        failures.append("%s arrays of other lengths than %d (bucket count, pings): %s: J2 would add unlike buckets" % (
            HISTOGRAM, ARRAY_LENGTH, lengths))
    for key in ("te_rows", "duck_rows"):
        if key in c and c[key] != res["pings"]:
            failures.append("%s: %s rows, expected %s" % (key, c[key], res["pings"]))
    if res.get("sqlite", {}).get("rows") not in (None, res["pings"]):
        failures.append("sqlite3 table: %s rows, expected %s" % (res["sqlite"]["rows"], res["pings"]))
    return failures


def shq(s):
    return s if re.fullmatch(r"[A-Za-z0-9_.,/=:+-]+", s) else "\"%s\"" % s.replace("\\", "\\\\").replace("\"", "\\\"")


# --- report -------------------------------------------------------------------------------------------------------

ROWS = [   # (system, field, label, short label)
    ("te_sql", "hot_ms", "**TelemetryEngine SQL**, hot (`telemetry query --repeat N`: median of the runs after the first)",
     "TelemetryEngine SQL, hot"),
    ("te_job", "hot_ms", "**TelemetryEngine job**, hot (`telemetry job --repeat N`: median of the runs after the first)",
     "TelemetryEngine job, hot"),
    ("te_sql", "first_ms", "TelemetryEngine SQL, first run in a fresh process (page cache warm)", "TelemetryEngine SQL, first run"),
    ("te_job", "first_ms", "TelemetryEngine job, first run in a fresh process (page cache warm)", "TelemetryEngine job, first run"),
    ("duck_hot", "hot_ms", "**DuckDB hot**: in-memory table loaded once (median of the runs after the first)", "DuckDB hot"),
    ("duck_cold", "hot_ms", "DuckDB cold: `read_json` on the JSON lines, fresh connection (median of runs)", "DuckDB cold"),
    ("sqlite", "hot_ms", "sqlite3 JSON1 on (id, json), hot (runs after the first)", "sqlite3 JSON1, hot"),
    ("mapreduce", "hot_ms", "**Python MapReduce**, seed-style, end to end (median of runs)", "Python MapReduce"),
]


def fmt_ms(v):
    if v is None:
        return "—"
    if v >= 1000:
        return "{:,.0f}".format(v)
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def fmt_ratio(v):
    if v is None:
        return "—"
    if v >= 100:
        return "{:,.0f}×".format(v)
    if v >= 10:
        return "%.1f×" % v
    return "%.2f×" % v


def cell(res, system, field, q):
    stats = res["rows"].get(system, {}).get(q)
    return None if stats is None else stats.get(field)


def row_noise(res, system):
    qs = res["rows"].get(system, {})
    if not qs:
        return None, None, False
    return (max(s["loadavg"] for s in qs.values()), max(s["other_cpu_s"] for s in qs.values()),
            any(s.get("busy") for s in qs.values()))


def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    return meta


def runs_text(res, system, field):
    qs = res["rows"].get(system, {})
    if not qs:
        return "—"
    s = next(iter(qs.values()))
    if field == "first_ms":
        return "1"
    if system.startswith("te_") and s.get("mode") == "process":
        return "%d processes" % s["runs"]
    return str(s["runs"])


def render_size(res):
    lines = []
    pings = int(res["pings"])
    has_j2d = any("J2d" in res["rows"].get(s, {}) for s in ("te_sql", "te_job"))
    head = "| system | J1 ms | J2 ms | J3 ms |%s runs | load avg (1 min) | other CPU s |" % (" J2 by dimension ms |" if has_j2d else "")
    lines.append(head)
    lines.append("|---|---:|---:|---:|%s---:|---:|---:|" % ("---:|" if has_j2d else ""))
    any_noisy = any_busy = False
    for system, field, label, _ in ROWS:
        if system not in res["rows"]:
            continue
        la, other, busy = row_noise(res, system)
        noisy = other is not None and other > NOISY_OTHER_CPU_S
        any_noisy, any_busy = any_noisy or noisy, any_busy or busy
        cells = [fmt_ms(cell(res, system, field, q)) for q in QUERIES]
        extra = (" %s |" % fmt_ms(cell(res, system, field, "J2d"))) if has_j2d else ""
        lines.append("| %s | %s |%s %s | %.2f%s | %.1f%s |" % (
            label, " | ".join(cells), extra, runs_text(res, system, field), la, " ‡" if busy else "", other,
            " †" if noisy else ""))
    lines.append("")
    if any_noisy:
        lines.append("† Other processes used more than %.0f CPU s on the machine during at least one of this row's "
                     "measurements: its times may be inflated." % NOISY_OTHER_CPU_S)
        lines.append("")
    if any_busy:
        lines.append("‡ At least one of this row's measurements started on a busy machine: other processes still used "
                     "more than a quarter of a core after the whole wait.")
        lines.append("")
    return lines


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def render_goals(res):
    lines = []
    pings = "{:,}".format(int(res["pings"]))
    lines.append("| %s pings | J1 | J2 | J3 | goal |" % pings)
    lines.append("|---|---:|---:|---:|---|")
    verdicts = []
    for te, name in (("te_sql", "SQL"), ("te_job", "job")):
        rs = [ratio(cell(res, te, "hot_ms", q), cell(res, "duck_hot", "hot_ms", q)) for q in QUERIES]
        ok = all(r is not None and r < GOAL_DUCKDB_RATIO for r in rs)
        lines.append("| TelemetryEngine %s hot ÷ DuckDB hot | %s | < %.1f: %s |" % (
            name, " | ".join(fmt_ratio(r) for r in rs), GOAL_DUCKDB_RATIO, verdict(ok, rs)))
        verdicts.append(("TelemetryEngine %s hot faster than DuckDB's hot table" % name, ok, rs))
    for te, name in (("te_sql", "SQL"), ("te_job", "job")):
        rs = [ratio(cell(res, "mapreduce", "hot_ms", q), cell(res, te, "hot_ms", q)) for q in QUERIES]
        ok = all(r is not None and r >= GOAL_MR_SPEEDUP for r in rs)
        lines.append("| Python MapReduce ÷ TelemetryEngine %s hot | %s | ≥ %.0f×: %s |" % (
            name, " | ".join(fmt_ratio(r) for r in rs), GOAL_MR_SPEEDUP, verdict(ok, rs)))
        verdicts.append(("TelemetryEngine %s hot at least %.0f× faster than the Python MapReduce" % (name, GOAL_MR_SPEEDUP), ok, rs))
    for te, name in (("te_sql", "SQL"), ("te_job", "job")):
        rs = [ratio(cell(res, te, "first_ms", q), cell(res, "duck_hot", "hot_ms", q)) for q in QUERIES]
        lines.append("| context: TelemetryEngine %s first run ÷ DuckDB hot | %s | — |" % (name, " | ".join(fmt_ratio(r) for r in rs)))
    for te, name in (("te_sql", "SQL"), ("te_job", "job")):
        rs = [ratio(cell(res, "duck_cold", "hot_ms", q), cell(res, te, "hot_ms", q)) for q in QUERIES]
        lines.append("| context: DuckDB cold ÷ TelemetryEngine %s hot | %s | — |" % (name, " | ".join(fmt_ratio(r) for r in rs)))
    lines.append("")
    return lines, verdicts


def verdict(ok, rs):
    if any(r is None for r in rs):
        return "**not measured** (a form is missing)"
    return "**met**" if ok else "**missed**"


def render(results, meta):
    base = results[0]
    lines = ["## Query", "",
             "Written by `scripts/bench-query.sh`; rerun it to refresh this section (it replaces only this section).", ""]
    lines.append("- Command: `%s`" % meta["command"])
    no_build = meta["binary"].startswith("--no-build")
    lines.append("- Date: %s; commit `%s`%s%s; telemetry binary: %s" % (
        meta["date"], meta["commit"], " (Sources/ had uncommitted changes)" if meta.get("dirty") == "1" else "",
        " when the run started (the binary may have been built from another state)" if no_build else "", meta["binary"]))
    lines.append("- Machine: `nproc` = %s, %s, %s RAM, %s" % (meta["nproc"], meta["cpu_model"], meta["mem"], meta["kernel"]))
    lines.append("- Tools: %s; DuckDB %s (Python package, %s threads); sqlite %s (Python `sqlite3` module)" % (
        meta["versions"], base["duckdb"]["version"], base["duckdb"]["threads"], base["sqlite"]["version"]))
    for res in results:
        n = res["pings"]
        lines.append("- Dataset, %s pings: `%s` → `%s`: %s" % (
            "{:,}".format(int(n)), meta["gen_command_%s" % n], meta["dataset_%s" % n], meta["dataset_desc_%s" % n]))
    lines.append("- Answers: %s. %s" % (
        "; ".join("%s pings: **%s**" % ("{:,}".format(int(r["pings"])), r["agreement"]) for r in results),
        j1_text(base)))
    notes = []
    for r in results:
        for n in r["notes"]:
            if n not in notes:
                notes.append(n)
    for n in notes:
        lines.append("- Note: %s." % n)
    lines.append("- Measured one system at a time (never two at once); before each measurement the script waits (at most "
                 "%s s) for the machine to use less than a quarter of a core, and the inputs are read into the page cache "
                 "first. \"load avg\" is the 1-minute load average at the start of the row's measurements (the largest "
                 "of its queries; the benchmark's own previous measurement counts too, e.g. near 2 after the 2-process MapReduce); \"other CPU s\" is the CPU time the rest of the machine used while they ran (from "
                 "/proc/stat minus the measured process), the largest of its queries." % meta["quiet_wait"])
    lines.append("")
    for res in results:
        lines.append("### %s pings" % "{:,}".format(int(res["pings"])))
        lines.append("")
        lines.extend(render_size(res))
    # Goals
    lines.append("### Goals")
    lines.append("")
    summary = []
    for res in results:
        glines, verdicts = render_goals(res)
        lines.extend(glines)
        for text, ok, rs in verdicts:
            summary.append((res["pings"], text, ok, rs))
    for pings, text, ok, rs in summary:
        lines.append("- %s pings: %s (J1, J2, J3: %s): %s." % (
            "{:,}".format(int(pings)), text, ", ".join(fmt_ratio(r) for r in rs), verdict(ok, rs)))
    lines.append("")
    if len(results) > 1:
        lines.extend(render_growth(results))
    lines.extend(render_method(base, meta))
    return "\n".join(lines) + "\n"


def j1_text(res):
    j1 = res["answers"]["mapreduce"]["J1"]
    j3 = res["checks"].get("te_j3_pings")
    text = "J1 on %s pings: %s" % ("{:,}".format(int(res["pings"])), ", ".join("%s %d" % kv for kv in sorted(j1.items())))
    if j3 is not None:
        text += "; the J3 filter selects %s pings (%s of them with %s) in every system" % (
            "{:,}".format(j3), "{:,}".format(res["checks"].get("duck_j3_pings_with_histogram", 0)), HISTOGRAM)
    return text + "."


def render_growth(results):
    a, b = results[0], results[-1]
    lines = ["### Growth: %s ÷ %s pings (%.0f× the data)" % ("{:,}".format(int(b["pings"])), "{:,}".format(int(a["pings"])),
                                                              int(b["pings"]) / int(a["pings"])), ""]
    lines.append("| system | J1 | J2 | J3 |")
    lines.append("|---|---:|---:|---:|")
    for system, field, _, label in ROWS:
        if system not in a["rows"] or system not in b["rows"]:
            continue
        cells = []
        for q in QUERIES:
            x, y = cell(a, system, field, q), cell(b, system, field, q)
            cells.append("—" if x is None or y is None else "%s → %s ms (%s)" % (fmt_ms(x), fmt_ms(y), fmt_ratio(y / x)))
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    lines.append("")
    return lines


def render_method(res, meta):
    te = te_sql()
    lines = ["### Method", ""]
    lines.append("- The queries: **J1** ping count by `info.OS`; **J2** element-wise sum of the 50 buckets of the "
                 "`histograms.GC_MS` arrays (55 numbers: 50 buckets + 5 statistics; every array in the data has 55, "
                 "checked each run), grouped by the payload's `info.appUpdateChannel` (the dataset has `esr` too); "
                 "**J3** J2 over the pings with reason saved-session and channel release or beta. \"J2 by dimension\" "
                 "groups by the store's `appUpdateChannel` dimension instead (the default schema maps `esr` to `OTHER`); "
                 "it is checked against the reference's J2 with `esr` merged into `OTHER`.")
    lines.append("- Same answers everywhere: each system's result is normalised (group → count, or group → 50 integer "
                 "buckets; groups without any GC_MS left out) and compared with the Python MapReduce's; any difference "
                 "fails the run before this section is written. J3's filter is on the dimensions in TelemetryEngine "
                 "(`%s`) and in the MapReduce (its job filter selects files by storage path, as the seed's did), on the "
                 "payload fields in DuckDB and sqlite3 (`info.reason = '%s' AND info.appUpdateChannel IN ('release', "
                 "'beta')`); the run checks that both select the same pings (the store's dimensions are the sanitised "
                 "`info` values: `saved-session` → `saved_session`, and release/beta are schema values)." % (
                     te_where(), J3_REASON_PAYLOAD))
    lines.append("- TelemetryEngine: the store is made once per dataset, untimed: `telemetry import DIR/storage --store "
                 "te.db` then `telemetry reindex --store te.db` (histogram column files). SQL form: `telemetry query "
                 "--store te.db --format tsv --no-header --repeat N SQL`; job form: `telemetry job --store te.db --repeat N "
                 "…`. With `--repeat N` one process runs the query N times and prints `timing: runs=N first_ms=F min_ms=M "
                 "median_ms=D` on standard error: \"hot\" is median_ms (the runs after the first), \"first run\" is "
                 "first_ms (a fresh process, the store's files in the page cache). N = %s." % res["repeat"])
    lines.append("")
    lines.append("  ```sql")
    for q in QUERIES + ["J2d"]:
        lines.append("  -- %s" % q)
        lines.append("  " + te[q] + ";")
    lines.append("  ```")
    lines.append("")
    jc = res.get("job_commands", {})
    lines.append("  Jobs: " + "; ".join("%s `%s`" % (q, jc[q]) for q in QUERIES + ["J2d"] if q in jc) + ".")
    lines.append("- DuckDB: the payloads are written once (untimed) as JSON lines, one ping object per line "
                 "(`xz -dc FILES | cut -f2-`). **Hot**: one in-memory table loaded once, untimed (%.1f s for %s "
                 "pings), then each query run N = %s times in the same connection. **Cold**: each run opens a fresh "
                 "in-memory connection and queries the JSON lines directly (`read_json` with typed `columns`), "
                 "%s run(s) per query. J2 is 50 explicit `sum(gc[i])` in one `GROUP BY`: the fastest correct form found "
                 "(`unnest` + `generate_subscripts` + `list(… ORDER BY i)` was 2–4× slower, `UNNEST … WITH ORDINALITY` "
                 "about 10× slower)." % (res["duckdb"]["load_s"], "{:,}".format(int(res["pings"])), res["repeat"], res["slow_runs"]))
    lines.append("")
    lines.append("  ```sql")
    lines.append("  " + duck_load_sql("pings.jsonl").replace("\n", "\n  ") + ";")
    hot = duck_hot_sql()
    lines.append("  -- J1\n  " + hot["J1"] + ";")
    lines.append("  -- J2 (J3: the same with WHERE reason = 'saved-session' AND ch IN ('release', 'beta'))")
    lines.append("  " + hot["J2"].replace(", ".join("sum(gc[%d])" % i for i in range(3, BUCKETS)), "…") + ";")
    lines.append("  ```")
    lines.append("")
    sq = sqlite_sql()
    lines.append("- sqlite3: table `pings(id TEXT, json TEXT)` loaded once, untimed (`xz -dc FILES | sqlite3 DB "
                 "'.import /dev/stdin pings'` in tab mode), queried from Python's `sqlite3` module with JSON1; %s run(s) "
                 "per query, hot = the runs after the first (with 1 run, that run, the database in the page cache). "
                 "The J2 rows (group, bucket index, sum) are assembled into arrays in Python, untimed." % res["slow_runs"])
    lines.append("")
    lines.append("  ```sql")
    lines.append("  -- J1\n  " + sq["J1"].replace("\n", "\n  ") + ";")
    lines.append("  -- J2 / J3\n  " + sq["J3"].replace("\n", "\n  ") + ";")
    lines.append("  ```")
    lines.append("")
    lines.append("- Python MapReduce (seed-style, in `scripts/bench_query.py`): a `multiprocessing.Pool` of %d processes "
                 "maps over the xz files (biggest first), each `lzma.open`, split at the first TAB, `json.loads`, "
                 "`map(key, dimensions, payload)` emitting (key, value); the parent groups by key and reduces (sum, or "
                 "element-wise sum of the 50 buckets). J3's job filter selects the files by their storage-layout path. "
                 "Timed end to end (Python start-up included), %s run(s) per job." % (
                     res["rows"]["mapreduce"]["J1"]["processes"], res["slow_runs"]))
    lines.append("- The MapReduce ratios compare its end-to-end time with TelemetryEngine's hot time.")
    lines.append("")
    return lines


def replace_section(doc, section):
    text = ""
    if os.path.exists(doc):
        with open(doc) as f:
            text = f.read()
    match = re.search(r"^## Query[ \t]*$", text, flags=re.M)
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


# --- command line -----------------------------------------------------------------------------------------------

def parse_opts(argv, spec):
    out = {}
    i = 0
    while i < len(argv):
        name = argv[i]
        if not name.startswith("--") or name[2:].replace("-", "_") not in spec:
            die("unknown argument %r" % name)
        key = name[2:].replace("-", "_")
        if i + 1 >= len(argv):
            die("%s needs a value" % name)
        out[key] = spec[key](argv[i + 1])
        i += 2
    return out


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd = argv[1]
    if cmd == "duckdb-hot" and len(argv) == 5:
        cmd_duckdb_hot(argv[2], int(argv[3]), int(argv[4]))
    elif cmd == "duckdb-cold" and len(argv) == 5:
        cmd_duckdb_cold(argv[2], int(argv[3]), int(argv[4]))
    elif cmd == "sqlite" and len(argv) == 5:
        cmd_sqlite(argv[2], int(argv[3]), int(argv[4]))
    elif cmd == "mapreduce" and len(argv) == 4:
        cmd_mapreduce(argv[2], argv[3])
    elif cmd == "sql" and len(argv) == 3:
        print(json.dumps({"te": te_sql, "duck_hot": duck_hot_sql, "duck_cold": lambda: duck_cold_sql("pings.jsonl"),
                          "sqlite": sqlite_sql}[argv[2]](), indent=1))
    elif cmd == "measure":
        spec = {"pings": int, "storage": str, "work": str, "telemetry": str, "out": str, "repeat": int, "slow_runs": int,
                "timeout": int, "quiet_wait": int, "expect_j1": json.loads}
        a = {"repeat": 10, "slow_runs": 2, "timeout": 1200, "quiet_wait": 10, "expect_j1": None}
        a.update(parse_opts(argv[2:], spec))
        for k in ("pings", "storage", "work", "telemetry", "out"):
            if k not in a:
                die("measure needs --%s" % k.replace("_", "-"))
        if a["repeat"] < 2:
            die("--repeat must be at least 2 (the first run warms up)")
        cmd_measure(a)
    elif cmd == "report":
        files = [x for x in argv[2:] if not x.startswith("--")]
        opts = {}
        rest = argv[2:]
        for flag in ("--meta", "--doc"):
            if flag in rest:
                opts[flag] = rest[rest.index(flag) + 1]
                files.remove(opts[flag])
        if "--meta" not in opts or not files:
            die("report needs RESULTS.json ... --meta META.tsv")
        results = []
        for f in files:
            with open(f) as fh:
                results.append(json.load(fh))
        results.sort(key=lambda r: int(r["pings"]))
        section = render(results, read_meta(opts["--meta"]))
        sys.stdout.write(section)
        if "--doc" in opts:
            replace_section(opts["--doc"], section)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
