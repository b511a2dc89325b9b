#!/usr/bin/env python3
"""Generate TelemetryEngine's small committed sample dataset.

Regenerate the committed sample (from the repository root; writes
datasets/sample/ and datasets/histograms/bucket-format.json):

    python3 datasets/generate.py --seed 20131015 --out datasets/sample

(those are the defaults, so plain `python3 datasets/generate.py` does the same)
and then check it independently:

    python3 datasets/verify_sample.py datasets/sample

Python 3 standard library only. The output depends only on --seed, --pings and
datasets/histograms/Histograms.json: running it twice gives byte-identical files
(with the same liblzma; xz output could differ between liblzma versions, the
decompressed lines do not).

What it writes (see datasets/README.md):

  <out>/storage/<reason>/<appName>/<channel>/<appVersion>/<appBuildID>.<YYYYMMDD>.v2.log.<32 hex>.xz
        storage format v2 (docs: spec storage.md 1 and 3): lines "<document id>\\t<minified JSON>\\n",
        xz container, CRC64 check, preset 0; the 32-hex id is derived from the seed and the path
  <out>/storage/saved_session/Firefox/release/<appBuildID>.20131015.v2.log.<32 hex>.xz
        the one file whose path has a directory too few (no appVersion level): a path error on import
  <out>/histogram-cache/<repo>/<revision>/Histograms.json
        a copy of datasets/histograms/Histograms.json for each revision URL the pings name
  <out>/EXPECTED.json
        the exact numbers an importer must find (computed here from what was written)
  datasets/histograms/bucket-format.json
        bucket lower bounds of every definition, in the histogram server's bucket format

Bad lines are mixed in on purpose (listed one by one in EXPECTED.json): 2 with a space instead of the
tab (no_tab), 2 with truncated JSON and 1 with trailing garbage after the object (invalid_json), 1 with
the bytes FF FE inside a JSON string (invalid_utf8).
"""

import argparse
import ast
import bisect
import hashlib
import json
import lzma
import math
import os
import random
import re
import shutil
import sys
import uuid
from collections import Counter, OrderedDict

DEFAULT_SEED = 20131015
DEFAULT_PINGS = 360
SUBMISSION_DATES = ["20131015", "20131016"]
APP_NAME = "Firefox"
APP_ID = "{ec8030f7-c20a-464f-9b0e-13a3a9e97384}"
TOTALS_HISTOGRAM = "SAMPLE_GC_MS"

# (reason, weight)
REASONS = [("saved-session", 55), ("idle-daily", 30), ("main", 15)]

# channel -> weight, hg repository, [(appVersion, appBuildID, weight)]
CHANNELS = OrderedDict([
    ("release", (40, "releases/mozilla-release",
                 [("24.0", "20130910160258", 70), ("23.0.1", "20130814063812", 30)])),
    ("beta", (25, "releases/mozilla-beta",
              [("25.0", "20131007131402", 75), ("24.0", "20130911001025", 25)])),
    ("aurora", (15, "releases/mozilla-aurora",
                [("26.0a2", "20131014004002", 80), ("25.0a2", "20130916004003", 20)])),
    ("nightly", (20, "mozilla-central",
                 [("27.0a1", "20131015030204", 50), ("27.0a1", "20131013030202", 30),
                  ("26.0a1", "20130916030202", 20)])),
])

# OS -> weight, [(version, weight)], [(arch, weight)]
OSES = OrderedDict([
    ("WINNT", (72, [("6.1", 60), ("5.1", 15), ("6.2", 15), ("6.3", 10)],
               [("x86", 75), ("x86-64", 25)])),
    ("Darwin", (16, [("12.5.0", 45), ("13.0.0", 40), ("11.4.2", 15)], [("x86-64", 100)])),
    ("Linux", (12, [("3.11.0-12-generic", 40), ("3.2.0-4-amd64", 35),
                    ("3.10.10-200.fc19.x86_64", 25)], [("x86-64", 80), ("x86", 20)])),
])

LOCALES = [("en-US", 50), ("de", 12), ("fr", 8), ("es-ES", 6), ("ru", 6), ("ja", 5),
           ("pl", 4), ("pt-BR", 4), ("en-GB", 3), ("it", 2)]
MEMSIZES = [(1023, 5), (2047, 20), (3071, 15), (4095, 25), (6143, 10), (8191, 17), (16383, 8)]
CPUCOUNTS = [(1, 8), (2, 45), (4, 37), (8, 10)]

