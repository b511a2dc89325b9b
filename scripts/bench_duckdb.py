#!/usr/bin/env python3
"""DuckDB side of scripts/bench-import.sh (run with the bench venv's python, which has duckdb).

  bench_duckdb.py rewrap TSV JSONL      <uuid>\\t<json> lines -> {"id": "<uuid>", "ping": <json>} lines (not timed)
  bench_duckdb.py load read_json JSONL DB
  bench_duckdb.py load read_csv  TSV   DB

`load` creates a fresh persistent DuckDB file DB with one table `pings(document_id, reason, app_name,
app_update_channel, app_version, app_build_id, gc_ms BIGINT[])` from the already-decompressed pings, runs
CHECKPOINT, and prints one JSON line: {"variant", "seconds" (in-process: load + checkpoint), "rows",
"rows_with_gc_ms", "duckdb_version", "threads"}. The row counts are taken after the clock stops.

read_json: the fastest DuckDB way found (parse with DuckDB's JSON reader straight into typed columns; only
the needed keys are materialised, but every document is fully parsed, i.e. validated).
read_csv:  the TSV as it is (tab separator, no quoting), then json_transform of the JSON column: slower,
but needs no rewrapped input file.
"""
import json
import os
import sys
import time

DIMS = ["reason", "appName", "appUpdateChannel", "appVersion", "appBuildID"]
COLS = ["reason", "app_name", "app_update_channel", "app_version", "app_build_id"]
MAX_LINE = 16 << 20   # the same limit as `telemetry import --max-line-bytes` (16 MiB)


def rewrap(tsv, jsonl):
    with open(tsv, "rb") as src, open(jsonl + ".tmp", "wb") as dst:
        for line in src:
            doc_id, sep, payload = line.rstrip(b"\n").partition(b"\t")
            if not sep:
                raise SystemExit("%s: a line without a tab (the benchmark dataset has none)" % tsv)
            dst.write(b'{"id":' + json.dumps(doc_id.decode("utf-8")).encode() + b',"ping":' + payload + b"}\n")
    os.replace(jsonl + ".tmp", jsonl)


def load_sql(variant, path):
    quoted = "'" + path.replace("'", "''") + "'"
    if variant == "read_json":
        info = ", ".join('"%s" VARCHAR' % d for d in DIMS)
        columns = "{'id': 'VARCHAR', 'ping': 'STRUCT(info STRUCT(%s), histograms STRUCT(\"GC_MS\" BIGINT[]))'}" % info
        select = ", ".join("ping.info.%s AS %s" % (d, c) for d, c in zip(DIMS, COLS))
        return ("CREATE TABLE pings AS SELECT id AS document_id, %s, ping.histograms.GC_MS AS gc_ms\n"
                "FROM read_json(%s, format = 'newline_delimited', columns = %s, maximum_object_size = %d)"
                % (select, quoted, columns, MAX_LINE))
    if variant == "read_csv":
        struct = json.dumps({"info": {d: "VARCHAR" for d in DIMS}, "histograms": {"GC_MS": "BIGINT[]"}})
        select = ", ".join("s.info.%s AS %s" % (d, c) for d, c in zip(DIMS, COLS))
        return ("CREATE TABLE pings AS SELECT id AS document_id, %s, s.histograms.GC_MS AS gc_ms\n"
                "FROM (SELECT id, json_transform(j, '%s') AS s\n"
                "      FROM read_csv(%s, delim = '\\t', quote = '', escape = '', header = false, auto_detect = false,\n"
                "                    new_line = '\\n', columns = {'id': 'VARCHAR', 'j': 'VARCHAR'}, max_line_size = %d))"
                % (select, struct, quoted, MAX_LINE))
    raise SystemExit("unknown variant %r (read_json or read_csv)" % variant)


def load(variant, path, db):
    import duckdb
    for p in (db, db + ".wal"):
        if os.path.exists(p):
            os.remove(p)
    sql = load_sql(variant, path)
    con = duckdb.connect(db)
    started = time.perf_counter()
    con.execute(sql)
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    rows, with_gc = con.execute("SELECT count(*), count(gc_ms) FROM pings").fetchone()
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.close()
    print(json.dumps({"variant": variant, "seconds": seconds, "rows": rows, "rows_with_gc_ms": with_gc,
                      "duckdb_version": duckdb.__version__, "threads": threads}))


def main(argv):
    if len(argv) == 4 and argv[1] == "rewrap":
        rewrap(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "load":
        load(argv[2], argv[3], argv[4])
    elif len(argv) == 3 and argv[1] == "sql":
        print(load_sql(argv[2], "INPUT"))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
