#!/usr/bin/env python3
"""Reads `telemetry export` datasets with engines we did not write: pyarrow, DuckDB and Spark (local mode).

Run by Tests/TelemetryExportTests/ExportReaderTests.swift (so `swift test` runs it) as

    export_readers.py TELEMETRY SAMPLE_STORAGE WORKDIR

It builds a store from the committed sample plus a tree of hostile pings (unicode, path-like and Hive-special
`info.OS` values, a NULL and an empty OS, missing info fields, a unicode channel directory), exports it several
ways with the binary, and checks:

  * J1 (pings by os) and J2 (element-wise SAMPLE_GC_MS bucket sums by update_channel) from pyarrow, DuckDB and
    Spark over every Parquet export, and from DuckDB and Python over the JSON-lines export, equal the store's exact
    answers (`telemetry query` with histogram_sum);
  * every file is read (row counts), partition values round-trip (Hive escaping; NULL and '' both read as NULL);
  * the footer statistics pyarrow reads (min, max, null count) equal the data of each row group and column;
  * both dictionary (RLE_DICTIONARY) and PLAIN-only chunks occur; several row groups occur;
  * an empty selection exits non-zero with a clear message and writes no _SUCCESS;
  * a re-run is byte-identical and removes stale part files and temporary files of a killed run;
  * export never writes to the store (its files are byte-identical afterwards).

Prints one line per check and a closing `N passed, N failed`; exits 1 when any check failed.
"""
import glob
import gzip
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
import time

TELEMETRY, SAMPLE, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
HISTOGRAM = "SAMPLE_GC_MS"
PASSED, FAILED = [], []

# Values of info.OS that become partition directories when partitioning by os.
HOSTILE_OS = ["ночь 夜", "a=b", "x/../y", "%41", "..", "50% off?", "#tag:*[x]^{y}\\z", "quote'\"", "tab\tnew\nline",
              "__HIVE_DEFAULT_PARTITION", "Windows_NT", "", None]


def check(name, ok, detail=""):
    (PASSED if ok else FAILED).append(name)
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok else ": " + detail), flush=True)


def run(args, expect=0):
    result = subprocess.run([TELEMETRY] + args, capture_output=True, text=True, env=dict(os.environ, TELEMETRY_STORE=""))
    if expect is not None and result.returncode != expect:
        raise SystemExit("telemetry %s exited %d: %s%s" % (" ".join(args), result.returncode, result.stdout, result.stderr))
    return result


def query(store, sql):
    return json.loads(run(["query", sql, "--store", store, "--format", "json"]).stdout or "[]")


# ---------------------------------------------------------------------------------------------------------------
# The store.

def hostile_tree(root):
    """Storage-layout files of pings with hostile info values, some without histograms or info fields."""
    files = {}
    for index, os_value in enumerate(HOSTILE_OS):
        info = {"reason": "saved-session", "appName": "Firefox", "appUpdateChannel": "nightly", "appVersion": "28.0a1",
                "appBuildID": "20131029030201", "revision": "http://hg.mozilla.org/mozilla-central/rev/abc"}
        if os_value is not None:
            info["OS"] = os_value
        if index % 2 == 0:
            info["memsize"] = 1024 + index
        ping = {"ver": 2, "info": info, "histograms": {}}
        if index % 3 == 0:
            ping["histograms"][HISTOGRAM] = [index, 0, 2] + [0] * 47 + [10 + index, -1, -1, -1, -1]
        channel = "ночь" if index % 4 == 1 else "nightly"
        path = "saved_session/Firefox/%s/28.0a1/20131029030201.20131029.v2.log.%032x.xz" % (channel, 1 + index % 2)
        files.setdefault(path, []).append("%08d-0000-4000-8000-000000000000\t%s\n" % (index, json.dumps(ping)))
    for path, lines in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with lzma.open(full, "wt", encoding="utf-8") as out:
            out.writelines(lines)


def store_digest(store):
    """SHA-256 of each file of the store: the database, its WAL, ping index and column files. Not the -shm index,
    which SQLite's readers update by design, nor an empty -wal, which a read-only connection to a WAL database
    leaves behind (it may not delete it); a -wal with content would be a write."""
    out = {}
    for path in sorted(glob.glob(store + "*") + glob.glob(store + ".columns/*")):
        if os.path.isfile(path) and not path.endswith("-shm") and not (path.endswith("-wal") and os.path.getsize(path) == 0):
            with open(path, "rb") as f:
                out[os.path.relpath(path, WORK)] = hashlib.sha256(f.read()).hexdigest()
    return out