# Bad lines mixed into the storage files: (fault, expected import reason)
BAD_LINES = [
    ("space_instead_of_tab", "no_tab"),
    ("space_instead_of_tab", "no_tab"),
    ("truncated_json", "invalid_json"),
    ("truncated_json", "invalid_json"),
    ("invalid_utf8_in_string", "invalid_utf8"),
    ("trailing_garbage", "invalid_json"),
]
BAD_REASONS = ["no_tab", "invalid_json", "invalid_utf8", "too_long"]
DROP_PROBABILITY = 0.06       # each histogram is left out of a ping with this probability


# ------------------------------------------------------------------ definitions and bounds

def eval_int(value, what):
    """A Histograms.json number: an integer, or a string holding an integer arithmetic
    expression (digits, + - * /, parentheses), as histograms.md 1.1 allows."""
    if isinstance(value, bool):
        raise ValueError("%s: boolean is not a number" % what)
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError("%s: not a number: %r" % (what, value))

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = ev(node.operand)
            return v if isinstance(node.op, ast.UAdd) else -v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, (ast.Div, ast.FloorDiv)):
                return a // b
        raise ValueError("%s: cannot evaluate %r" % (what, value))
    return ev(ast.parse(value, mode="eval"))


def linear_bounds(low, high, n):
    """histograms.md 3.1, in doubles."""
    b = [0]
    for i in range(1, n):
        x = (float(low) * (n - 1 - i) + float(high) * (i - 1)) / (n - 2)
        b.append(int(math.floor(x + 0.5)))
    return b


def exponential_bounds(low, high, n):
    """histograms.md 3.2, in doubles."""
    b = [0, low]
    current = low
    log_max = math.log(high)
    for i in range(2, n):
        log_current = math.log(current)
        log_ratio = (log_max - log_current) / (n - i)
        nxt = int(math.floor(math.exp(log_current + log_ratio) + 0.5))
        current = nxt if nxt > current else current + 1
        b.append(current)
    return b


HISTOGRAM_TYPE = {"exponential": 0, "linear": 1, "enumerated": 1, "boolean": 2, "flag": 3, "count": 4}


def load_definitions(path):
    with open(path, encoding="utf-8") as f:
        raw = json.load(f, object_pairs_hook=OrderedDict)
    defs = OrderedDict()
    for name, d in raw.items():
        kind = d["kind"]
        if kind in ("boolean", "flag", "count"):
            low, high, n = 1, 2, 3
        elif kind == "enumerated":
            nv = eval_int(d["n_values"], name + ".n_values")
            low, high, n = 1, nv, nv + 1
        elif kind in ("linear", "exponential"):
            low = eval_int(d.get("low", 1), name + ".low")
            high = eval_int(d["high"], name + ".high")
            n = eval_int(d["n_buckets"], name + ".n_buckets")
        else:
            raise ValueError("%s: unknown kind %r" % (name, kind))
        bounds = exponential_bounds(low, high, n) if kind == "exponential" \
            else linear_bounds(low, high, n)
        assert len(bounds) == n
        defs[name] = {"kind": kind, "low": low, "high": high, "n": n, "bounds": bounds,
                      "extended": bool(d.get("extended_statistics_ok", False))}
    return defs


def self_test():
    """The worked examples of histograms.md 3."""
    assert linear_bounds(1, 2, 3) == [0, 1, 2]
    assert linear_bounds(1, 11, 12) == list(range(12))
    assert linear_bounds(1, 1000, 11) == [0, 1, 112, 223, 334, 445, 556, 667, 778, 889, 1000]
    assert linear_bounds(1, 1000, 50)[:8] == [0, 1, 22, 43, 63, 84, 105, 126]
    assert exponential_bounds(1, 3000, 10) == [0, 1, 3, 8, 21, 57, 154, 414, 1114, 3000]
    assert exponential_bounds(1, 10, 10) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
    dns = exponential_bounds(1, 60000, 50)
    assert dns[:22] == [0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 14, 17, 21, 26, 32, 40, 50, 62, 77, 95,
                        118, 146] and dns[-1] == 60000 and dns.index(77) == 18
    assert eval_int("16 * 1024 * 1024", "t") == 16777216 and eval_int("80 + 1", "t") == 81


