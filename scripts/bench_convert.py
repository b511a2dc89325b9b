#!/usr/bin/env python3
"""Helpers of scripts/bench-convert.sh (Python 3 standard library only).

  bench_convert.py state DIR PINGS SEED REASONS
      Prints ok (DIR holds a complete gen_pings.py rawlog dataset with these parameters), stale, foreign or none.
  bench_convert.py manifest DIR FIELD
      Prints outputs.rawlog.FIELD of DIR/MANIFEST.json (JSON for dicts).
  bench_convert.py gunzip FILE...
      Reads v1/v2 raw logs (spec/raw-log.md §1) and inflates every gzipped data field with zlib (C), timing only
      the zlib.decompress calls. Prints JSON: records, gzipped, plain, gzip_bytes, inflated_bytes, seconds
      (decompression wall time), cpu_seconds (its thread CPU time), total_seconds.
  bench_convert.py check SUMMARY_JSON DATA_DIR OUT_DIR [PLAIN_DIR]
      Checks a `telemetry convert --json` summary and its output tree against DATA_DIR/MANIFEST.json: converted,
      rejected and per-category counts, input files and bytes, every file listed exists (and no .partial or
      work file is left), and the output's record lines (counted with `xz -dc`) equal the manifest's records.
      With PLAIN_DIR, also writes each output file decompressed to PLAIN_DIR/<relative path without .xz>.
      Prints one JSON line; exit status 1 on any mismatch.
"""
import json
import os
import struct
import subprocess
import sys
import time


def load_manifest(data):
    with open(os.path.join(data, "MANIFEST.json")) as f:
        return json.load(f)


# --- state ---------------------------------------------------------------------------------------------------

def state(data, pings, seed, reasons):
    mpath, rawdir = os.path.join(data, "MANIFEST.json"), os.path.join(data, "rawlog")
    try:
        m = load_manifest(data)
    except (OSError, ValueError):
        print("foreign" if os.path.exists(rawdir) or os.path.exists(mpath) else "none")
        return
    if m.get("generator") != "gen_pings.py":
        print("foreign")
        return
    want = {"seed": seed, "pings": pings, "reasons": reasons, "start_date": "20131015", "days": 14,
            "bad_fraction": 0.0, "duplicate_fraction": 0.0}
    same = all(m.get(k) == v for k, v in want.items())
    rl = m.get("outputs", {}).get("rawlog")
    files = sorted(f for f in os.listdir(rawdir) if f.endswith(".finished")) if os.path.isdir(rawdir) else []
    size = sum(os.path.getsize(os.path.join(rawdir, f)) for f in files)
    cache_ok = bool(rl) and all(os.path.isfile(os.path.join(data, e["path"])) for e in rl.get("histogram_cache", []))
    ok = (same and rl and rl.get("files") == len(files) and rl.get("records") == pings
          and rl.get("bytes_on_disk") == size and cache_ok)
    print("ok" if ok else "stale")


# --- gunzip: the first half of the bound -----------------------------------------------------------------------

def records(buf):
    """(path, data) memoryviews of every record of a raw log (v1 or v2 framing, decided on the first record)."""
    mv = memoryview(buf)
    n = len(buf)
    v2 = False
    if n >= 16 and buf[0] == 0x1E:
        # v1: path_len u16 at 1; v2: ip_len u8 at 1, path_len u16 at 2. Take the framing whose first record ends
        # exactly at the end of the file or at the next separator.
        pl1, dl1 = struct.unpack_from("<HI", buf, 1)
        end1 = 15 + pl1 + dl1
        ok1 = end1 == n or (end1 < n and buf[end1] == 0x1E)
        if not ok1:
            v2 = True
    i = 0
    while i < n:
        if buf[i] != 0x1E:
            raise ValueError("no record separator at offset %d" % i)
        if v2:
            il, pl, dl = struct.unpack_from("<BHI", buf, i + 1)
            start = i + 16 + il
        else:
            pl, dl = struct.unpack_from("<HI", buf, i + 1)
            start = i + 15
        path, data = mv[start:start + pl], mv[start + pl:start + pl + dl]
        if start + pl + dl > n:
            raise ValueError("record at offset %d is truncated" % i)
        yield path, data
        i = start + pl + dl


def gunzip(files):
    t_all = time.perf_counter()
    seconds = cpu = 0.0
    nrec = ngz = gz_bytes = out_bytes = 0
    decompress = __import__("zlib").decompress
    for path in files:
        with open(path, "rb") as f:
            buf = f.read()
        bodies = []
        for _, data in records(buf):
            nrec += 1
            if len(data) >= 2 and data[0] == 0x1F and data[1] == 0x8B:
                bodies.append(data)
        ngz += len(bodies)
        gz_bytes += sum(len(b) for b in bodies)
        # Only this loop is timed: one zlib inflate (gzip wrapper, CRC checked) per gzipped body.
        c0, t0 = time.thread_time(), time.perf_counter()
        for body in bodies:
            out_bytes += len(decompress(body, 16 + 15))
        seconds += time.perf_counter() - t0
        cpu += time.thread_time() - c0
        del bodies, buf
    print(json.dumps({"records": nrec, "gzipped": ngz, "plain": nrec - ngz, "gzip_bytes": gz_bytes,
                      "inflated_bytes": out_bytes, "seconds": round(seconds, 4), "cpu_seconds": round(cpu, 4),
                      "total_seconds": round(time.perf_counter() - t_all, 4)}))