def dataset_digest(directory):
    out = {}
    for path in sorted(glob.glob(directory + "/**", recursive=True) + glob.glob(directory + "/**/.*", recursive=True)):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Expected answers, from the store.

def expected_j1(store):
    return {row["os"]: row["n"] for row in query(store, "SELECT os, count(*) AS n FROM pings GROUP BY os")}


def expected_j2(store):
    rows = query(store, "SELECT update_channel AS ch, histogram_sum(ping_id, '%s') AS s FROM pings GROUP BY 1" % HISTOGRAM)
    out = {}
    for row in rows:
        if row["s"] is not None:
            summed = json.loads(row["s"]) if isinstance(row["s"], str) else row["s"]
            out[row["ch"]] = summed[:50]
    return out


def bucket_sums(rows):
    """(channel, buckets or None) -> {channel: element-wise sums} over the rows that carry the histogram."""
    out = {}
    for channel, buckets in rows:
        if buckets is None:
            continue
        acc = out.setdefault(channel, [0] * len(buckets))
        for i, value in enumerate(buckets):
            acc[i] += value
    return out


# ---------------------------------------------------------------------------------------------------------------
# Readers.

def pyarrow_answers(directory):
    import pyarrow.dataset as ds
    table = ds.dataset(directory, format="parquet", partitioning="hive").to_table()
    os_column = table.column("os").to_pylist()
    j1 = {}
    for value in os_column:
        j1[value] = j1.get(value, 0) + 1
    j2 = bucket_sums(zip(table.column("update_channel").to_pylist(), table.column(HISTOGRAM).to_pylist()))
    return table, j1, j2


def duckdb_answers(directory, pattern="**/*.parquet", reader="read_parquet"):
    import duckdb
    con = duckdb.connect()
    source = "%s('%s/%s', hive_partitioning = %s%s)" % (
        reader, directory, pattern, "true" if reader == "read_parquet" else "false",
        ", hive_types_autocast = false" if reader == "read_parquet" else "")
    j1 = dict(con.execute("SELECT os, count(*) FROM %s GROUP BY os" % source).fetchall())
    sums = ", ".join("sum(h[%d])" % (i + 1) for i in range(50))
    rows = con.execute("SELECT ch, %s FROM (SELECT update_channel AS ch, \"%s\" AS h FROM %s WHERE \"%s\" IS NOT NULL) GROUP BY ch"
                       % (sums, HISTOGRAM, source, HISTOGRAM)).fetchall()
    j2 = {row[0]: [int(v) for v in row[1:]] for row in rows}
    count = con.execute("SELECT count(*) FROM %s" % source).fetchone()[0]
    return j1, j2, count, con, source


_spark = None


def spark_session():
    global _spark
    if _spark is None:
        from pyspark.sql import SparkSession
        _spark = (SparkSession.builder.master("local[2]").appName("telemetry-export-test")
                  .config("spark.ui.enabled", "false")
                  .config("spark.sql.shuffle.partitions", "2")
                  .config("spark.sql.session.timeZone", "UTC")
                  # docs/export.md: partition columns are strings; never let Spark infer numbers or dates.
                  .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
                  .config("spark.driver.memory", "1g")
                  .getOrCreate())
        _spark.sparkContext.setLogLevel("ERROR")
    return _spark


def spark_answers(directory):
    from pyspark.sql import functions as F
    spark = spark_session()
    frame = spark.read.parquet(directory)
    j1 = {row[0]: row[1] for row in frame.groupBy("os").count().collect()}
    exploded = frame.where(F.col(HISTOGRAM).isNotNull()).select("update_channel", F.posexplode(HISTOGRAM).alias("i", "v"))
    j2 = {}
    for row in exploded.groupBy("update_channel", "i").agg(F.sum("v").alias("s")).collect():
        acc = j2.setdefault(row["update_channel"], [0] * 50)
        acc[row["i"]] = int(row["s"])
    return frame, j1, j2


# ---------------------------------------------------------------------------------------------------------------
# Footer statistics and encodings, as pyarrow reads them.

