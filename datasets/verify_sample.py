#!/usr/bin/env python3
"""Check datasets/sample independently of the generator.

    python3 datasets/verify_sample.py datasets/sample            # re-read the .xz files, recompute EXPECTED.json
    python3 datasets/verify_sample.py datasets/sample --regen    # also regenerate into a temp dir and compare bytes

Reads every file under <dir>/storage the way an importer following the specs would (storage.md 1
and 3.1; import outcomes ok / bad_line:no_tab / bad_line:invalid_json / bad_line:invalid_utf8 /
bad_line:too_long as in shared/tools/verify_dataset.py), recomputes every number in
<dir>/EXPECTED.json and checks each good ping against datasets/histograms/Histograms.json with its
own implementation of the bucket algorithms (histograms.md 3). Shares no code with generate.py.
Exit status 1 if anything disagrees. Python 3 standard library only.
"""

import argparse
import filecmp
import json
import lzma
import math
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
NAME_RE = re.compile(r"^([^.]+)\.(\d{8})\.v2\.log\.[0-9a-f]{32}\.xz$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
REV_RE = re.compile(r"^(http[s]?://[^/]+)/(.+)/rev/([0-9a-f]+)/?$")
MAX_LINE = 1 << 30   # no line here comes near any sensible too_long limit

problems = []


def problem(msg):
    problems.append(msg)
    if len(problems) <= 40:
        print("PROBLEM:", msg)


# ------------------------------------------------------------------ definitions (own implementation)

def number(v):
    if isinstance(v, int):
        return v
    if not re.fullmatch(r"[0-9+\-*/() ]+", v):
        raise ValueError(v)
    return int(eval(v.replace("/", "//"), {"__builtins__": {}}))   # digits and operators only


def bounds_of(d):
    kind = d["kind"]
    if kind in ("boolean", "flag", "count"):
        lo, hi, n = 1, 2, 3
    elif kind == "enumerated":
        lo, hi, n = 1, number(d["n_values"]), number(d["n_values"]) + 1
    else:
        lo, hi, n = number(d.get("low", 1)), number(d["high"]), number(d["n_buckets"])
    if kind == "exponential":
        out, cur, lmax = [0, lo], lo, math.log(hi)
        for i in range(2, n):
            lc = math.log(cur)
            nxt = math.floor(math.exp(lc + (lmax - lc) / (n - i)) + 0.5)
            cur = nxt if nxt > cur else cur + 1
            out.append(cur)
        return out
    return [0] + [math.floor((lo * 1.0 * (n - 1 - i) + hi * 1.0 * (i - 1)) / (n - 2) + 0.5)
                  for i in range(1, n)]


def check_histogram(where, name, arr, d, b):
    n = len(b)
    if not isinstance(arr, list) or len(arr) != n + 5:
        return problem("%s %s: length %s, want %d" % (where, name, len(arr), n + 5))
    counts, stats = arr[:n], arr[n:]
    if any(not isinstance(c, int) or isinstance(c, bool) or c < 0 for c in counts):
        return problem("%s %s: bad bucket counts" % (where, name))
    s, lsum, lsq, sqlo, sqhi = stats
    kind = d["kind"]
    if kind == "exponential":
        if sqlo != -1 or sqhi != -1:
            problem("%s %s: exponential with sum_squares" % (where, name))
        if d.get("extended_statistics_ok"):
            if not (isinstance(lsum, float) and isinstance(lsq, float)):
                problem("%s %s: log stats missing" % (where, name))
        elif lsum != -1 or lsq != -1:
            problem("%s %s: log stats without extended_statistics_ok" % (where, name))
    else:
        if lsum != -1 or lsq != -1 or not isinstance(sqlo, int) or not isinstance(sqhi, int) \
                or not 0 <= sqlo < 2 ** 32 or sqhi < 0:
            problem("%s %s: statistics pattern %s" % (where, name, stats))
    if kind == "count":
        if counts[1:] != [0] * (n - 1) or s != counts[0]:
            problem("%s %s: count histogram %s" % (where, name, arr))
        return
    low_sum = sum(c * b[i] for i, c in enumerate(counts))
    if s < low_sum or (counts[-1] == 0 and s >= sum(c * b[i + 1] for i, c in enumerate(counts[:-1])) and s):
        problem("%s %s: sum %s outside bucket bounds" % (where, name, s))
    if kind != "exponential":
        sq = sqlo + (sqhi << 32)
        if sq < sum(c * b[i] * b[i] for i, c in enumerate(counts)):
            problem("%s %s: sum of squares too small" % (where, name))
    if kind in ("boolean", "flag") and counts[2] != 0:
        problem("%s %s: %s with a value >= 2" % (where, name, kind))
    if kind == "flag" and sum(counts) != 1:
        problem("%s %s: flag with %d samples" % (where, name, sum(counts)))


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default=os.path.join(HERE, "sample"))
    ap.add_argument("--histograms", default=os.path.join(HERE, "histograms", "Histograms.json"))
    ap.add_argument("--regen", action="store_true",
                    help="also run generate.py with the recorded seed into a temp dir and compare bytes")
    args = ap.parse_args()

    exp = json.load(open(os.path.join(args.dir, "EXPECTED.json")))
    hjson_bytes = open(args.histograms, "rb").read()
    defs = json.loads(hjson_bytes)
    bounds = {name: bounds_of(d) for name, d in defs.items()}
    # spec examples, and the generator's bucket-format file
    assert bounds_of({"kind": "exponential", "low": 1, "high": 3000, "n_buckets": 10}) == \
        [0, 1, 3, 8, 21, 57, 154, 414, 1114, 3000]
    assert bounds_of({"kind": "linear", "high": "1000", "n_buckets": 11})[:3] == [0, 1, 112]
    kinds = {k for k in (d["kind"] for d in defs.values())}
    if kinds != {"boolean", "flag", "count", "enumerated", "linear", "exponential"} or len(defs) < 10:
        problem("Histograms.json: kinds %s, %d definitions" % (sorted(kinds), len(defs)))
    bf_path = os.path.join(os.path.dirname(args.histograms), "bucket-format.json")
    if os.path.exists(bf_path):
        bf = json.load(open(bf_path))["histograms"]
        for name in defs:
            if bf.get(name, {}).get("buckets") != bounds[name] or bf[name]["bucket_count"] != len(bounds[name]):
                problem("bucket-format.json %s differs from computed bounds" % name)
    if exp["histogram_totals"]["bounds"] != bounds[exp["histogram_totals"]["name"]]:
        problem("EXPECTED bounds differ from computed bounds")

    storage = os.path.join(args.dir, exp["storage_dir"])
    got = {"files": 0, "files_imported": 0, "files_with_path_error": 0, "lines_total": 0,
           "lines_in_imported_files": 0}
    outcomes = Counter()
    bad_list, path_errors = [], []
    rows = {}
    by = {k: Counter() for k in ("reason", "appName", "appUpdateChannel", "appVersion", "OS",
                                 "submission_date")}
    presence = Counter()
    hname = exp["histogram_totals"]["name"]
    hn = len(bounds[hname])
    tot = {"pings": 0, "sum": 0, "bucket_sums": [0] * hn}
    by_ch = {}
    total_bytes = 0
    for root, dirs, files in os.walk(storage):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(root, f)
            rel = os.path.relpath(path, storage).replace(os.sep, "/")
            raw = open(path, "rb").read()
            total_bytes += len(raw)
            got["files"] += 1
            if raw[:6] != b"\xfd7zXZ\x00" or raw[6:8] != b"\x00\x04":
                problem("%s: not an xz stream with CRC64 check" % rel)
            data = lzma.decompress(raw, format=lzma.FORMAT_XZ)
            if not data.endswith(b"\n"):
                problem("%s: last line not LF-terminated" % rel)
            lines = data.split(b"\n")[:-1]
            got["lines_total"] += len(lines)
            m = NAME_RE.match(f)
            dims = rel.split("/")[:-1] + f.split(".")[:2]
            if len(dims) != 6 or not m:
                got["files_with_path_error"] += 1
                path_errors.append({"file": rel, "lines": len(lines),
                                    "document_ids": [l.split(b"\t")[0].decode() for l in lines]})
                continue
            got["files_imported"] += 1
            got["lines_in_imported_files"] += len(lines)
            for lineno, line in enumerate(lines, 1):
                where = "%s:%d" % (rel, lineno)
                if line.endswith(b"\r"):
                    line = line[:-1]
                outcome, key = "ok", None
                if len(line) > MAX_LINE:
                    outcome = "too_long"
                else:
                    try:
                        text = line.decode("utf-8")
                    except UnicodeDecodeError:
                        outcome = "invalid_utf8"
                        key = line.split(b"\t", 1)[0].decode("ascii", "replace")
                if outcome == "ok":
                    if "\t" not in text:
                        outcome, key = "no_tab", text.split(" ", 1)[0]
                    else:
                        key, js = text.split("\t", 1)
                        try:
                            ping = json.loads(js, parse_constant=lambda c: 1 / 0)
                        except (ValueError, ZeroDivisionError):
                            outcome = "invalid_json"
                if outcome != "ok":
                    outcomes["bad_line:" + outcome] += 1
                    bad_list.append({"file": rel, "line": lineno, "document_id": key, "reason": outcome})
                    continue
                outcomes["ok"] += 1
                if not UUID_RE.match(key):
                    problem("%s: document id %r" % (where, key))
                if json.dumps(ping, separators=(",", ":")) != js:
                    problem("%s: JSON not minified" % where)
                rows.setdefault(key, []).append({"file": rel, "line": lineno})
                info = ping.get("info", {})
                if ping.get("ver") != 2:
                    problem("%s: ver %r" % (where, ping.get("ver")))
                want = [re.sub(r"[^a-zA-Z0-9_.]", "_", str(info.get(k))) for k in
                        ("reason", "appName", "appUpdateChannel", "appVersion", "appBuildID")]
                if want != dims[:5] or not info.get("appBuildID", "9")[:8] <= dims[5]:
                    problem("%s: info %s does not match path %s" % (where, want, dims))
                for k in ("OS", "version", "arch", "locale", "memsize", "cpucount", "revision"):
                    if k not in info:
                        problem("%s: info.%s missing" % (where, k))
                if not isinstance(info.get("memsize"), int) or not isinstance(info.get("cpucount"), int):
                    problem("%s: memsize/cpucount not integers" % where)
                rev = info.get("revision", "")
                rm = REV_RE.match(rev)
                if rev != exp["revisions"].get(info.get("appUpdateChannel")) or not rm:
                    problem("%s: revision %s" % (where, rev))
                else:
                    cached = os.path.join(args.dir, "histogram-cache", rm.group(2), rm.group(3),
                                          "Histograms.json")
                    if not os.path.exists(cached) or open(cached, "rb").read() != hjson_bytes:
                        problem("%s: no histogram-cache copy for %s" % (where, rev))
                sm = ping.get("simpleMeasurements", {})
                if not isinstance(sm.get("uptime"), int) or not isinstance(sm.get("firstPaint"), int):
                    problem("%s: simpleMeasurements" % where)
                for name, arr in ping.get("histograms", {}).items():
                    if name not in defs:
                        problem("%s: unknown histogram %s" % (where, name))
                        continue
                    check_histogram(where, name, arr, defs[name], bounds[name])
                presence.update(ping.get("histograms", {}).keys())
                for k, v in zip(("reason", "appName", "appUpdateChannel", "appVersion"), dims):
                    by[k][v] += 1
                by["submission_date"][dims[5]] += 1
                by["OS"][info.get("OS")] += 1
                arr = ping.get("histograms", {}).get(hname)
                if arr is not None:
                    ch = by_ch.setdefault(dims[2], {"pings": 0, "sum": 0, "bucket_sums": [0] * hn})
                    for acc in (tot, ch):
                        acc["pings"] += 1
                        acc["sum"] += arr[hn]
                        acc["bucket_sums"] = [a + c for a, c in zip(acc["bucket_sums"], arr[:hn])]

    # ---- compare with EXPECTED.json
    def same(label, mine, theirs):
        if mine != theirs:
            problem("%s: recomputed %s, EXPECTED.json says %s" % (label, json.dumps(mine)[:300],
                                                                 json.dumps(theirs)[:300]))
    for k, v in got.items():
        same(k, v, exp[k])
    same("good_pings", outcomes["ok"], exp["good_pings"])
    same("import_outcomes", dict(outcomes), exp["import_outcomes"])
    bad_counts = {r: outcomes.get("bad_line:" + r, 0) for r in ("no_tab", "invalid_json", "invalid_utf8", "too_long")}
    same("bad_lines", bad_counts, exp["bad_lines"])
    same("bad_lines_total", sum(bad_counts.values()), exp["bad_lines_total"])
    same("bad_line_list", sorted(json.dumps(b, sort_keys=True) for b in bad_list),
         sorted(json.dumps({k: b[k] for k in ("file", "line", "document_id", "reason")}, sort_keys=True)
                for b in exp["bad_line_list"]))
    same("path_error_files", path_errors,
         [{k: e[k] for k in ("file", "lines", "document_ids")} for e in exp["path_error_files"]])
    same("distinct_document_ids", len(rows), exp["distinct_document_ids"])
    dups = {k: v for k, v in rows.items() if len(v) > 1}
    same("duplicates.document_ids", len(dups), exp["duplicates"]["document_ids"])
    same("duplicates.extra_rows", sum(len(v) - 1 for v in dups.values()), exp["duplicates"]["extra_rows"])
    same("duplicates.list", dups, {d["document_id"]: d["rows"] for d in exp["duplicates"]["list"]})
    for k, c in by.items():
        same("by_" + k, dict(c), exp["by_" + k])
    same("histogram_presence", dict(presence), exp["histogram_presence"])
    ht = exp["histogram_totals"]
    same("histogram_totals", tot, {k: ht[k] for k in ("pings", "sum", "bucket_sums")})
    same("histogram_totals.by_channel", by_ch, ht["by_channel"])
    if total_bytes >= 1 << 20:
        problem("storage is %d bytes, not under 1 MB" % total_bytes)

    if args.regen:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, os.path.join(HERE, "generate.py"), "--seed", str(exp["seed"]),
                            "--out", tmp, "--histograms", args.histograms,
                            "--bucket-format", os.path.join(tmp, "bucket-format.json")],
                           check=True, stdout=subprocess.DEVNULL)
            cmp = filecmp.dircmp(tmp, args.dir)

            def diffs(c, prefix=""):
                out = [prefix + x for x in c.left_only + c.right_only + c.diff_files + c.funny_files]
                for sub, sc in c.subdirs.items():
                    out += diffs(sc, prefix + sub + "/")
                return out
            d = [x for x in diffs(cmp) if x != "bucket-format.json"]
            if d:
                problem("regenerated output differs: %s" % d[:10])
            if os.path.exists(bf_path) and open(bf_path, "rb").read() != \
                    open(os.path.join(tmp, "bucket-format.json"), "rb").read():
                problem("regenerated bucket-format.json differs")
            print("regenerated with seed %d: %s" % (exp["seed"], "identical" if not d else "DIFFERENT"))

    print("%d files (%d path error), %d lines, outcomes %s, %d good pings, %d distinct ids, "
          "%d duplicate ids, storage %d bytes" % (got["files"], got["files_with_path_error"],
                                                   got["lines_total"], dict(sorted(outcomes.items())),
                                                   outcomes["ok"], len(rows), len(dups), total_bytes))
    print("by OS %s; by channel %s" % (dict(sorted(by["OS"].items())),
                                       dict(sorted(by["appUpdateChannel"].items()))))
    print("problems: %d" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
