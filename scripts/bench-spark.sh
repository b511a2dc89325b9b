#!/usr/bin/env bash
# Spark benchmark (issue 13): J1 and J2 through the Spark driver (integrations/spark/telemetry_spark.py) in
# local[1] and local[2], against a python_moztelemetry-style PySpark job on the same files and against the
# single-machine path (telemetry import + telemetry job). Prints the results as JSON lines; docs/benchmarks.md
# ("## Spark") holds the figures of a run.
#
#   scripts/bench-spark.sh [--pings N] [--out DIR] [--rounds N] [--shards N] [--no-build]
#
# Steps:
#   1. dataset: ../shared/tools/gen_pings.py --pings N --format storage --seed 42
#      --reasons saved-session=0.75,idle-daily=0.25 (reused from DIR when DIR/MANIFEST.json describes it, as
#      bench-import.sh and bench-query.sh leave it; else generated into DIR/q-N)
#   2. release build: swift build -c release --scratch-path .build-bench --product telemetry
#   3. single machine: telemetry import into a fresh store, then each job (scripts/bench_spark.py single)
#   4. Spark local[1], then local[2] (one SparkSession each, never both at once): J1, J2 through the driver with
#      --shards S (default 4, the same for both), then the Python PySpark job (scripts/bench_spark.py spark)
#   5. every system's J1 and J2 answers are compared; the run FAILS (exit 1) if any differs
# PySpark and Java 17 as for the tests (scripts/install-deps.sh, scripts/test.sh). G's Parquet export is not
# measured here (see docs/benchmarks.md).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/scripts
GEN=${GEN_PINGS:-$REPO/../shared/tools/gen_pings.py}
SCRATCH=$REPO/.build-bench
PYTHON=${BENCH_PYTHON:-$REPO/.venv/bin/python}
SEED=42
REASONS=saved-session=0.75,idle-daily=0.25
PINGS=20000
OUT=$REPO/bench-out
ROUNDS=2
SHARDS=4
BUILD=1
QUIET_WAIT=10

die() { echo "bench-spark: $*" >&2; exit 2; }
say() { echo "==> $*" >&2; }
# shellcheck source=scripts/bench-common.sh
source "$SCRIPTS/bench-common.sh"   # dataset_state, wait_quiet

while (($#)); do
    case $1 in
        --pings) PINGS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --shards) SHARDS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1" ;;
    esac
done
[[ -f $GEN ]] || die "gen_pings.py not found at $GEN (set GEN_PINGS)"
"$PYTHON" -c 'import pyspark' 2>/dev/null || die "no pyspark in $PYTHON (run bash scripts/test.sh)"
command -v java >/dev/null || die "no java on PATH (scripts/install-deps.sh installs openjdk-17-jre-headless)"

mkdir -p "$OUT"
if [[ $(dataset_state "$OUT" "$PINGS") == ok ]]; then DATA=$OUT; else DATA=$OUT/q-$PINGS; fi
if [[ $(dataset_state "$DATA" "$PINGS") != ok ]]; then
    say "generating $PINGS pings into $DATA"
    rm -rf "$DATA"
    timeout 3600 python3 "$GEN" --pings "$PINGS" --format storage --seed "$SEED" --reasons "$REASONS" --out "$DATA" >&2
fi
[[ $(dataset_state "$DATA" "$PINGS") == ok ]] || die "$DATA: the dataset does not match its MANIFEST.json"

if ((BUILD)); then
    say "release build"
    swift build -c release --scratch-path "$SCRATCH" --product telemetry >&2
fi
BIN=$SCRATCH/release/telemetry
[[ -x $BIN ]] || die "no $BIN (run without --no-build)"

RUN=$OUT/spark-run
rm -rf "$RUN"; mkdir -p "$RUN"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
wait_quiet
say "single machine"
"$PYTHON" "$SCRIPTS/bench_spark.py" single --telemetry "$BIN" --storage "$DATA/storage" --work "$RUN" --rounds "$ROUNDS" --out "$RUN/single.json"
for cores in 1 2; do
    wait_quiet
    say "Spark local[$cores] (load $(cut -d' ' -f1 /proc/loadavg))"
    "$PYTHON" "$SCRIPTS/bench_spark.py" spark --master "local[$cores]" --telemetry "$BIN" --storage "$DATA/storage" \
        --shards "$SHARDS" --rounds "$ROUNDS" --out "$RUN/local$cores.json" 2>"$RUN/local$cores.err"
done
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" - "$RUN" <<'PY'
import json, statistics, sys
run = sys.argv[1]
single = json.load(open(f"{run}/single.json"))
spark = {c: json.load(open(f"{run}/local{c}.json")) for c in (1, 2)}
best = min
ok = True
for q in ("J1", "J2"):
    answers = [single[q]["answer"]] + [spark[c][s][q]["answer"] for c in (1, 2) for s in ("telemetry", "python")]
    if any(a != answers[0] for a in answers):
        ok = False
        print(f"ANSWERS DIFFER for {q}", file=sys.stderr)
imp = best(single["import"])
print(json.dumps({"single_import_s": imp, "single_job_s": {q: best(single[q]["seconds"]) for q in ("J1", "J2")},
                  "spark": {f"local[{c}]": {"session_start_s": spark[c]["session_start_s"],
                                            "telemetry_s": {q: best(spark[c]["telemetry"][q]["seconds"]) for q in ("J1", "J2")},
                                            "python_s": {q: best(spark[c]["python"][q]["seconds"]) for q in ("J1", "J2")}} for c in (1, 2)},
                  "answers_agree": ok, "J1": single["J1"]["answer"]}, indent=1))
sys.exit(0 if ok else 1)
PY