def bucket_format(defs):
    """histograms.md 5: the histogram server's bucket format."""
    out = OrderedDict()
    for name, d in defs.items():
        out[name] = OrderedDict([("kind", str(HISTOGRAM_TYPE[d["kind"]])),
                                 ("min", d["low"] if d["low"] != 0 else 1),
                                 ("buckets", d["bounds"]), ("max", d["bounds"][-1]),
                                 ("bucket_count", d["n"])])
    return {"histograms": out}


# ------------------------------------------------------------------ helpers

def pick(rng, table):
    return rng.choices([t[0] for t in table], weights=[t[-1] for t in table])[0]


def new_id(rng, used):
    while True:
        u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if u not in used:
            used.add(u)
            return u


def safe(value):
    """storage.md 2.2, plus '/' -> '_' (TelemetryEngine's documented deviation)."""
    return re.sub(r"[^a-zA-Z0-9_.]", "_", value)


def revision_url(channel):
    rev = hashlib.sha1(("TelemetryEngine sample revision " + channel).encode()).hexdigest()[:12]
    return "http://hg.mozilla.org/%s/rev/%s" % (CHANNELS[channel][1], rev)


def minified(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)


# ------------------------------------------------------------------ histogram contents

def lognorm_int(rng, median, sigma, cap):
    return min(cap, int(rng.lognormvariate(math.log(median), sigma)))


GC_REASON_WEIGHTS = [2, 1, 1, 3, 1, 0, 0, 6, 1, 0, 9, 2, 1, 14, 4, 0, 18, 1, 22, 5]
IMAGE_TYPE_WEIGHTS = [35, 10, 45, 1, 5, 2, 1, 1]


def draw_samples(name, rng, s):
    """Sample values for one histogram of one session s. For a count histogram the list
    holds one 1 per increment."""
    a = s["activity"]
    if name == "SAMPLE_GC_MS":
        return [lognorm_int(rng, 25, 1.0, 30000) for _ in range(s["gcs"])]
    if name == "SAMPLE_GC_MAX_PAUSE_MS":
        return [lognorm_int(rng, 12, 0.9, 3000) for _ in range(s["gcs"])]
    if name == "SAMPLE_GC_REASON":
        return rng.choices(range(20), weights=GC_REASON_WEIGHTS, k=s["gcs"])
    if name == "SAMPLE_PAGE_LOAD_MS":
        return [lognorm_int(rng, 1800, 0.8, 90000) for _ in range(max(1, int(a * rng.uniform(3, 40))))]
    if name == "SAMPLE_MEMORY_RESIDENT_KB":
        median = 120000 + 60 * s["memsize"]
        return [lognorm_int(rng, median, 0.3, 40000000) for _ in range(max(1, min(s["uptime"], 240)))]
    if name == "SAMPLE_TIMERS_FIRED_PER_TIMEOUT":
        return [1 if rng.random() < 0.9 else 1 + lognorm_int(rng, 3, 1.2, 9000)
                for _ in range(max(1, int(a * rng.uniform(150, 1200))))]
    if name == "SAMPLE_NAME_LOOKUP_MS":
        return [0 if rng.random() < 0.2 else lognorm_int(rng, 20, 1.3, 180000)
                for _ in range(max(1, int(a * rng.uniform(10, 120))))]
    if name == "SAMPLE_TABS_OPEN":
        return [max(1, lognorm_int(rng, s["tabs"], 0.3, 400)) for _ in range(max(1, int(a * rng.uniform(2, 30))))]
    if name == "SAMPLE_CHECKERBOARD_SEVERITY":
        return [lognorm_int(rng, 60, 1.1, 5000) for _ in range(rng.randint(1, 15))]
    if name == "SAMPLE_SESSION_RESTORED_OK":
        return [1 if rng.random() < 0.97 else 0]
    if name == "SAMPLE_SHUTDOWN_OK":
        return [1 if rng.random() < 0.9 else 0]
    if name == "SAMPLE_SAFE_MODE_USED":
        return [1 if rng.random() < 0.03 else 0]
    if name == "SAMPLE_PLUGIN_CRASH_COUNT":
        return [1] * pick(rng, [(0, 80), (1, 14), (2, 4), (3, 2)])
    if name == "SAMPLE_IMAGE_DECODE_TYPE":
        return rng.choices(range(8), weights=IMAGE_TYPE_WEIGHTS, k=max(1, int(a * rng.uniform(20, 400))))
    raise KeyError("no sample model for histogram %s" % name)