# --- check -----------------------------------------------------------------------------------------------------

def check(summary_path, data, out, plain=None):
    with open(summary_path) as f:
        s = json.load(f)
    rl = load_manifest(data)["outputs"]["rawlog"]
    problems = []
    expected = rl.get("expected_convert_counts", {})
    want_converted = expected.get("none", 0)
    want_rejected = sum(v for k, v in expected.items() if k != "none")
    if s.get("converted") != want_converted:
        problems.append("converted %s, MANIFEST expected_convert_counts.none %s" % (s.get("converted"), want_converted))
    if s.get("rejected") != want_rejected:
        problems.append("rejected %s, MANIFEST expects %s" % (s.get("rejected"), want_rejected))
    fails = {k: v for k, v in (s.get("failures") or {}).items() if v}
    want_fails = {k: v for k, v in expected.items() if k != "none" and v}
    if fails != want_fails:
        problems.append("failures %s, MANIFEST expects %s" % (fails, want_fails))
    if s.get("processed") != rl["records"]:
        problems.append("processed %s, MANIFEST records %s" % (s.get("processed"), rl["records"]))
    if s.get("input_files") != rl["files"]:
        problems.append("input_files %s, MANIFEST files %s" % (s.get("input_files"), rl["files"]))
    if s.get("bytes_in") != rl["bytes_on_disk"]:
        problems.append("bytes_in %s, MANIFEST bytes_on_disk %s" % (s.get("bytes_in"), rl["bytes_on_disk"]))
    if s.get("input_errors"):
        problems.append("input_errors: %s" % s["input_errors"][:3])
    if s.get("skipped_bytes", 0) != rl.get("expected_skipped_bytes", 0):
        problems.append("skipped_bytes %s, MANIFEST %s" % (s.get("skipped_bytes"), rl.get("expected_skipped_bytes")))
    files = s.get("files_written") or []
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        problems.append("%d listed output files are missing, e.g. %s" % (len(missing), missing[0]))
    leftovers = []
    for d, dirs, names in os.walk(out):
        if os.path.basename(d) == ".work" or "/.work/" in d + "/":
            leftovers += [os.path.join(d, n) for n in names]
        leftovers += [os.path.join(d, n) for n in names if n.endswith(".partial")]
    if leftovers:
        problems.append("%d work or .partial files left, e.g. %s" % (len(leftovers), leftovers[0]))
    on_disk = sorted(os.path.join(d, n) for d, _, names in os.walk(out) for n in names if n.endswith(".xz"))
    if on_disk != sorted(files):
        problems.append("%d .xz files in the output tree, %d listed in the summary" % (len(on_disk), len(files)))
    lines = nbytes = 0
    compressed = 0
    for path in files:
        if not os.path.isfile(path):
            continue
        compressed += os.path.getsize(path)
        rel = os.path.relpath(path, out)
        sink = None
        if plain:
            target = os.path.join(plain, rel[:-3] if rel.endswith(".xz") else rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            sink = open(target, "wb")
        proc = subprocess.Popen(["xz", "-dc", "--", path], stdout=subprocess.PIPE)
        while True:
            chunk = proc.stdout.read(1 << 20)
            if not chunk:
                break
            lines += chunk.count(b"\n")
            nbytes += len(chunk)
            if sink:
                sink.write(chunk)
        if proc.wait() != 0:
            problems.append("xz -dc %s failed" % path)
        if sink:
            sink.close()
    if lines != want_converted:
        problems.append("the output has %d record lines, MANIFEST expects %d converted records" % (lines, want_converted))
    if nbytes != s.get("bytes_out"):
        problems.append("the output decompresses to %d bytes, the summary says bytes_out %s" % (nbytes, s.get("bytes_out")))
    if compressed != s.get("compressed_bytes_out"):
        problems.append("the output files total %d bytes, the summary says compressed_bytes_out %s" % (
            compressed, s.get("compressed_bytes_out")))
    print(json.dumps({"ok": not problems, "problems": problems, "converted": s.get("converted"),
                      "rejected": s.get("rejected"), "lines": lines, "manifest_records": rl["records"],
                      "manifest_expected_none": want_converted, "files": len(files), "bytes_out": nbytes,
                      "compressed_bytes_out": compressed, "seconds": s.get("seconds")}))
    return 0 if not problems else 1


def main(argv):
    if len(argv) == 6 and argv[1] == "state":
        state(argv[2], int(argv[3]), int(argv[4]), argv[5])
        return 0
    if len(argv) == 4 and argv[1] == "manifest":
        value = load_manifest(argv[2])["outputs"]["rawlog"][argv[3]]
        print(json.dumps(value) if isinstance(value, (dict, list)) else value)
        return 0
    if len(argv) >= 3 and argv[1] == "gunzip":
        gunzip(argv[2:])
        return 0
    if len(argv) in (5, 6) and argv[1] == "check":
        return check(*argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
