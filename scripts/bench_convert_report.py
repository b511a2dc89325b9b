#!/usr/bin/env python3
"""Report side of scripts/bench-convert.sh (Python 3 standard library only).

  bench_convert_report.py table RUN_DIR [--doc docs/benchmarks.md]
      Reads RUN_DIR/meta.tsv, RUN_DIR/results.tsv and the per-run outputs (written by bench-convert.sh), prints
      the results table, the bound and the goal ratio as Markdown, and with --doc replaces the "## Convert"
      section of that file (creating the file if needed; other sections are left as they are).
  bench_convert_report.py profile FREQ PROFILE_JSON < perf-script-output > profile.md
      Summarises `perf script -F pid,tid,time,ip,sym,dso` output (with call chains) of one `telemetry convert`:
      CPU seconds by pipeline stage (each sample goes to the stage of the innermost frame that names one), the
      top functions by self time, and each worker thread's phases; writes the stage totals to PROFILE_JSON.
"""
import json
import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict

GOAL_RATIO = 0.60           # convert throughput >= 60% of the bound's throughput (2-core bound)
NOISY_OTHER_CPU_S = 1.0     # other processes' CPU seconds during a run above which the row is flagged


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


def fmt(value, digits=2):
    return "—" if value is None else ("%.*f" % (digits, value))


def summarise(run, rows):
    """Per command: best and median of its timed seconds (wall, or in-process for gunzip) and that run's figures."""
    out = {}
    for key, recs in rows.items():
        timed_field = "inproc_s" if key == "gunzip" else "wall_s"
        times = [num(r, timed_field) for r in recs]
        best = min(recs, key=lambda r: num(r, timed_field))
        entry = {
            "time": num(best, timed_field), "median": statistics.median(times), "all": times, "n": len(recs),
            "wall": num(best, "wall_s"), "rss_mb": max(num(r, "rss_kb") for r in recs) / 1024.0,
            "cpu": num(best, "user_s") + num(best, "sys_s"), "other": num(best, "other_cpu_s"),
            "written_mb": (num(best, "fs_out_blocks") or 0) * 512 / 1e6, "inproc": num(best, "inproc_s"),
            "round": best["round"],
        }
        if key == "gunzip":   # CPU of the timed calls only (thread CPU time), from that run's JSON
            try:
                with open(os.path.join(run, "gunzip.%s.out" % best["round"])) as f:
                    g = json.load(f)
                entry["cpu"] = g["cpu_seconds"]
                entry["process_wall"] = num(best, "wall_s")
            except (OSError, ValueError, KeyError):
                pass
        out[key] = entry
    return out


def verdict(ok):
    return "**met**" if ok else "**missed**"