def compact(d, values):
    """Storage form: [b0..b(n-1), sum, log_sum, log_sum_squares, sum_squares_lo, sum_squares_hi]."""
    counts = [0] * d["n"]
    if d["kind"] == "count":
        counts[0] = len(values)            # Firefox's count histogram: all increments in bucket 0
    else:
        for v in values:
            counts[bisect.bisect_right(d["bounds"], v) - 1] += 1
    total = sum(values)
    if d["kind"] == "exponential":
        if d["extended"]:
            log_sum = 0.0
            log_sum_squares = 0.0
            for v in values:
                lv = math.log(1 + v)
                log_sum += lv
                log_sum_squares += lv * lv
            return counts + [total, log_sum, log_sum_squares, -1, -1]
        return counts + [total, -1, -1, -1, -1]
    squares = sum(v * v for v in values)
    return counts + [total, -1, -1, squares & 0xFFFFFFFF, squares >> 32]


# ------------------------------------------------------------------ pings

def new_session(rng, reason, channel, version, build):
    os_name = pick(rng, [(k, v[0]) for k, v in OSES.items()])
    os_versions, arches = OSES[os_name][1], OSES[os_name][2]
    memsize = pick(rng, MEMSIZES)
    activity = rng.lognormvariate(0, 0.6)
    uptime = max(1, int(rng.lognormvariate(math.log(90), 1.0)))
    main_ms = rng.randint(40, 400)
    first_paint = main_ms + rng.randint(300, 4000)
    info = OrderedDict([
        ("reason", reason), ("appID", APP_ID), ("appName", APP_NAME), ("appVersion", version),
        ("appUpdateChannel", channel), ("appBuildID", build), ("platformBuildID", build),
        ("revision", revision_url(channel)), ("OS", os_name), ("version", pick(rng, os_versions)),
        ("arch", pick(rng, arches)), ("locale", pick(rng, LOCALES)), ("memsize", memsize),
        ("cpucount", pick(rng, CPUCOUNTS)),
    ])
    sm = OrderedDict([
        ("uptime", uptime), ("main", main_ms), ("firstPaint", first_paint),
        ("sessionRestored", first_paint + rng.randint(50, 3000)),
        ("startupInterrupted", 1 if rng.random() < 0.03 else 0), ("debuggerAttached", 0),
        ("maximalNumberOfConcurrentThreads", rng.randint(18, 60)),
    ])
    return {"info": info, "sm": sm, "activity": activity, "uptime": uptime, "memsize": memsize,
            "gcs": max(1, int(activity * rng.uniform(8, 60))),
            "tabs": max(1, int(rng.lognormvariate(math.log(6), 0.7))), "samples": OrderedDict()}


def fill_histograms(rng, defs, s):
    for name in defs:
        if rng.random() < DROP_PROBABILITY:
            continue
        s["samples"][name] = draw_samples(name, rng, s)


def ping_of(defs, s):
    sm = OrderedDict(s["sm"])
    if s["info"]["reason"] == "saved-session":
        sm["shutdownDuration"] = s.get("shutdown", 0)
    hist = OrderedDict((name, compact(defs[name], vals)) for name, vals in s["samples"].items())
    return OrderedDict([("ver", 2), ("info", s["info"]), ("simpleMeasurements", sm),
                        ("histograms", hist)])


def continue_session(rng, defs, s):
    """The saved-session ping that ends the session an idle-daily ping came from: same
    profile and document id, reason saved-session, histograms accumulated further."""
    t = dict(s)
    t["info"] = OrderedDict(s["info"])
    t["info"]["reason"] = "saved-session"
    extra = rng.randint(10, 240)
    t["uptime"] = s["uptime"] + extra
    t["sm"] = OrderedDict(s["sm"])
    t["sm"]["uptime"] = t["uptime"]
    t["activity"] = s["activity"] * extra / 90.0
    t["gcs"] = max(1, int(t["activity"] * rng.uniform(8, 60)))
    t["samples"] = OrderedDict()
    for name, vals in s["samples"].items():
        if defs[name]["kind"] in ("flag", "boolean"):
            t["samples"][name] = list(vals)
        else:
            t["samples"][name] = vals + draw_samples(name, rng, t)
    return t


# ------------------------------------------------------------------ main