def check_statistics(directory, label):
    import pyarrow.parquet as pq
    mismatches, dictionary_chunks, plain_string_chunks, row_groups = [], 0, 0, 0
    for path in sorted(glob.glob(directory + "/**/*.parquet", recursive=True)):
        parquet = pq.ParquetFile(path)
        metadata = parquet.metadata
        for group_index in range(metadata.num_row_groups):
            row_groups += 1
            table = parquet.read_row_group(group_index)
            group = metadata.row_group(group_index)
            for column_index in range(group.num_columns):
                chunk = group.column(column_index)
                name = chunk.path_in_schema.split(".")[0]
                values = table.column(name).to_pylist()
                if chunk.path_in_schema.endswith(".list.element"):
                    leaves = [v for row in values if row for v in row]
                    nulls = sum(1 for row in values if not row)        # a null or empty list: one leaf level below max
                else:
                    leaves = [v for v in values if v is not None]
                    nulls = len(values) - len(leaves)
                stats = chunk.statistics
                where = "%s row group %d column %s" % (os.path.relpath(path, directory), group_index, chunk.path_in_schema)
                if stats is None or stats.null_count != nulls:
                    mismatches.append("%s: null_count %s, data %d" % (where, stats and stats.null_count, nulls))
                if leaves and name != "payload":
                    if isinstance(leaves[0], str):
                        low = min(leaves, key=lambda s: s.encode()); high = max(leaves, key=lambda s: s.encode())
                    else:
                        low, high = min(leaves), max(leaves)
                    if not stats.has_min_max or stats.min != low or stats.max != high:
                        mismatches.append("%s: min/max %s, data %r/%r" % (where, stats.has_min_max and (stats.min, stats.max), low, high))
                elif not leaves and stats.has_min_max:
                    mismatches.append("%s: min/max written for a chunk without values" % where)
                if "RLE_DICTIONARY" in chunk.encodings:
                    dictionary_chunks += 1
                elif chunk.physical_type == "BYTE_ARRAY":
                    plain_string_chunks += 1
    check(label + ": pyarrow statistics equal the data", not mismatches, "; ".join(mismatches[:5]))
    check(label + ": dictionary and PLAIN string chunks both written", dictionary_chunks > 0 and plain_string_chunks > 0,
          "dictionary %d, plain %d" % (dictionary_chunks, plain_string_chunks))
    return row_groups


# ---------------------------------------------------------------------------------------------------------------