def render(run, meta, s):
    n = int(meta["repeat"])
    jobs = int(meta["jobs"])
    raw_mb = int(meta["raw_bytes"]) / 1e6
    records = int(meta["records"])
    plain_mb = int(meta["plain_bytes"]) / 1e6
    g = json.loads(meta["gunzip_json"])
    check = json.loads(meta["check_json"])
    L = []
    L.append("## Convert")
    L.append("")
    L.append("Written by `scripts/bench-convert.sh`; rerun it to refresh this section (it replaces only this section).")
    L.append("")
    L.append("- Command: `%s`" % meta["command"])
    L.append("- Date: %s; commit `%s`%s; telemetry binary: %s" % (
        meta["date"], meta["commit"], " (Sources/ had uncommitted changes)" if meta.get("dirty") == "1" else "",
        meta.get("binary", "?")))
    L.append("- Machine: `nproc` = %s, %s, %s RAM, %s" % (meta["nproc"], meta["cpu_model"], meta["mem"], meta["kernel"]))
    L.append("- Tools: %s; telemetry links %s" % (meta["versions"], meta.get("te_libs", "?").strip() or "?"))
    L.append("- Dataset: `%s` → `%s`: %d records in %s raw logs (v1), %.1f MB (the bytes that \"MB/s raw\" divides); "
             "%d payloads gzipped (%.1f MB → %.1f MB inflated), %d plain JSON" % (
                 meta["gen_command"], meta["dataset"], records, meta["raw_files"], raw_mb,
                 g["gzipped"], g["gzip_bytes"] / 1e6, g["inflated_bytes"] / 1e6, g["plain"]))
    L.append("- Measured: `%s`" % meta["te_command"])
    L.append("- Output check (after every convert run): %d converted, %d rejected; %d record lines in the output "
             "(`xz -dc`), %d files, %.1f MB uncompressed, %.1f MB xz. MANIFEST: `outputs.rawlog.records` = %d, "
             "`expected_convert_counts` = `%s`: %s." % (
                 check["converted"], check["rejected"], check["lines"], check["files"], check["bytes_out"] / 1e6,
                 check["compressed_bytes_out"] / 1e6, check["manifest_records"], meta["expected_convert_counts"],
                 "**match**" if check["ok"] else "**MISMATCH** " + "; ".join(check["problems"])))
    L.append("- Runs: %d round(s); each round runs every command once, one after another (never two at a time), after "
             "`sync` and after waiting (at most %s s) for the machine to be idle, with the inputs in the page cache. "
             "\"best\" is the fastest run (the rates, CPU and noise columns are that run's), \"median\" the median of "
             "the rounds; all runs are listed in round order. Peak RSS is the largest of the rounds." % (
                 n, meta.get("quiet_wait", "?")))
    L.append("")

    te, gz, xz1, xz2, j1 = (s.get(k) for k in ("te", "gunzip", "xz1", "xz2", "te_j1"))
    L.append("| what | best s | median s | all runs, s | MB/s raw | pings/s | peak RSS MB | CPU s (user+sys) | other CPU s during run |")
    L.append("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    any_noisy = False

    def row(label, r, cpu=None, rss=True):
        nonlocal any_noisy
        noisy = r.get("other") is not None and r["other"] > NOISY_OTHER_CPU_S
        any_noisy = any_noisy or noisy
        L.append("| %s | %s%s | %s | %s | %.1f | %.0f | %s | %s | %s |" % (
            label, fmt(r["time"]), " †" if noisy else "", fmt(r["median"]), " / ".join(fmt(t) for t in r["all"]),
            raw_mb / r["time"], records / r["time"], ("%.0f" % r["rss_mb"]) if rss else "—",
            fmt(r["cpu"] if cpu is None else cpu, 1), fmt(r.get("other"), 1)))

    def computed(label, best, median, cpu):
        L.append("| %s | %s | %s | computed | %.1f | %.0f | — | %s | — |" % (
            label, fmt(best), fmt(median), raw_mb / best, records / best, fmt(cpu, 1)))

    if te:
        row("**TelemetryEngine** `telemetry convert --jobs %d` (raw logs → xz storage files)" % jobs, te)
    if gz:
        row("(a) inflate the %d gzipped payloads: zlib `decompress` calls only (Python; whole process: %s s)" % (
            g["gzipped"], fmt(gz.get("process_wall"))), gz, rss=False)
    if xz1:
        row("(b) `xz -0 -C crc64 -T1`, 1 process, over the %s uncompressed output files (%.1f MB) → /dev/null" % (
            meta["plain_files"], plain_mb), xz1)
    bound1 = bound1_med = bound2 = bound2_med = None
    if gz and xz1:
        bound1, bound1_med = gz["time"] + xz1["time"], gz["median"] + xz1["median"]
        bound_cpu = gz["cpu"] + xz1["cpu"]
        computed("**bound, 1 core** = (a) + (b)", bound1, bound1_med, bound_cpu)
        bound2, bound2_med = bound1 / 2, bound1_med / 2
        computed("**bound, 2 cores** = ((a) + (b)) / 2: the CPU work of the bound spread perfectly over 2 cores",
                 bound2, bound2_med, bound_cpu)
    if xz2:
        row("context: (b) as 2 processes (`xargs -P2 -n 50`)", xz2)
    if gz and xz2:
        computed("context: (a) / 2 + (b) as 2 processes", gz["time"] / 2 + xz2["time"], gz["median"] / 2 + xz2["median"],
                 gz["cpu"] + xz2["cpu"])
    if j1:
        row("diag: TelemetryEngine `--jobs 1`", j1)
    L.append("")
    if any_noisy:
        L.append("† Even the best run of this row had more than %.0f s of other CPU use on the machine: its time "
                 "(and the rates computed from it) is inflated." % NOISY_OTHER_CPU_S)
        L.append("")
    L.append("\"MB/s raw\" and \"pings/s\" divide the raw input (%.1f MB, %d records) by the row's time, so every row is "
             "on the same scale. \"other CPU s during run\" is CPU time the rest of the machine used while the command "
             "ran (from /proc/stat, minus the command's own user+sys): noise from other work on this shared %s-core "
             "machine. Row (a)'s time and CPU are the zlib calls alone (wall and thread CPU time), not the Python "
             "process; its peak RSS is not shown (the helper holds one raw log in memory)." % (raw_mb, records, meta["nproc"]))
    L.append("")

    # Goal.
    L.append("### Goal")
    L.append("")
    if te and bound2:
        ratio, ratio_med = bound2 / te["time"], bound2_med / te["median"]
        L.append("- Convert throughput / bound throughput (2 cores) = bound wall / convert wall = %.2f / %.2f = **%.2f** "
                 "(%.0f%%; medians: %.2f / %.2f = %.2f); goal ≥ %.2f: %s. Meeting it would take a convert wall time of "
                 "at most %.2f s (%.0f MB/s raw, %.0f pings/s); the best run took %.2f s (%.1f MB/s raw, %.0f pings/s)." % (
                     bound2, te["time"], ratio, 100 * ratio, bound2_med, te["median"], ratio_med, GOAL_RATIO,
                     verdict(ratio >= GOAL_RATIO), bound2 / GOAL_RATIO, raw_mb / (bound2 / GOAL_RATIO),
                     records / (bound2 / GOAL_RATIO), te["time"], raw_mb / te["time"], records / te["time"]))
        L.append("- Against the 1-core bound (%.2f s): %.2f×%s." % (
            bound1, bound1 / te["time"],
            ("; `--jobs 1` against it: %.2f / %.2f = %.2f" % (bound1, j1["time"], bound1 / j1["time"])) if j1 else ""))
        L.append("- Peak RSS of convert: %.0f MB%s." % (te["rss_mb"], (" (`--jobs 1`: %.0f MB)" % j1["rss_mb"]) if j1 else ""))
        L.append("")
        L.append("Where the time goes:")
        L.append("")
        cpu_bound = gz["cpu"] + xz1["cpu"]
        L.append("- CPU: convert used %.1f CPU s (user+sys) in %.2f s of wall time (%.0f%% of %d cores); the bound's work "
                 "is %.1f CPU s (inflate %.1f + xz %.1f). Convert spends %.1f CPU s (%.1f×, %.0f%% of its CPU) on work "
                 "outside the bound. Even perfectly spread over %d cores, %.1f CPU s needs %.2f s, against the %.2f s "
                 "the goal allows." % (
                     te["cpu"], te["time"], 100 * te["cpu"] / te["time"] / jobs, jobs, cpu_bound, gz["cpu"], xz1["cpu"],
                     te["cpu"] - cpu_bound, te["cpu"] / cpu_bound, 100 * (te["cpu"] - cpu_bound) / te["cpu"], jobs,
                     te["cpu"], te["cpu"] / jobs, bound2 / GOAL_RATIO))
        budget = jobs * bound2 / GOAL_RATIO
        L.append("- By CPU time, which depends much less than wall time on the other load on the machine: bound CPU / convert CPU = %.1f / %.1f "
                 "= %.2f. To meet the goal even with all %d cores busy all the time, convert's CPU has to fit in %d × %.2f = "
                 "%.1f s: %.1f CPU s (%.0f%%) less than now, i.e. %.0f%% of its work outside the bound has to go." % (
                     cpu_bound, te["cpu"], cpu_bound / te["cpu"], jobs, jobs, bound2 / GOAL_RATIO, budget,
                     te["cpu"] - budget, 100 * (te["cpu"] - budget) / te["cpu"],
                     100 * max(0.0, te["cpu"] - budget) / max(1e-9, te["cpu"] - cpu_bound)))
        if te.get("written_mb"):
            L.append("- I/O: each convert run wrote %.0f MB to files (`/usr/bin/time` \"File system outputs\" × 512) for "
                     "%.1f MB of xz output: the records go to uncompressed work files first (%.1f MB), which are read "
                     "back and compressed when the run ends. From the page cache this costs little CPU (the kernel "
                     "rows of the profile)." % (te["written_mb"], check["compressed_bytes_out"] / 1e6, check["bytes_out"] / 1e6))
        if j1:
            L.append("- `--jobs 1`: %.2f s and %.1f CPU s; `--jobs %d` is %.2f× faster (%d raw logs shared between the "
                     "jobs, one file per job at a time)." % (j1["time"], j1["cpu"], jobs, j1["time"] / te["time"], int(meta["raw_files"])))
        prof_json = meta.get("profile_json")
        if prof_json and os.path.exists(prof_json):
            with open(prof_json) as f:
                p = json.load(f)
            st = p["stages"]
            total = p["total"]
            inside = sum(v for k, v in st.items() if k.startswith(("xz compression", "gzip inflate")))
            L.append("- From the profile below (%.1f CPU s sampled): liblzma and zlib, the bound's own work, take %.1f s "
                     "(%.0f%%); the rest, %.1f s (%.0f%%), is TelemetryEngine's own conversion work. The largest "
                     "stages: %s." % (
                         total, inside, 100 * inside / total, total - inside, 100 * (total - inside) / total,
                         "; ".join("%s %.1f s (%.0f%%)" % (k, v, 100 * v / total)
                                   for k, v in sorted(st.items(), key=lambda kv: -kv[1])[:5])))
        L.append("")
    prof = meta.get("profile_md")
    if prof and os.path.exists(prof):
        with open(prof) as f:
            L.append(f.read().rstrip("\n"))
        L.append("")
    L.append("### Method")
    L.append("")
    L.append("- TelemetryEngine: `%s` into a fresh, empty OUT (default settings otherwise: xz preset 0 with CRC64, "
             "output files rotated at 500 MB uncompressed, so never here). Release build: `swift build -c release "
             "--scratch-path .build-bench`. After each run (untimed), its `--json` summary is compared with the "
             "generator's MANIFEST.json (converted = `expected_convert_counts.none`, no rejections, processed = "
             "`records`, input files and bytes) and the output's lines are counted with `xz -dc` (= `records`)." % meta["te_command"])
    L.append("- (a) inflate: `python3 scripts/bench_convert.py gunzip RAWLOGS...` reads each raw log (v1 records: 0x1E, "
             "u16 path_len, u32 data_len, u64 timestamp, path, data; spec/raw-log.md §1) and calls "
             "`zlib.decompress(data, 16 + 15)` on every body that starts with the gzip magic (CRC checked, like "
             "convert); only those calls are timed. Python's zlib is the C zlib, the library convert inflates with.")
    L.append("- (b) xz: the first convert run's output is decompressed once (`xz -dc`, untimed) into one plain file "
             "per output file (%s files, %.1f MB of `<uuid>\\t<json>` lines); then `xargs -d '\\n' xz -0 -C crc64 -T1 -c "
             "-- FILES > /dev/null` compresses them again, one xz stream per file as convert writes them (preset 0, "
             "CRC64, single-threaded). The 2-process row is the same with `xargs -P2 -n 50`." % (meta["plain_files"], plain_mb))
    L.append("- The bound = (a) + (b), single-core and sequential; the 2-core bound is that CPU work divided by 2, "
             "the best wall time any converter running on 2 cores could reach while doing this work. The goal compares "
             "convert with the 2-core bound.")
    L.append("- Wall time and peak RSS: `/usr/bin/time -v` (\"Elapsed (wall clock) time\", \"Maximum resident set size\").")
    L.append("")
    return "\n".join(L) + "\n"


def replace_section(doc, section, title="## Convert"):
    text = ""
    if os.path.exists(doc):
        with open(doc) as f:
            text = f.read()
    if not text.strip():
        text = "# Benchmarks\n\n"
    match = re.search(r"^%s[ \t]*$" % re.escape(title), text, flags=re.M)
    if match:
        rest = text[match.end():]
        nxt = re.search(r"^## ", rest, flags=re.M)
        end = match.end() + (nxt.start() if nxt else len(rest))
        text = text[:match.start()] + section.rstrip("\n") + "\n" + ("\n" if nxt else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc)


# --- perf profile summary -------------------------------------------------------------------------------

KERNEL_CALLS = (("sys_write", "kernel: write (work files, .xz output)"), ("sys_read", "kernel: read"),
                ("sys_fsync", "kernel: fsync"), ("sys_fdatasync", "kernel: fsync"),
                ("sys_openat", "kernel: open/rename/unlink/mkdir"), ("sys_rename", "kernel: open/rename/unlink/mkdir"),
                ("sys_unlink", "kernel: open/rename/unlink/mkdir"), ("sys_mkdir", "kernel: open/rename/unlink/mkdir"),
                ("futex", "kernel: futex"), ("sys_munmap", "kernel: mmap/munmap (large allocations)"),
                ("sys_mmap", "kernel: mmap/munmap (large allocations)"), ("sys_madvise", "kernel: mmap/munmap (large allocations)"),
                ("page_fault", "kernel: page faults"))

# (substring of the demangled frame name, stage); the innermost frame that matches one decides the stage.
NAME_STAGES = (
    ("StorageWriter.publish", "xz output: work file → .xz (outside liblzma)"),
    ("XZWriter", "xz output: work file → .xz (outside liblzma)"),
    ("JSONValue.write", "JSON serialisation (JSONValue.write: String appends)"),
    ("JSONValue.writeString", "JSON serialisation (JSONValue.write: String appends)"),
    ("StorageWriter.cleanNewlines", "storage line: cleanNewlines, concatenation, append to work file"),
    ("StorageWriter.line", "storage line: cleanNewlines, concatenation, append to work file"),
    ("StorageWriter", "storage line: cleanNewlines, concatenation, append to work file"),
    ("HistogramCompactor", "histogram compaction (values → compact arrays)"),
    ("BucketFormat", "histogram compaction (values → compact arrays)"),
    ("HistogramDefinition", "histogram compaction (values → compact arrays)"),
    ("JSONBuilder", "JSON parse: simdjson DOM → JSONValue tree"),
    ("(anonymous namespace)::walk", "JSON parse: simdjson DOM → JSONValue tree"),
    ("csimdjson", "JSON parse: simdjson DOM → JSONValue tree"),
    ("JSONParsing", "JSON parse: simdjson DOM → JSONValue tree"),
    ("PingParser", "JSON parse: simdjson DOM → JSONValue tree"),
    ("Gzip", "gzip inflate: Swift side (buffers)"),
    ("PayloadConverter", "payload conversion (rest: info, dimensions, tree edits)"),
    ("RawLogReader", "raw log reading"),
    ("RecordConverter", "record conversion (rest)"),
    ("JSONValue", "JSONValue tree: copies and releases"),
    ("JSONObject", "JSONValue tree: copies and releases"),
    ("Converter", "convert loop (rest)"),
)


def demangle(names, simplified):
    """Swift symbol -> demangled name (full, or `--simplified` for display); other names unchanged."""
    mangled = sorted(n for n in names if n.startswith(("$s", "_$s", "$S", "_T")))
    table = {n: n for n in names}
    if not mangled:
        return table
    try:
        res = subprocess.run(["swift", "demangle"] + (["--simplified"] if simplified else []),
                             input="\n".join(mangled) + "\n", capture_output=True, text=True, timeout=300)
        out = res.stdout.split("\n")
        if res.returncode == 0 and len(out) >= len(mangled):
            for n, d in zip(mangled, out):
                table[n] = d
    except (OSError, subprocess.SubprocessError):
        pass
    return table


def lib_of(dso):
    return os.path.basename(dso.strip("()"))


def stage_of(frames, names):
    """frames: leaf first, (sym, dso)."""
    leaf_lib = lib_of(frames[0][1])
    if "liblzma" in leaf_lib:
        return "xz compression of the output (liblzma)"
    if leaf_lib.startswith("libz.so"):
        return "gzip inflate of the payloads (zlib)"
    if "libsimdjson" in leaf_lib:
        return "JSON parse: simdjson (validation, DOM)"
    if "kernel" in leaf_lib:
        chain = " ".join(s for s, _ in frames)
        for pattern, label in KERNEL_CALLS:
            if pattern in chain:
                return label
        return "kernel: other"
    for sym, dso in frames:
        name = names.get(sym, sym)
        for pattern, label in NAME_STAGES:
            if pattern in name:
                return label
    if leaf_lib.startswith("libc.so"):
        return "libc: malloc/free, memcmp, strtod, ... (caller not recorded: libc has no frame pointers)"
    return "other (%s)" % (leaf_lib or "unknown")


def parse_perf(stream):
    samples = []   # (pid, tid, time, frames)
    header, frames = None, []
    head_re = re.compile(r"^\s*(\d+)/(\d+)\s+([0-9.]+):?")
    for raw in stream:
        line = raw.rstrip("\n")
        if not line.strip():
            if header:
                samples.append(header + (frames or [("?", "(unknown)")],))
            header, frames = None, []
            continue
        if not line.startswith("\t"):
            m = head_re.match(line)
            header = (int(m.group(1)), int(m.group(2)), float(m.group(3))) if m else None
            frames = []
        else:
            parts = line.strip().split(None, 1)
            rest = parts[1] if len(parts) > 1 else ""
            dso_at = rest.rfind(" (")
            sym, dso = (rest[:dso_at], rest[dso_at + 1:]) if dso_at >= 0 else (rest, "(unknown)")
            frames.append((sym, dso))
    if header:
        samples.append(header + (frames or [("?", "(unknown)")],))
    return samples


def profile(freq, json_path):
    samples = parse_perf(sys.stdin)
    if not samples:
        print("(no perf samples)")
        return
    per = 1.0 / freq
    symbols = {sym for _, _, _, fr in samples for sym, _ in fr}
    names = demangle(symbols, simplified=False)   # full names say which type a specialisation or closure is for
    short = demangle({fr[0][0] for _, _, _, fr in samples}, simplified=True)
    stages = defaultdict(float)
    selfsym = defaultdict(float)
    lib = defaultdict(float)
    threads = defaultdict(lambda: {"first": None, "last": None, "lzma_first": None, "cpu": 0.0, "lzma": 0.0})
    t0 = min(t for _, _, t, _ in samples)
    t1 = max(t for _, _, t, _ in samples)
    for pid, tid, t, fr in samples:
        stage = stage_of(fr, names)
        stages[stage] += per
        sym, dso = fr[0]
        selfsym[(short.get(sym, sym), lib_of(dso))] += per
        lib[lib_of(dso)] += per
        th = threads[(pid == tid, tid)]
        th["first"] = t if th["first"] is None else min(th["first"], t)
        th["last"] = t if th["last"] is None else max(th["last"], t)
        th["cpu"] += per
        if "liblzma" in lib_of(dso):
            th["lzma"] += per
            th["lzma_first"] = t if th["lzma_first"] is None else min(th["lzma_first"], t)
    total = len(samples) * per
    with open(json_path, "w") as f:
        json.dump({"freq": freq, "samples": len(samples), "total": total, "span": t1 - t0,
                   "stages": stages, "libs": lib}, f, indent=1)
    print("### Profile of one convert (`perf record -F %d -g`, `--jobs` as measured)" % freq)
    print()
    print("%.1f CPU s from %d samples at %d Hz over %.1f s. Each sample is charged to the stage of the innermost frame "
          "that names one: a leaf in liblzma, zlib or simdjson is that library; a leaf in the Swift runtime, libc or "
          "the allocator goes to the TelemetryEngine function that called it (for example String appends under "
          "`JSONValue.write` are JSON serialisation)." % (total, len(samples), freq, t1 - t0))
    print()
    print("| stage | CPU s | share |")
    print("|---|---:|---:|")
    for name, sec in sorted(stages.items(), key=lambda kv: -kv[1]):
        if sec < 0.05:
            continue
        print("| %s | %.2f | %.0f%% |" % (name, sec, 100 * sec / total))
    print()
    print("By library (self time): %s." % "; ".join(
        "%s %.1f s" % (k or "?", v) for k, v in sorted(lib.items(), key=lambda kv: -kv[1]) if v >= 0.1))
    print()
    workers = sorted(((k, v) for k, v in threads.items() if not k[0] and v["cpu"] >= 0.5), key=lambda kv: kv[1]["first"])
    if workers:
        print("Worker threads (seconds from the first sample): %s." % "; ".join(
            "thread %d busy %.1f–%.1f s, %.1f CPU s, xz compression %s" % (
                i + 1, v["first"] - t0, v["last"] - t0, v["cpu"],
                ("from %.1f s on, the last %.0f%% of its busy time (%.1f CPU s in liblzma)" % (
                    v["lzma_first"] - t0, 100 * (v["last"] - v["lzma_first"]) / max(1e-9, v["last"] - v["first"]), v["lzma"]))
                if v["lzma_first"] is not None else "none")
            for i, (k, v) in enumerate(workers)))
        print()
    print("Top functions by self time:")
    print()
    print("| function | library | CPU s |")
    print("|---|---|---:|")
    for (name, libname), sec in sorted(selfsym.items(), key=lambda kv: -kv[1])[:15]:
        text = name if len(name) <= 110 else name[:107] + "..."
        print("| `%s` | %s | %.2f |" % (text.replace("|", "\\|").replace("`", "'"), libname, sec))


def main(argv):
    if len(argv) >= 3 and argv[1] == "table":
        run = argv[2]
        doc = argv[argv.index("--doc") + 1] if "--doc" in argv else None
        meta = read_meta(run)
        section = render(run, meta, summarise(run, read_results(run)))
        sys.stdout.write(section)
        if doc:
            replace_section(doc, section)
        return 0
    if len(argv) == 4 and argv[1] == "profile":
        profile(int(argv[2]), argv[3])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