def generate(seed, n_pings, defs):
    rng = random.Random(seed)
    used = set()
    sessions = []                   # one per distinct good document
    for _ in range(n_pings):
        channel = pick(rng, [(k, v[0]) for k, v in CHANNELS.items()])
        version, build = pick(rng, [((v, b), w) for v, b, w in CHANNELS[channel][2]])
        reason = pick(rng, REASONS)
        date = SUBMISSION_DATES[rng.randrange(2)]
        s = new_session(rng, reason, channel, version, build)
        s["date"] = date
        s["doc_id"] = new_id(rng, used)
        if reason == "saved-session":
            s["shutdown"] = rng.randint(100, 2500)
        fill_histograms(rng, defs, s)
        sessions.append(s)

    # rows: (partition, doc_id, line bytes, meta)
    rows = [(part_of(s), s["doc_id"], line_of(s["doc_id"], ping_of(defs, s)), {"session": s})
            for s in sessions]

    # three duplicate document ids
    duplicates = []
    idle15 = [s for s in sessions if s["info"]["reason"] == "idle-daily" and s["date"] == "20131015"]
    idle = [s for s in sessions if s["info"]["reason"] == "idle-daily" and s is not idle15[0]]
    saved = [s for s in sessions if s["info"]["reason"] == "saved-session"]
    for kind, first, date in (("idle_then_saved", idle15[0], "20131016"),
                              ("idle_then_saved", rng.choice(idle), None),
                              ("resubmission", rng.choice(saved), None)):
        if kind == "resubmission":
            second = first
        else:
            second = continue_session(rng, defs, first)
            second["shutdown"] = rng.randint(100, 2500)
        second = dict(second)
        second["date"] = date or first["date"]
        rows.append((part_of(second), first["doc_id"], line_of(first["doc_id"], ping_of(defs, second)),
                     {"session": second, "duplicate": kind}))
        duplicates.append({"document_id": first["doc_id"], "kind": kind})

    # group into files, keeping row order (duplicates come after the originals)
    files = OrderedDict()
    for part, doc_id, line, meta in rows:
        files.setdefault(part, []).append((doc_id, line, meta))

    # bad lines, each in a different file with at least 3 lines, looking like its neighbours
    candidates = sorted(p for p, lines in files.items() if len(lines) >= 3)
    chosen = rng.sample(candidates, len(BAD_LINES))
    for (fault, reason), part in zip(BAD_LINES, chosen):
        doc_id = new_id(rng, used)
        r, _, channel, version, build, date = part
        s = new_session(rng, r_unsafe(r), channel, version, build)
        fill_histograms(rng, defs, s)
        line = bad_line(rng, fault, doc_id, ping_of(defs, s))
        pos = rng.randint(1, len(files[part]) - 1)
        files[part].insert(pos, (doc_id, line, {"bad": reason, "fault": fault}))

    # the stray file: a directory too few (no appVersion level), 2 good-looking pings
    stray = []
    for _ in range(2):
        s = new_session(rng, "saved-session", "release", "24.0", "20130910160258")
        s["shutdown"] = rng.randint(100, 2500)
        fill_histograms(rng, defs, s)
        doc_id = new_id(rng, used)
        stray.append((doc_id, line_of(doc_id, ping_of(defs, s)), {"stray": True}))
    return files, stray, duplicates


def r_unsafe(reason_dir):
    return {"saved_session": "saved-session", "idle_daily": "idle-daily"}.get(reason_dir, reason_dir)


def part_of(s):
    i = s["info"]
    return (safe(i["reason"]), safe(i["appName"]), safe(i["appUpdateChannel"]),
            safe(i["appVersion"]), safe(i["appBuildID"]), s["date"])


def line_of(doc_id, ping):
    return (doc_id + "\t" + minified(ping) + "\n").encode("ascii")