def main():
    if os.path.exists(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    hostile = os.path.join(WORK, "hostile")
    hostile_tree(hostile)
    schema = os.path.join(WORK, "schema.json")
    with open(schema, "w") as f:
        json.dump({"version": 1, "dimensions": [
            {"field_name": "reason", "allowed_values": "*"}, {"field_name": "appName", "allowed_values": "*"},
            {"field_name": "appUpdateChannel", "allowed_values": "*"}, {"field_name": "appVersion", "allowed_values": "*"},
            {"field_name": "appBuildID", "allowed_values": "*"}, {"field_name": "submission_date", "allowed_values": "*"}]}, f)
    store = os.path.join(WORK, "store.db")
    run(["import", SAMPLE, hostile, "--store", store, "--schema", schema], expect=None)   # the sample has bad lines: exit 1
    total = query(store, "SELECT count(*) AS n FROM pings")[0]["n"]
    check("store built with the hostile pings", total > len(HOSTILE_OS), "only %d pings" % total)
    j1, j2 = expected_j1(store), expected_j2(store)
    check("store answers J1 and J2", len(j1) > 5 and len(j2) >= 2, "J1 %r J2 %r" % (j1, list(j2)))
    before = store_digest(store)

    by_date = os.path.join(WORK, "by_date")
    by_os = os.path.join(WORK, "by_channel_os")
    lines = os.path.join(WORK, "jsonl")
    run(["export", by_date, "--store", store, "--histograms", HISTOGRAM, "--payload", "--row-group-rows", "64"])
    run(["export", by_os, "--store", store, "--partition-by", "appUpdateChannel,os", "--histograms", HISTOGRAM])
    run(["export", lines, "--store", store, "--format", "jsonl", "--histograms", HISTOGRAM, "--partition-by", "os"])
    after = store_digest(store)
    check("export leaves the store byte-identical", after == before,
          "changed: %r" % sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))
    for directory in (by_date, by_os, lines):
        check("%s: _SUCCESS, _schema.json and _ddl.sql written" % os.path.basename(directory),
              all(os.path.exists(os.path.join(directory, name)) for name in ("_SUCCESS", "_schema.json", "_ddl.sql")))

    with open(os.path.join(by_os, "_ddl.sql")) as f:
        ddl = f.read()
    check("_ddl.sql: Trino and Spark tables, partition columns last and strings",
          "partitioned_by = ARRAY['appupdatechannel', 'os']" in ddl and '"SAMPLE_GC_MS" array(bigint)' in ddl
          and '"appUpdateChannel" varchar,\n  "os" varchar\n)' in ddl and "PARTITIONED BY (`appUpdateChannel`, `os`)" in ddl, ddl)

    # Empty selection.
    empty = os.path.join(WORK, "empty")
    result = run(["export", empty, "--store", store, "--where", "os = 'no such OS'"], expect=None)
    check("empty selection: non-zero exit, clear message, no _SUCCESS",
          result.returncode != 0 and "no pings selected" in result.stderr and not os.path.exists(os.path.join(empty, "_SUCCESS")),
          "exit %d, stderr %r" % (result.returncode, result.stderr))

    # Re-run: identical bytes; stale parts and a killed run's temporary file are removed.
    first = dataset_digest(by_date)
    some_partition = sorted(d for d in glob.glob(by_date + "/submission_date=*"))[0]
    open(os.path.join(some_partition, "part-00007.parquet"), "wb").write(b"stale")
    open(os.path.join(some_partition, ".part-00000.parquet.tmp"), "wb").write(b"killed")
    run(["export", by_date, "--store", store, "--histograms", HISTOGRAM, "--payload", "--row-group-rows", "64"])
    check("re-run is byte-identical, stale and temporary files removed", dataset_digest(by_date) == first)
    result = run(["export", by_date, "--store", store], expect=None)
    check("export with another schema into the same directory is refused",
          result.returncode != 0 and "another schema" in result.stderr, result.stderr)

    # A kill mid-export: no _SUCCESS, no visible file that is incomplete; the next run completes the dataset.
    killed = os.path.join(WORK, "killed")
    arguments = [TELEMETRY, "export", killed, "--store", store, "--histograms", "all", "--payload", "--row-group-rows", "1",
                 "--partition-by", ""]
    caught = False
    for _ in range(5):
        shutil.rmtree(killed, ignore_errors=True)
        child = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, TELEMETRY_STORE=""))
        deadline = time.time() + 60
        while child.poll() is None and time.time() < deadline:
            if glob.glob(killed + "/.part-*.tmp"):
                child.kill()
                caught = True
                break
            time.sleep(0.001)
        child.wait()
        if caught:
            break
    if caught:
        import pyarrow.parquet as pq
        visible = glob.glob(killed + "/**/part-*", recursive=True)
        readable = all(pq.ParquetFile(path).metadata.num_rows > 0 for path in visible)
        check("killed export: no _SUCCESS, every visible file complete",
              not os.path.exists(os.path.join(killed, "_SUCCESS")) and readable, repr(visible))
        run(arguments[1:])
        import pyarrow.dataset as ds
        rows = ds.dataset(killed, format="parquet").count_rows()
        check("killed export: the next run completes it", rows == total and os.path.exists(os.path.join(killed, "_SUCCESS"))
              and not glob.glob(killed + "/.part-*"), "%d of %d rows" % (rows, total))
    else:
        check("killed export: interrupted while writing", False, "the export finished before a temporary file was seen, 5 times")

    # Partition directories: Hive escaping, NULL and '' as __HIVE_DEFAULT_PARTITION__.
    os_dirs = sorted({os.path.basename(p) for p in glob.glob(by_os + "/*/os=*")})
    check("hostile values stay one path component each", all(p.count("/") == 0 for p in os_dirs) and
          "os=x%2F..%2Fy" in os_dirs and "os=a%3Db" in os_dirs and "os=ночь%20夜" in os_dirs and
          "os=__HIVE_DEFAULT_PARTITION__" in os_dirs and "os=%2E%2E" in os_dirs and "os=%2541" in os_dirs, repr(os_dirs))

    store_partitions = {}
    for row in query(store, "SELECT appUpdateChannel AS c, os, count(*) AS n FROM pings GROUP BY 1, 2"):
        key = (row["c"], row["os"] if row["os"] != "" else None)    # Hive cannot tell '' from NULL
        store_partitions[key] = store_partitions.get(key, 0) + row["n"]
    j1_partitioned = {}
    for (channel, os_value), n in store_partitions.items():
        j1_partitioned[os_value] = j1_partitioned.get(os_value, 0) + n

    row_groups = check_statistics(by_date, "by_date")
    check("by_date: several row groups per file written", row_groups > len(glob.glob(by_date + "/**/*.parquet", recursive=True)))
    check_statistics(by_os, "by_channel_os")

    # pyarrow
    table, a1, a2 = pyarrow_answers(by_date)
    check("pyarrow: by_date has every ping", table.num_rows == total, "%d of %d" % (table.num_rows, total))
    check("pyarrow: J1 over by_date equals the store's", a1 == j1, "%r != %r" % (a1, j1))
    check("pyarrow: J2 over by_date equals the store's", a2 == j2, "%r != %r" % (a2, j2))
    dates = sorted(set(table.column("submission_date").to_pylist()))
    check("pyarrow: submission_date partitions are ISO dates", all(len(d) == 10 and d[4] == "-" for d in dates), repr(dates))
    table, a1, a2 = pyarrow_answers(by_os)
    got = {}
    for channel, os_value in zip(table.column("appUpdateChannel").to_pylist(), table.column("os").to_pylist()):
        got[(channel, os_value)] = got.get((channel, os_value), 0) + 1
    check("pyarrow: by_channel_os partition values round-trip", got == store_partitions, "%r != %r" % (got, store_partitions))
    check("pyarrow: J2 over by_channel_os equals the store's", a2 == j2, "%r != %r" % (a2, j2))
    payloads = [json.loads(p)["ver"] for p in pyarrow_answers(by_date)[0].column("payload").to_pylist()[:3]]
    check("pyarrow: payload column holds the JSON", payloads == [2, 2, 2], repr(payloads))

    # DuckDB
    d1, d2, count, con, source = duckdb_answers(by_date)
    check("duckdb: by_date has every ping", count == total, "%d of %d" % (count, total))
    check("duckdb: J1 over by_date equals the store's", d1 == j1, "%r != %r" % (d1, j1))
    check("duckdb: J2 over by_date equals the store's", d2 == j2, "%r != %r" % (d2, j2))
    d1, d2, count, con, source = duckdb_answers(by_os)
    got = {(c, o): n for c, o, n in con.execute('SELECT "appUpdateChannel", os, count(*) FROM %s GROUP BY ALL' % source).fetchall()}
    check("duckdb: by_channel_os partition values round-trip", got == store_partitions, "%r != %r" % (got, store_partitions))
    check("duckdb: J1 over by_channel_os equals the store's (NULL and '' merged)", d1 == j1_partitioned, "%r != %r" % (d1, j1_partitioned))
    check("duckdb: J2 over by_channel_os equals the store's", d2 == j2, "%r != %r" % (d2, j2))

    # JSON lines: DuckDB and Python's gzip + json.
    d1, d2, count, con, source = duckdb_answers(lines, "**/*.jsonl.gz", "read_json")
    check("duckdb: J1 over jsonl equals the store's", d1 == j1 and count == total, "%r != %r" % (d1, j1))
    check("duckdb: J2 over jsonl equals the store's", d2 == j2, "%r != %r" % (d2, j2))
    rows = []
    for path in glob.glob(lines + "/**/*.jsonl.gz", recursive=True):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            rows += [json.loads(line) for line in f]
    p1 = {}
    for row in rows:
        p1[row["os"]] = p1.get(row["os"], 0) + 1
    check("python: J1 over jsonl equals the store's", p1 == j1, "%r != %r" % (p1, j1))
    check("python: J2 over jsonl equals the store's", bucket_sums((r["update_channel"], r[HISTOGRAM]) for r in rows) == j2)

    # Spark (local[2], one session for all reads).
    frame, s1, s2 = spark_answers(by_date)
    check("spark: by_date has every ping", frame.count() == total)
    check("spark: J1 over by_date equals the store's", s1 == j1, "%r != %r" % (s1, j1))
    check("spark: J2 over by_date equals the store's", s2 == j2, "%r != %r" % (s2, j2))
    check("spark: partition column read as a string", dict(frame.dtypes)["submission_date"] == "string", repr(frame.dtypes[-1]))
    frame, s1, s2 = spark_answers(by_os)
    got = {(r[0], r[1]): r[2] for r in frame.groupBy("appUpdateChannel", "os").count().collect()}
    check("spark: by_channel_os partition values round-trip", got == store_partitions, "%r != %r" % (got, store_partitions))
    check("spark: J1 over by_channel_os equals the store's (NULL and '' merged)", s1 == j1_partitioned, "%r != %r" % (s1, j1_partitioned))
    check("spark: J2 over by_channel_os equals the store's", s2 == j2, "%r != %r" % (s2, j2))
    spark_session().stop()

    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
