#!/usr/bin/env python3
"""Independent reference for PipelineTruthTests: reads gen_pings.py's storage files and MANIFEST.json with the
standard library only (no code of the project) and prints the expected answers as JSON:

  j1          pings by info.OS ("NULL" for pings without it), every copy of a duplicate counted
  j2          GC_MS bucket sums by channel (the appUpdateChannel directory of the storage layout) and bucket
              count, as "channel|bucket_count|bucket_index" -> sum (exact integers)
  duplicates  "document id/ping type" -> copies, for pairs seen more than once (docs/store.md)
  bad         the raw-log records' expected rejection categories (MANIFEST: expected_convert_counts)
  pings       number of good pings

Records the generator damaged (MANIFEST bad_records, the same document ids in both formats) are left out: their
raw form is rejected. usage: truth_reference.py GEN_OUT
"""
import collections
import glob
import json
import lzma
import os
import sys

out = sys.argv[1]
manifest = json.load(open(os.path.join(out, "MANIFEST.json")))
raw = manifest["outputs"]["rawlog"]
bad_ids = {r["uuid"] for r in raw["bad_records"]}
storage = os.path.join(out, "storage")
j1 = collections.Counter()
j2 = collections.Counter()
copies = collections.Counter()
pings = 0
for path in sorted(glob.glob(os.path.join(storage, "**", "*.xz"), recursive=True)):
    parts = os.path.relpath(path, storage).split(os.sep)
    channel = parts[2]   # <reason>/<appName>/<appUpdateChannel>/<appVersion>/<file>
    with lzma.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            document_id, tab, text = line.rstrip("\n").partition("\t")
            if document_id in bad_ids or (not tab and document_id[:36] in bad_ids):   # a damaged line (no_tab)
                continue
            ping = json.loads(text)
            pings += 1
            copies[document_id + "/" + parts[0]] += 1   # a duplicate is (document id, ping type)
            os_name = (ping.get("info") or {}).get("OS")
            j1["NULL" if os_name is None else str(os_name)] += 1
            histograms = ping.get("histograms")
            if histograms is None:
                histograms = (ping.get("payload") or {}).get("histograms") or {}
            gc = histograms.get("GC_MS")
            if isinstance(gc, list):
                buckets = len(gc) - 5
                for index, count in enumerate(gc[:buckets]):
                    j2["%s|%d|%d" % (channel, buckets, index)] += count
expected = {k: v for k, v in raw["expected_convert_counts"].items() if k != "none"}
json.dump({"j1": j1, "j2": j2, "duplicates": {k: v for k, v in copies.items() if v > 1}, "bad": expected,
           "pings": pings, "bad_ids": sorted(bad_ids),
           "duplicate_ids": sorted(r["uuid"] for r in manifest["duplicates"]["records"])}, sys.stdout, sort_keys=True)
