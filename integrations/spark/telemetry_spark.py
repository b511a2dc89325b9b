#!/usr/bin/env python3
"""Run a TelemetryEngine job on Apache Spark: one `telemetry` process per shard, merged exactly (docs/scale-out.md).

    spark-submit [--master URL] [--files /path/to/telemetry] telemetry_spark.py \
        job NAME SOURCE [--filter F.json] [--where SQL] [--schema S.json] [--histogram-cache DIR] \
        [--endpoint-url URL] [--region R] [--no-sign-request] [--shards N] [--telemetry PATH] \
        [--format tsv|csv|json] [--output FILE] [-- JOB ARGS…]
    python -m telemetry_spark job …      (PYTHONPATH=integrations/spark; add --master local[2])

SOURCE is s3://BUCKET/PREFIX/ (a storage-layout root in S3 or an S3-compatible store) or a local storage-layout
directory (which must be readable at the same path on every executor). The job's own arguments come after `--`
(e.g. `-- --histogram GC_MS`).

What happens:
1. On the driver, `telemetry import --dry-run SOURCE [--filter F]` lists the selected storage files with their sizes:
   the binary applies the filter to the keys, exactly as `telemetry import` does (the rules are not re-implemented
   here).
2. The files, in the binary's order, are cut into at most N contiguous shards of near-equal bytes.
3. Each Spark task (one per shard) runs, in a fresh temporary directory of its own attempt, `telemetry import`
   of its files (`--keys-from` / `--paths-from` list files) into a temporary store and
   `telemetry job NAME --partial FILE --shard I/N --attempt A`, and returns the partial's bytes as its result. The
   child processes get argument lists, never a shell string (SPARK-7735); a child failing fails the task.
4. The driver writes the one partial Spark kept per shard and runs `telemetry merge --job NAME`, which refuses
   duplicated or missing shards: a retried or speculative task cannot count twice.

The telemetry binary: --telemetry PATH, else $TELEMETRY_BIN, else `telemetry` on PATH. On an executor a file of
that name shipped with `spark-submit --files` (SparkFiles) is used first.

For tests: TELEMETRY_SPARK_FAIL_ONCE=I,J makes the first attempt of the tasks of shards I, J fail after computing
their partial (the retry must give the same answer; use a master with retries, e.g. local[2,4]).
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

FAIL_ONCE_VARIABLE = "TELEMETRY_SPARK_FAIL_ONCE"


class DriverError(Exception):
    """A failure the driver reports on stderr (exit status 2)."""


def parse_arguments(argv):
    job_arguments = []
    if "--" in argv:
        split = argv.index("--")
        argv, job_arguments = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(prog="telemetry_spark.py", description="Run a telemetry job on Spark (docs/scale-out.md).")
    commands = parser.add_subparsers(dest="command", required=True)
    job = commands.add_parser("job", help="run a built-in job (or a .swift job script) over SOURCE")
    job.add_argument("name", help="built-in job name (telemetry job --list) or FILE.swift")
    job.add_argument("source", help="s3://BUCKET/PREFIX/ or a local storage-layout directory")
    job.add_argument("--filter", help="job filter JSON (applied to the keys, then by the job)")
    job.add_argument("--where", dest="where_sql", help="SQL condition on the pings columns (telemetry job --where)")
    job.add_argument("--schema", help="dimension schema JSON of the layout (default: the seed's)")
    job.add_argument("--histogram-cache", help="Histograms.json cache directory (same path on every executor)")
    job.add_argument("--endpoint-url", help="S3-compatible endpoint (path-style)")
    job.add_argument("--region", help="the bucket's region")
    job.add_argument("--no-sign-request", action="store_true", help="anonymous S3 requests")
    job.add_argument("--shards", type=int, help="number of shards (default: Spark's default parallelism)")
    job.add_argument("--telemetry", help="path of the telemetry binary (default: $TELEMETRY_BIN, else on PATH)")
    job.add_argument("--format", default="tsv", choices=["tsv", "csv", "json"])
    job.add_argument("--output", help="write the result here instead of standard output")
    job.add_argument("--master", help="Spark master when not set by spark-submit (e.g. local[2])")
    arguments = parser.parse_args(argv)
    arguments.job_arguments = job_arguments
    if arguments.shards is not None and arguments.shards < 1:
        parser.error("--shards must be at least 1")
    return arguments


def telemetry_binary(explicit):
    """The binary on the driver: --telemetry, $TELEMETRY_BIN, or `telemetry` on PATH."""
    path = explicit or os.environ.get("TELEMETRY_BIN") or shutil.which("telemetry")
    if not path or not os.access(path, os.X_OK):
        raise DriverError("no telemetry binary: give --telemetry PATH, set TELEMETRY_BIN, or put telemetry on PATH")
    return os.path.abspath(path)


def run_child(argv, what, accept=(0,), env=None):
    """Runs argv (a list, no shell); returns the completed process. Raises DriverError unless the status is accepted."""
    completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if completed.returncode not in accept:
        message = completed.stderr.decode("utf-8", "replace").strip()
        raise DriverError(f"{what} failed (exit status {completed.returncode}): {message}")
    return completed


def s3_options(arguments):
    options = []
    if arguments.endpoint_url:
        options += ["--endpoint-url", arguments.endpoint_url]
    if arguments.region:
        options += ["--region", arguments.region]
    if arguments.no_sign_request:
        options += ["--no-sign-request"]
    return options


def list_files(binary, arguments, scratch):
    """[(size, key or path)] selected under SOURCE, in the order `telemetry import` would import them."""
    argv = [binary, "import", "--dry-run", "--store", os.path.join(scratch, "listing.db")]
    if arguments.filter:
        argv += ["--filter", arguments.filter]
    if arguments.schema:
        argv += ["--schema", arguments.schema]
    argv += s3_options(arguments) if is_s3(arguments.source) else []
    argv.append(arguments.source)
    listing = run_child(argv, "listing " + arguments.source).stdout.decode("utf-8")
    files = []
    notes = []
    for line in listing.split("\n"):
        size, tab, name = line.partition("\t")
        if tab and size.isdigit():
            files.append((int(size), name))
        elif line:
            notes.append(line)
    return files, notes


def is_s3(source):
    return source.startswith("s3://")


def shard_files(files, count):
    """Cuts files (in order) into at most `count` contiguous shards of near-equal bytes: a file goes to the shard
    holding its middle byte, so each shard is within one file of total/count bytes. Empty shards are dropped;
    no files give one empty shard (the merge then prints what a job over an empty store prints)."""
    if not files:
        return [[]]
    count = max(1, min(count, len(files)))
    total = sum(size for size, _ in files)
    shards = [[] for _ in range(count)]
    before = 0
    for position, (size, name) in enumerate(files):
        if total > 0:
            index = min(count - 1, ((2 * before + size) * count) // (2 * total))
        else:
            index = position * count // len(files)
        shards[index].append(name)
        before += size
    return [shard for shard in shards if shard]


def executor_binary(path):
    """The binary on an executor: a file of the same name shipped with --files, else `path` itself."""
    try:
        from pyspark import SparkFiles

        shipped = os.path.join(SparkFiles.getRootDirectory(), os.path.basename(path))
        if os.path.isfile(shipped):
            if not os.access(shipped, os.X_OK):
                os.chmod(shipped, 0o755)
            return shipped
    except Exception:  # not inside Spark (unit use)
        pass
    return path


def shipped_file(path):
    """A file shipped with SparkContext.addFile under its base name, else `path`."""
    try:
        from pyspark import SparkFiles

        candidate = SparkFiles.get(os.path.basename(path))
        if os.path.isfile(candidate):
            return candidate
    except Exception:
        pass
    return path


def make_task(plan):
    """The function run by each Spark task over its one-element partition [(index, files)]."""

    def run_shard(partition):
        from pyspark import TaskContext

        context = TaskContext.get()
        attempt = context.attemptNumber() if context else 0
        for index, files in partition:
            yield compute_partial(plan, index, files, attempt)

    return run_shard


def compute_partial(plan, index, files, attempt):
    binary = executor_binary(plan["binary"])
    work = tempfile.mkdtemp(prefix=f"telemetry-shard{index}-attempt{attempt}-")
    try:
        listing = os.path.join(work, "files.txt")
        with open(listing, "w", encoding="utf-8") as out:
            out.write("".join(name + "\n" for name in files))
        store = os.path.join(work, "shard.db")
        threads = str(plan["threads"])
        # The filter and schema travel in the plan (their text), so executors need no copy of the driver's files.
        for key in ("filter", "schema"):
            if plan[key + "_text"] is not None:
                path = os.path.join(work, key + ".json")
                with open(path, "wb") as out:
                    out.write(plan[key + "_text"])
                plan = dict(plan, **{key: path})
        job = shipped_file(plan["job"]) if plan["job"].endswith(".swift") else plan["job"]
        argv = [binary, "import", "--json", "--store", store, "--jobs", threads]
        if plan["filter"]:
            argv += ["--filter", plan["filter"]]
        if plan["schema"]:
            argv += ["--schema", plan["schema"]]
        if plan["histogram_cache"]:
            argv += ["--histogram-cache", plan["histogram_cache"]]
        if plan["s3"] is not None:
            argv += plan["s3"] + ["--keys-from", listing, "--cache-dir", os.path.join(work, "cache"), plan["source"]]
        else:
            argv += ["--paths-from", listing]
        # Exit 1: bad lines or damaged files, recorded in the summary (reported by the driver); anything else fails.
        imported = run_child(argv, f"shard {index}: telemetry import", accept=(0, 1))
        summary = parse_summary(imported.stdout)
        partial = os.path.join(work, "shard.partial")
        argv = [binary, "job", job, *plan["job_arguments"], "--store", store, "--mappers", threads,
                "--partial", partial, "--shard", f"{index}/{plan['shards']}", "--attempt", str(attempt)]
        if plan["filter"]:
            argv += ["--filter", plan["filter"]]
        if plan["where"] is not None:
            argv += ["--where", plan["where"]]
        run_child(argv, f"shard {index}: telemetry job --partial")
        with open(partial, "rb") as source:
            data = source.read()
        if attempt == 0 and index in plan["fail_once"]:
            raise RuntimeError(f"{FAIL_ONCE_VARIABLE}: injected failure of shard {index}, attempt 0 (after its partial was written)")
        return {"index": index, "attempt": attempt, "partial": base64.b64encode(data).decode("ascii"),
                "import": summary, "import_status": imported.returncode,
                "import_messages": imported.stderr.decode("utf-8", "replace")[-4000:]}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_summary(stdout):
    """The JSON summary `telemetry import --json` prints (the last JSON object of its standard output)."""
    text = stdout.decode("utf-8", "replace")
    start = text.rfind("\n{")
    start = 0 if start < 0 and text.startswith("{") else start + 1
    try:
        return json.loads(text[start:])
    except ValueError:
        return {}


def fail_once_shards():
    value = os.environ.get(FAIL_ONCE_VARIABLE, "")
    return {int(part) for part in value.split(",") if part.strip().isdigit()}


def run(spark, argv, stdout=None, stderr=None):
    """Runs the driver with `argv` on `spark` (a SparkSession). Returns a report dict:
    {"status": exit status, "shards": N, "attempts": {index: attempt}, "files": count, "bytes": total,
     "pings_imported": n, "import_failures": n}. The result goes to --output or `stdout` (bytes)."""
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr
    arguments = parse_arguments(argv)
    binary = telemetry_binary(arguments.telemetry)
    scratch = tempfile.mkdtemp(prefix="telemetry-spark-driver-")
    try:
        files, notes = list_files(binary, arguments, scratch)
        # Keys or files outside the storage layout are never imported; a single-machine import reports them too.
        outside_layout = [note for note in notes if "outside the storage layout" in note]
        for note in outside_layout:
            stderr.write(f"telemetry_spark: {note}\n")
        sc = spark.sparkContext
        if __name__ != "__main__":
            # Imported (python -m, tests): the tasks refer to this module, which the Python workers must import.
            sc.addPyFile(os.path.abspath(__file__))
        wanted = arguments.shards or sc.defaultParallelism
        shards = shard_files(files, wanted)
        job_name = arguments.name
        if job_name.endswith(".swift"):
            sc.addFile(os.path.abspath(job_name))
        plan = {
            "binary": binary, "job": os.path.abspath(job_name) if job_name.endswith(".swift") else job_name,
            "job_arguments": arguments.job_arguments, "filter": absolute(arguments.filter), "where": arguments.where_sql,
            "filter_text": read_bytes(arguments.filter), "schema_text": read_bytes(arguments.schema),
            "schema": absolute(arguments.schema), "histogram_cache": absolute(arguments.histogram_cache),
            "s3": s3_options(arguments) if is_s3(arguments.source) else None, "source": arguments.source,
            "shards": len(shards), "threads": int(sc.getConf().get("spark.task.cpus", "1")), "fail_once": fail_once_shards(),
        }
        rdd = sc.parallelize(list(enumerate(shards)), len(shards))
        results = rdd.mapPartitions(make_task(plan)).collect()
        # Spark keeps one successful result per partition; the merge checks it again (duplicated or missing shards).
        partials = []
        attempts = {}
        pings = 0
        failures = 0
        for result in sorted(results, key=lambda r: r["index"]):
            path = os.path.join(scratch, f"shard-{result['index']}.partial")
            with open(path, "wb") as out:
                out.write(base64.b64decode(result["partial"]))
            partials.append(path)
            attempts[result["index"]] = result["attempt"]
            summary = result["import"]
            pings += int(summary.get("pings", 0))
            if result["import_status"] != 0:
                failures += 1
                stderr.write(f"telemetry_spark: shard {result['index']}: the import reported failures "
                             f"(bad lines {summary.get('bad_line_count', '?')}, file errors {len(summary.get('file_errors', []))}):\n"
                             + result["import_messages"])
        merge = [binary, "merge", "--job", plan["job"], "--format", arguments.format]
        if arguments.output:
            merge += ["--output", arguments.output]
        merged = subprocess.run(merge + partials, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout.write(merged.stdout)
        stdout.flush()
        stderr.write(merged.stderr.decode("utf-8", "replace"))
        total = sum(size for size, _ in files)
        stderr.write(f"telemetry_spark: {len(files)} file(s), {total} bytes in {len(shards)} shard(s); "
                     f"{pings} pings imported; attempts {attempts}\n")
        status = merged.returncode
        if status == 0 and (failures or outside_layout):
            status = 1
        return {"status": status, "shards": len(shards), "attempts": attempts, "files": len(files), "bytes": total,
                "pings_imported": pings, "import_failures": failures}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_bytes(path):
    if not path:
        return None
    try:
        with open(path, "rb") as source:
            return source.read()
    except OSError as error:
        raise DriverError(f"{path}: {error.strerror}") from error


def absolute(path):
    return os.path.abspath(path) if path else None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    arguments = parse_arguments(argv)  # usage errors before Spark starts
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(f"telemetry {arguments.name}")
    if arguments.master:
        builder = builder.master(arguments.master)
    spark = builder.getOrCreate()
    try:
        return run(spark, argv)["status"]
    except DriverError as error:
        sys.stderr.write(f"telemetry_spark: {error}\n")
        return 2
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