def bad_line(rng, fault, doc_id, ping):
    text = minified(ping)
    if fault == "space_instead_of_tab":
        out = (doc_id + " " + text).encode("ascii")
    elif fault == "truncated_json":
        out = (doc_id + "\t" + text[:rng.randint(len(text) // 3, len(text) - 2)]).encode("ascii")
    elif fault == "trailing_garbage":
        out = (doc_id + "\t" + text + "}").encode("ascii")
    elif fault == "invalid_utf8_in_string":
        loc = '"locale":"%s"' % ping["info"]["locale"]
        assert text.count(loc) == 1
        out = (doc_id + "\t").encode("ascii") + text.encode("ascii").replace(
            loc.encode("ascii"), b'"locale":"en-\xff\xfeUS"')
    else:
        raise ValueError(fault)
    return out + b"\n"


def storage_name(part, seed, fewer_dirs=False):
    reason, app, channel, version, build, date = part
    dirs = [reason, app, channel] if fewer_dirs else [reason, app, channel, version]
    base = "/".join(dirs + ["%s.%s.v2.log" % (build, date)])
    file_id = hashlib.sha256(("%d:%s" % (seed, base)).encode()).hexdigest()[:32]
    return base + "." + file_id + ".xz"


def write_xz(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=0))


def hist_totals(defs, name, good):
    """good: list of (channel, ping) for every good line."""
    n = defs[name]["n"]

    def empty():
        return {"pings": 0, "bucket_sums": [0] * n, "sum": 0}
    total, by_channel = empty(), OrderedDict((c, empty()) for c in sorted(CHANNELS))
    for channel, ping in good:
        arr = ping["histograms"].get(name)
        if arr is None:
            continue
        for acc in (total, by_channel[channel]):
            acc["pings"] += 1
            acc["sum"] += arr[n]
            for i in range(n):
                acc["bucket_sums"][i] += arr[i]
    return total, by_channel


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default %(default)s")
    ap.add_argument("--pings", type=int, default=DEFAULT_PINGS,
                    help="distinct good documents (default %(default)s)")
    ap.add_argument("--out", default=os.path.join(here, "sample"),
                    help="output directory (default datasets/sample); its storage/ and "
                         "histogram-cache/ are replaced")
    ap.add_argument("--histograms", default=os.path.join(here, "histograms", "Histograms.json"))
    ap.add_argument("--bucket-format", default=os.path.join(here, "histograms", "bucket-format.json"),
                    help="where to write the bucket bounds ('' to skip)")
    args = ap.parse_args(argv)

    self_test()
    defs = load_definitions(args.histograms)
    files, stray, duplicates = generate(args.seed, args.pings, defs)

    storage = os.path.join(args.out, "storage")
    cache = os.path.join(args.out, "histogram-cache")
    for d in (storage, cache):
        if os.path.isdir(d):
            shutil.rmtree(d)
    os.makedirs(storage)

    expected_files = []
    good = []                        # (channel, ping) per good line
    by = {k: Counter() for k in ("reason", "appName", "appUpdateChannel", "appVersion", "OS",
                                 "submission_date")}
    outcomes = Counter()
    bad_list = []
    where = {}                       # doc id -> list of (file, line)
    lines_in_imported = 0
    presence = Counter()
    for part in sorted(files):
        name = storage_name(part, args.seed)
        lines = files[part]
        data = b"".join(line for _, line, _ in lines)
        write_xz(os.path.join(storage, name), data)
        expected_files.append(name)
        for lineno, (doc_id, line, meta) in enumerate(lines, 1):
            lines_in_imported += 1
            if "bad" in meta:
                outcomes["bad_line:" + meta["bad"]] += 1
                bad_list.append(OrderedDict([("file", name), ("line", lineno), ("document_id", doc_id),
                                             ("reason", meta["bad"]), ("fault", meta["fault"])]))
                continue
            outcomes["ok"] += 1
            ping = json.loads(line.decode("ascii").split("\t", 1)[1])
            info = ping["info"]
            dims = {"reason": part[0], "appName": part[1], "appUpdateChannel": part[2],
                    "appVersion": part[3], "OS": info["OS"], "submission_date": part[5]}
            for k, v in dims.items():
                by[k][v] += 1
            good.append((info["appUpdateChannel"], ping))
            presence.update(ping["histograms"].keys())
            where.setdefault(doc_id, []).append(OrderedDict([("file", name), ("line", lineno)]))

    stray_part = ("saved_session", "Firefox", "release", "24.0", "20130910160258", "20131015")
    stray_name = storage_name(stray_part, args.seed, fewer_dirs=True)
    write_xz(os.path.join(storage, stray_name), b"".join(line for _, line, _ in stray))

    revisions = OrderedDict((c, revision_url(c)) for c in CHANNELS)
    for c, url in revisions.items():
        m = re.match(r"^(http[s]?://[^/]+)/(.+)/rev/([0-9a-f]+)/?$", url)
        dst = os.path.join(cache, m.group(2), m.group(3), "Histograms.json")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(args.histograms, dst)

    if args.bucket_format:
        with open(args.bucket_format, "w", encoding="ascii") as f:
            f.write(minified(bucket_format(defs)) + "\n")

    # coverage the sample promises
    assert set(by["reason"]) == {"saved_session", "idle_daily", "main"}, by["reason"]
    assert set(by["appUpdateChannel"]) == set(CHANNELS), by["appUpdateChannel"]
    assert set(by["OS"]) == set(OSES), by["OS"]
    assert set(by["submission_date"]) == set(SUBMISSION_DATES), by["submission_date"]
    dup_ids = {d for d, w in where.items() if len(w) > 1}
    assert dup_ids == {d["document_id"] for d in duplicates}, dup_ids

    for d in duplicates:
        d["rows"] = where[d["document_id"]]
    bad_counts = OrderedDict((r, outcomes.get("bad_line:" + r, 0)) for r in BAD_REASONS)
    total, by_channel = hist_totals(defs, TOTALS_HISTOGRAM, good)

    def sorted_counts(c):
        return OrderedDict(sorted(c.items()))
    exp = OrderedDict([
        ("description", "Exact numbers for datasets/sample/storage, written by datasets/generate.py "
                        "and checked by datasets/verify_sample.py. Counts 'by_*' are over good lines "
                        "(import outcome ok) in files whose path fits the 6-dimension layout; a "
                        "duplicated document id counts once per line. Dimension values as in paths."),
        ("command", "python3 datasets/generate.py --seed %d --out datasets/sample" % args.seed),
        ("seed", args.seed),
        ("storage_dir", "storage"),
        ("histograms_json", "datasets/histograms/Histograms.json"),
        ("files", len(expected_files) + 1),
        ("files_imported", len(expected_files)),
        ("files_with_path_error", 1),
        ("path_error_files", [OrderedDict([
            ("file", stray_name), ("lines", len(stray)),
            ("document_ids", [d for d, _, _ in stray]),
            ("why", "a directory too few: reason/appName/channel/<build>.<date>... has 5 dimensions, "
                    "the schema has 6 (no appVersion directory)")])]),
        ("lines_total", lines_in_imported + len(stray)),
        ("lines_in_imported_files", lines_in_imported),
        ("good_pings", outcomes["ok"]),
        ("distinct_document_ids", len(where)),
        ("bad_lines_total", sum(bad_counts.values())),
        ("bad_lines", bad_counts),
        ("import_outcomes", sorted_counts(outcomes)),
        ("bad_line_list", bad_list),
        ("duplicates", OrderedDict([("document_ids", len(duplicates)),
                                    ("extra_rows", sum(len(d["rows"]) - 1 for d in duplicates)),
                                    ("list", duplicates)])),
        ("by_reason", sorted_counts(by["reason"])),
        ("by_appName", sorted_counts(by["appName"])),
        ("by_appUpdateChannel", sorted_counts(by["appUpdateChannel"])),
        ("by_appVersion", sorted_counts(by["appVersion"])),
        ("by_OS", sorted_counts(by["OS"])),
        ("by_submission_date", sorted_counts(by["submission_date"])),
        ("revisions", revisions),
        ("histogram_presence", OrderedDict((n, presence[n]) for n in defs)),
        ("histogram_totals", OrderedDict([
            ("name", TOTALS_HISTOGRAM), ("kind", defs[TOTALS_HISTOGRAM]["kind"]),
            ("bounds", defs[TOTALS_HISTOGRAM]["bounds"]),
            ("note", "bucket_sums = element-wise sum of the bucket part (first n elements) of the "
                     "array over good lines; sum = sum of the 'sum' statistic; pings = good lines "
                     "carrying the histogram"),
            ("pings", total["pings"]), ("sum", total["sum"]), ("bucket_sums", total["bucket_sums"]),
            ("by_channel", by_channel)])),
    ])
    with open(os.path.join(args.out, "EXPECTED.json"), "w", encoding="ascii") as f:
        json.dump(exp, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(storage) for f in fs)
    print("wrote %d files (%d bytes) under %s: %d lines, %d good, bad %s, %d duplicate ids"
          % (len(expected_files) + 1, size, storage, exp["lines_total"], exp["good_pings"],
             dict(bad_counts), len(duplicates)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
