#!/usr/bin/env python3
"""Checks of the Spark path with the real engine (run by Tests/TelemetryS3Tests/SparkTests.swift, so `swift test`
covers them): one SparkSession in local mode for every check.

    test_telemetry_spark.py --telemetry BIN --storage DIR --work DIR [--s3-url s3://B/P/ --endpoint-url URL]

DIR is a storage-layout tree; with --s3-url, the same tree uploaded there (moto's server on 127.0.0.1; credentials
in the environment). Every check compares with what the telemetry binary gives on one machine, byte for byte.
Prints one line per check; exits 1 when any check fails.

Other Spark checks (e.g. reading back exported Parquet) can be added as functions taking a Checks object
and registered in CHECKS: they share the one SparkSession (`checks.spark`).
"""
import argparse
import io
import json
import lzma
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import telemetry_spark  # noqa: E402

JOBS = ["pings-per-day", "os-distribution", "histogram-distribution", "duplicate-ids", "dimensions-dump"]


class Checks:
    def __init__(self, spark, arguments):
        self.spark = spark
        self.binary = arguments.telemetry
        self.storage = arguments.storage
        self.work = arguments.work
        self.s3_url = arguments.s3_url
        self.endpoint = arguments.endpoint_url
        self.failures = []
        self.single_stores = {}
        self.repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def expect(self, condition, message):
        if not condition:
            self.failures.append(message)
            print(f"FAIL {message}", flush=True)
        return condition

    def telemetry(self, *argv, stdin=b""):
        return subprocess.run([self.binary, *argv], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def single_store(self, source):
        """A store of the whole source imported on this machine (`telemetry import`), made once."""
        if source not in self.single_stores:
            path = os.path.join(self.work, f"single-{len(self.single_stores)}.db")
            argv = ["import", "--store", path, source]
            if source.startswith("s3://"):
                argv += ["--endpoint-url", self.endpoint, "--cache-dir", os.path.join(self.work, "single-cache")]
            result = self.telemetry(*argv)
            assert result.returncode in (0, 1), result.stderr.decode()
            self.single_stores[source] = path
        return self.single_stores[source]

    def single(self, source, job, job_arguments=(), options=()):
        result = self.telemetry("job", job, *job_arguments, "--store", self.single_store(source), *options)
        return result.returncode, result.stdout

    def spark_run(self, source, job, job_arguments=(), options=(), env=None):
        argv = ["job", job, source, "--telemetry", self.binary, *options]
        if source.startswith("s3://"):
            argv += ["--endpoint-url", self.endpoint]
        if job_arguments:
            argv += ["--", *job_arguments]
        out = io.BytesIO()
        err = io.StringIO()
        saved = {key: os.environ.get(key) for key in (env or {})}
        os.environ.update(env or {})
        try:
            report = telemetry_spark.run(self.spark, argv, stdout=out, stderr=err)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return report, out.getvalue(), err.getvalue()

    def sources(self):
        return [self.storage] + ([self.s3_url] if self.s3_url else [])

    def histogram_name(self):
        for root, _, names in sorted(os.walk(self.storage)):
            for name in sorted(names):
                with lzma.open(os.path.join(root, name)) as source:
                    for line in source:
                        ping = json.loads(line.split(b"\t", 1)[1])
                        histograms = ping.get("histograms") or ping.get("payload", {}).get("histograms") or {}
                        if histograms:
                            return sorted(histograms)[0]
        raise AssertionError("no histogram in the generated data")


def every_job_equals_single_machine(checks):
    histogram = checks.histogram_name()
    cases = [(job, ()) for job in JOBS] + [("histogram-by-channel", ("--histogram", histogram)),
                                           ("histogram-by-channel", ("--histogram", histogram, "--by", "info"))]
    for source in checks.sources():
        shards = 2 if source.startswith("s3://") else 3
        for job, job_arguments in cases:
            status, expected = checks.single(source, job, job_arguments)
            report, output, err = checks.spark_run(source, job, job_arguments, options=["--shards", str(shards)])
            label = f"{job} {' '.join(job_arguments)} from {source}"
            checks.expect(output == expected, f"{label}: Spark gave {output[:200]!r}, one machine {expected[:200]!r}\n{err[-2000:]}")
            checks.expect(report["status"] == status, f"{label}: exit status {report['status']}, one machine {status}")
            checks.expect(len(expected) > 0 or job == "duplicate-ids", f"{label}: empty answer")
            checks.expect(report["shards"] == shards, f"{label}: {report['shards']} shards, asked for {shards}")


def filter_where_and_formats(checks):
    filter_path = os.path.join(checks.work, "filter.json")
    with open(filter_path, "w") as out:
        json.dump({"version": 1, "dimensions": [
            {"field_name": "reason", "allowed_values": ["saved-session", "idle-daily"]},
            {"field_name": "appName", "allowed_values": "*"},
            {"field_name": "appUpdateChannel", "allowed_values": "*"},
            {"field_name": "appVersion", "allowed_values": "*"},
            {"field_name": "appBuildID", "allowed_values": "*"},
            {"field_name": "submission_date", "allowed_values": {"min": "20131001", "max": "20131025"}}]}, out)
    for source in checks.sources()[-1:]:
        options = ["--filter", filter_path, "--where", "os <> 'Linux'", "--format", "csv"]
        _, expected = checks.single(source, "os-distribution", (), options)
        report, output, err = checks.spark_run(source, "os-distribution", (), options=["--filter", filter_path, "--where", "os <> 'Linux'",
                                                                                     "--format", "csv"])
        checks.expect(output == expected and b"Linux" not in output and output, f"filtered csv from {source}: {output!r} vs {expected!r}\n{err[-1500:]}")
        _, everything = checks.single(source, "os-distribution", (), ["--format", "csv"])
        checks.expect(output != everything, f"the filter changed nothing from {source}")
    for source in checks.sources()[:1]:
        result_path = os.path.join(checks.work, "result.json")
        report, output, _ = checks.spark_run(source, "pings-per-day", (), options=["--format", "json", "--output", result_path])
        _, expected = checks.single(source, "pings-per-day", (), ["--format", "json"])
        with open(result_path, "rb") as result:
            checks.expect(result.read() == expected and output == b"", f"--output json from {source}")


def job_script_equals_single_machine(checks):
    script = os.path.join(checks.repo, "queries", "ExampleJob.swift")
    status, expected = checks.single(checks.storage, script)
    report, output, err = checks.spark_run(checks.storage, script, options=["--shards", "2"])
    checks.expect(status == 0 and output == expected and output, f"job script: {output!r} vs {expected!r}\n{err[-1500:]}")


def failed_task_is_retried_without_double_counting(checks):
    source = checks.sources()[-1]
    _, expected = checks.single(source, "os-distribution")
    report, output, err = checks.spark_run(source, "os-distribution", options=["--shards", "3"],
                                           env={telemetry_spark.FAIL_ONCE_VARIABLE: "0,2"})
    checks.expect(output == expected, f"after retries: {output!r} vs {expected!r}\n{err[-1500:]}")
    attempts = report["attempts"]
    checks.expect(sorted(attempts) == [0, 1, 2] and attempts[0] >= 1 and attempts[2] >= 1,
                  f"attempts {attempts}: shards 0 and 2 should have been retried")


def merge_refuses_hostile_partials(checks):
    store = checks.single_store(checks.storage)
    part = os.path.join(checks.work, "os.partial")
    other = os.path.join(checks.work, "days.partial")
    checks.expect(checks.telemetry("job", "os-distribution", "--store", store, "--partial", part, "--shard", "0/2").returncode == 0, "partial 0/2")
    one = os.path.join(checks.work, "os1.partial")
    checks.telemetry("job", "os-distribution", "--store", store, "--partial", one, "--shard", "1/2")
    checks.telemetry("job", "pings-per-day", "--store", store, "--partial", other, "--shard", "1/2")
    data = open(part, "rb").read()
    truncated = os.path.join(checks.work, "truncated.partial")
    open(truncated, "wb").write(data[: len(data) * 2 // 3])
    version = os.path.join(checks.work, "v9.partial")
    open(version, "wb").write(data.replace(b'"format_version":1', b'"format_version":9'))
    cases = [
        ("another job", [part, other], "a partial of job pings-per-day"),
        ("truncated", [truncated, one], "truncated partial"),
        ("wrong version", [version, one], "format version 9 is not supported"),
        ("duplicated shard", [part, one, part], "appears more than once"),
        ("missing shard", [one], "missing shard(s) 0/2"),
    ]
    for label, files, message in cases:
        result = checks.telemetry("merge", "--job", "os-distribution", *files)
        stderr = result.stderr.decode()
        checks.expect(result.returncode == 2 and result.stdout == b"" and message in stderr,
                      f"merge with {label}: status {result.returncode}, stdout {result.stdout[:80]!r}, stderr {stderr!r}")
    result = checks.telemetry("merge", "--job", "os-distribution", stdin=b"")
    checks.expect(result.returncode == 2 and result.stdout == b"" and b"no partial results" in result.stderr, f"empty stdin: {result.stderr!r}")
    whole = checks.telemetry("job", "os-distribution", "--store", store, "--partial", "-").stdout
    result = checks.telemetry("merge", "--job", "os-distribution", stdin=whole)
    status, expected = checks.single(checks.storage, "os-distribution")
    checks.expect(result.returncode == status and result.stdout == expected, f"merge from stdin: {result.returncode} {result.stdout!r}")


# Spark checks, in order; each takes the Checks object (one SparkSession: checks.spark).
CHECKS = [every_job_equals_single_machine, filter_where_and_formats, job_script_equals_single_machine,
          failed_task_is_retried_without_double_counting, merge_refuses_hostile_partials]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--telemetry", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--s3-url")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--master", default="local[2,4]",
                        help="local mode, 2 threads; the second number lets a failed task be tried 4 times (plain local[2] never retries)")
    parser.add_argument("--only", help="run only the checks whose name contains this")
    arguments = parser.parse_args()
    from pyspark.sql import SparkSession

    started = time.time()
    spark = (SparkSession.builder.master(arguments.master).appName("telemetry spark checks")
             .config("spark.ui.enabled", "false").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    checks = Checks(spark, arguments)
    try:
        for check in CHECKS:
            if arguments.only and arguments.only not in check.__name__:
                continue
            before = len(checks.failures)
            begun = time.time()
            try:
                check(checks)
            except Exception as error:  # a check that crashes is a failure, with its message
                checks.failures.append(f"{check.__name__}: {error!r}")
                print(f"FAIL {check.__name__} raised {error!r}", flush=True)
            state = "ok" if len(checks.failures) == before else "FAILED"
            print(f"{state} {check.__name__} ({time.time() - begun:.1f} s)", flush=True)
    finally:
        spark.stop()
    print(f"{len(checks.failures)} failure(s) in {time.time() - started:.1f} s", flush=True)
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
