#!/usr/bin/env python3
"""Spark benchmark measurements (run by scripts/bench-spark.sh; see docs/benchmarks.md "Spark").

    bench_spark.py spark --master local[N] --telemetry BIN --storage DIR --shards S --rounds R --out RESULT.json
        J1 (os-distribution) and J2 (histogram-by-channel --histogram GC_MS --by info) through
        integrations/spark/telemetry_spark.py, then the same two queries as a python_moztelemetry-style PySpark
        job (sc.parallelize(files).flatMap(read): lzma + json.loads per line in Python), in one SparkSession.
    bench_spark.py single --telemetry BIN --storage DIR --work DIR --rounds R --out RESULT.json
        the single-machine path: telemetry import + telemetry job, end to end from the same files.
Each measurement: wall seconds of every round (the SparkSession's start is measured apart) and the answer.
"""
import argparse
import json
import lzma
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "integrations", "spark"))

J1 = ("os-distribution", [])
J2 = ("histogram-by-channel", ["--histogram", "GC_MS", "--by", "info"])


def parse_tsv(data):
    answer = {}
    for line in data.decode().splitlines():
        key, _, value = line.partition("\t")
        answer[key] = json.loads(value)
    return answer


def storage_files(root):
    files = []
    for directory, _, names in os.walk(root):
        files += [os.path.join(directory, name) for name in names if not name.startswith(".")]
    return sorted(files)


def read_pings(path):
    """python_moztelemetry's reader: decompress the whole file with lzma, split each line at the tab, json.loads."""
    with open(path, "rb") as source:
        text = lzma.decompress(source.read())
    pings = []
    for line in text.split(b"\n"):
        if not line:
            continue
        _, _, payload = line.partition(b"\t")
        try:
            pings.append(json.loads(payload))
        except ValueError:
            continue
    return pings


def j1_pairs(ping):
    os_name = (ping.get("info") or {}).get("OS")
    return [(os_name, 1)] if os_name is not None else []


def j2_pairs(ping):
    channel = (ping.get("info") or {}).get("appUpdateChannel")
    histogram = ((ping.get("histograms") or (ping.get("payload") or {}).get("histograms") or {})).get("GC_MS")
    if channel is None or not histogram or len(histogram) < 5:
        return []
    return [(channel, histogram[:-5])]


def add_buckets(a, b):
    if len(a) < len(b):
        a, b = b, a
    return [x + (b[i] if i < len(b) else 0) for i, x in enumerate(a)]


def python_job(sc, files, which):
    rdd = sc.parallelize(files, len(files)).flatMap(read_pings)
    if which == "J1":
        result = rdd.flatMap(j1_pairs).reduceByKey(lambda a, b: a + b).collect()
    else:
        result = rdd.flatMap(j2_pairs).reduceByKey(add_buckets).collect()
    return {key: value for key, value in result}


def spark(arguments):
    from pyspark.sql import SparkSession
    import io
    import telemetry_spark

    begun = time.time()
    session = (SparkSession.builder.master(arguments.master).appName("bench-spark")
               .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.parallelize([1, 2], 2).count()  # start the Python workers
    results = {"master": arguments.master, "session_start_s": time.time() - begun, "telemetry": {}, "python": {}}
    files = storage_files(arguments.storage)
    for name, (job, job_arguments) in (("J1", J1), ("J2", J2)):
        rounds = []
        for _ in range(arguments.rounds):
            out = io.BytesIO()
            err = io.StringIO()
            started = time.time()
            report = telemetry_spark.run(session, ["job", job, arguments.storage, "--telemetry", arguments.telemetry,
                                                   "--shards", str(arguments.shards), "--", *job_arguments], stdout=out, stderr=err)
            rounds.append(time.time() - started)
            if report["status"] not in (0, 1):
                raise SystemExit(f"telemetry_spark {name} failed: {err.getvalue()[-2000:]}")
        results["telemetry"][name] = {"seconds": rounds, "answer": parse_tsv(out.getvalue()), "shards": report["shards"],
                                      "pings_imported": report["pings_imported"]}
    for name in ("J1", "J2"):
        rounds = []
        for _ in range(arguments.python_rounds):
            started = time.time()
            answer = python_job(session.sparkContext, files, name)
            rounds.append(time.time() - started)
        results["python"][name] = {"seconds": rounds, "answer": answer}
    session.stop()
    with open(arguments.out, "w") as out:
        json.dump(results, out)


def single(arguments):
    results = {"import": [], "J1": {}, "J2": {}}
    store = os.path.join(arguments.work, "single.db")
    for _ in range(arguments.rounds):
        for suffix in ("", "-wal", "-shm", ".columns", ".pingindex", ".lock"):
            if os.path.exists(store + suffix):
                subprocess.run(["rm", "-rf", store + suffix], check=True)
        started = time.time()
        subprocess.run([arguments.telemetry, "import", "--store", store, arguments.storage], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        results["import"].append(time.time() - started)
    for name, (job, job_arguments) in (("J1", J1), ("J2", J2)):
        rounds = []
        for _ in range(arguments.rounds):
            started = time.time()
            done = subprocess.run([arguments.telemetry, "job", job, *job_arguments, "--store", store], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
            rounds.append(time.time() - started)
        results[name] = {"seconds": rounds, "answer": parse_tsv(done.stdout)}
    with open(arguments.out, "w") as out:
        json.dump(results, out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["spark", "single"])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--telemetry", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--work", default="/tmp")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--python-rounds", type=int, default=1)
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args()
    (spark if arguments.mode == "spark" else single)(arguments)


if __name__ == "__main__":
    main()
