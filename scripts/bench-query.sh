#!/usr/bin/env bash
# Query benchmark (issue 5): TelemetryEngine (SQL and job forms, warm store) against DuckDB (hot table and cold
# JSON lines), sqlite3 with JSON1 and a seed-style Python multiprocessing MapReduce, on the same pings and with
# the same answers. Prints one results table and writes it to docs/benchmarks.md ("## Query").
#
#   scripts/bench-query.sh [--pings N] [--scale] [--scale-pings N] [--out DIR] [--repeat N] [--slow-runs N]
#                          [--no-build] [--scratch DIR] [--no-doc] [--keep] [--timeout SECONDS] [--quiet-wait SECONDS]
#
# Queries: J1 ping count by info.OS; J2 element-wise sum of the 50 GC_MS buckets by info.appUpdateChannel;
# J3 J2 for reason saved-session and channel release or beta (details: scripts/bench_query.py).
# Steps (each bounded by `timeout`):
#   1. dataset: ../shared/tools/gen_pings.py --pings N --format storage --seed 42
#      --reasons saved-session=0.75,idle-daily=0.25 (reused from DIR when DIR/MANIFEST.json describes it,
#      as bench-import.sh leaves it; else generated once into DIR/q-N)
#   2. release build: swift build -c release --scratch-path .build-bench --product telemetry
#   3. DuckDB in a venv (bench-out/.venv-bench, or $BENCH_VENV): pip install duckdb
#   4. untimed preparation per dataset, in DIR/query-run/N: telemetry import + reindex into a store; the payloads
#      as JSON lines (one ping per line) for DuckDB; a sqlite3 table pings(id, json)
#   5. measured one system at a time, after a short wait for an idle machine (scripts/bench_query.py measure);
#      every system's answers are compared and the run FAILS (exit 1) if any differs
#   6. with --scale the same on 100,000 pings; table, goal ratios and growth on stdout and in docs/benchmarks.md
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/scripts
GEN=${GEN_PINGS:-$REPO/../shared/tools/gen_pings.py}
VENV=${BENCH_VENV:-$REPO/bench-out/.venv-bench}
SCRATCH=$REPO/.build-bench
DOC=$REPO/docs/benchmarks.md
SEED=42
REASONS=saved-session=0.75,idle-daily=0.25
# J1 of the issue's benchmark dataset (20,000 pings, seed 42): checked on top of the agreement of the systems.
EXPECT_J1_20000='{"Darwin": 1770, "Linux": 1167, "WINNT": 17063}'

PINGS=20000
SCALE=0
SCALE_PINGS=100000
OUT=$REPO/bench-out
REPEAT=10
SLOW_RUNS=2
BUILD=1
WRITE_DOC=1
KEEP=0
TIMEOUT=1200         # per measured command (one system's queries at one size)
QUIET_WAIT=10        # at most this many seconds of waiting for an idle machine before each measurement
ORIG_ARGS=("$@")

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Options:
  --pings N          pings in the dataset (default 20000: the issue's benchmark dataset)
  --scale            also run everything on --scale-pings pings and show how each system's time grows
  --scale-pings N    pings of the --scale run (default 100000; generated once into DIR/q-N, about 75 s)
  --out DIR          dataset cache and work directory (default: bench-out/ in the repository, git-ignored)
  --repeat N         runs of each query in one process for TelemetryEngine (`--repeat N`) and DuckDB's hot
                     table; "hot" is the median of the runs after the first (default 10, at least 2)
  --slow-runs N      runs of each query for the slow systems (DuckDB cold, sqlite3, Python MapReduce) on the
                     first dataset (default 2; the --scale dataset always gets 1)
  --no-build         use the existing telemetry binary of the scratch directory
  --scratch DIR      swift build scratch directory (default .build-bench)
  --no-doc           do not write docs/benchmarks.md
  --keep             keep DIR/query-run/N (store, JSON lines, sqlite database: ~2.2 GB per 20,000 pings)
  --timeout SECONDS  limit for each measured command, i.e. one system's queries on one dataset (default 1200)
  --quiet-wait SECONDS
                     before each measurement, wait up to this long for the other processes to use less than a
                     quarter of a core (default 10; 0: do not wait)
Environment: GEN_PINGS (path of gen_pings.py), BENCH_VENV (DuckDB venv directory).
EOF
}

die() { echo "bench-query: $*" >&2; exit 2; }
say() { echo "==> $*" >&2; }
# shellcheck source=scripts/bench-common.sh
source "$SCRIPTS/bench-common.sh"   # dataset_state

while (($#)); do
    case $1 in
        --pings) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--pings needs a positive integer"; PINGS=$2; shift 2 ;;
        --scale) SCALE=1; shift ;;
        --scale-pings) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--scale-pings needs a positive integer"; SCALE_PINGS=$2; shift 2 ;;
        --out) [[ -n ${2:-} ]] || die "--out needs a directory"; OUT=$2; shift 2 ;;
        --repeat) [[ ${2:-} =~ ^[1-9][0-9]*$ && $2 -ge 2 ]] || die "--repeat needs an integer >= 2"; REPEAT=$2; shift 2 ;;
        --slow-runs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--slow-runs needs a positive integer"; SLOW_RUNS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --scratch) [[ -n ${2:-} ]] || die "--scratch needs a directory"; SCRATCH=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
        --no-doc) WRITE_DOC=0; shift ;;
        --keep) KEEP=1; shift ;;
        --timeout) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--timeout needs seconds"; TIMEOUT=$2; shift 2 ;;
        --quiet-wait) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--quiet-wait needs seconds"; QUIET_WAIT=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
((SCALE == 0 || SCALE_PINGS != PINGS)) || die "--scale-pings is the same as --pings"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
QROOT=$OUT/query-run

# --- tools ---------------------------------------------------------------------------------------------------
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1  ($2)"); }
need swift "the Swift toolchain"
need python3 "apt-get install -y python3 python3-venv"
need xz "apt-get install -y xz-utils"
need sqlite3 "apt-get install -y sqlite3"
need git "apt-get install -y git"
for tool in timeout sort find xargs cut awk stat; do need "$tool" "coreutils / findutils / gawk"; done
[[ -f $GEN ]] || missing+=("gen_pings.py at $GEN  (the shared/ tools beside the repository, or set GEN_PINGS=path)")
if [[ ! -x $VENV/bin/python ]] && command -v python3 >/dev/null && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=("python3 venv/ensurepip, to create $VENV  (apt-get install -y python3-venv)")
fi
if ((${#missing[@]})); then
    echo "bench-query: missing tools:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 2
fi
for path in "$SCRATCH" "$VENV" "$OUT"; do
    case $path in
        "$REPO"/*) git -C "$REPO" check-ignore -q "$path" ||
            echo "bench-query: warning: ${path#"$REPO"/} is not git-ignored; add it to .gitignore" >&2 ;;
    esac
done
mkdir -p "$QROOT"

# Heavy per-dataset work files (GBs) go when the run ends, unless --keep.
WORKS=()
cleanup() {
    if ((!KEEP)); then
        local w
        for w in "${WORKS[@]}"; do
            rm -rf "$w"/te.db "$w"/te.db[.-]* "$w/pings.jsonl" "$w/sqlite.db" 2>/dev/null || true
        done
    fi
}
trap cleanup EXIT

# --- datasets ----------------------------------------------------------------------------------------------------

# DIR of the dataset of N pings: OUT itself when it holds exactly that (bench-import.sh's cache; never regenerated
# here), else OUT/q-N, generated when missing or stale.
dataset_dir() {   # PINGS
    if [[ $(dataset_state "$OUT" "$1") == ok ]]; then echo "$OUT"; else echo "$OUT/q-$1"; fi
}

ensure_dataset() {   # DIR PINGS
    local dir=$1 pings=$2 state
    state=$(dataset_state "$dir" "$pings")
    case $state in
        ok) say "dataset $dir: cached ($pings pings)"; return ;;
        foreign) die "$dir/storage or $dir/MANIFEST.json exists but is not a gen_pings.py dataset; remove it or use another --out" ;;
        stale) say "dataset $dir: other parameters or incomplete; regenerating"; rm -rf "$dir/storage" "$dir/MANIFEST.json" ;;
    esac
    say "generating $pings pings into $dir (about $((pings * 3 / 4000)) s on 2 cores)"
    mkdir -p "$dir"
    timeout 3600 python3 "$GEN" --pings "$pings" --format storage --seed "$SEED" --reasons "$REASONS" --out "$dir" >&2 ||
        die "gen_pings.py failed or timed out (3600 s)"
    [[ $(dataset_state "$dir" "$pings") == ok ]] || die "$dir: the generated dataset does not match its MANIFEST.json"
}

SIZES=("$PINGS")
((SCALE)) && SIZES+=("$SCALE_PINGS")
declare -A DATA
for n in "${SIZES[@]}"; do
    DATA[$n]=$(dataset_dir "$n")
    ensure_dataset "${DATA[$n]}" "$n"
done

# --- build -----------------------------------------------------------------------------------------------------
TELEMETRY=$SCRATCH/release/telemetry
BUILD_LOG=$QROOT/build.log
if ((BUILD)); then
    say "swift build -c release --scratch-path ${SCRATCH#"$REPO"/} --product telemetry (a few minutes from scratch)"
    built=0
    for attempt in 1 2 3; do   # a source edited by someone else during the build fails it: try again
        if (cd "$REPO" && timeout 2400 swift build -c release --scratch-path "$SCRATCH" --product telemetry) >"$BUILD_LOG" 2>&1; then
            built=1; break
        fi
        grep -q 'was modified during the build' "$BUILD_LOG" || break
        say "a source file changed during the build (attempt $attempt); building again"
    done
    if ((!built)); then
        tail -n 30 "$BUILD_LOG" >&2
        die "release build failed or timed out (log: $BUILD_LOG). If the work tree is broken by edits in progress, rerun with --no-build to measure the last binary built in ${SCRATCH#"$REPO"/}"
    fi
fi
[[ -x $TELEMETRY ]] || die "$TELEMETRY not found (run without --no-build)"
# The source state the binary was built from (taken now: others may commit or edit while the benchmark runs).
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$([[ -n $(git -C "$REPO" status --porcelain -- Sources Package.swift 2>/dev/null) ]] && echo 1 || echo 0)
timeout 60 "$TELEMETRY" query --help >/dev/null || die "$TELEMETRY query --help failed"
BINARY_DATE=$(date -u -r "$TELEMETRY" '+%Y-%m-%d %H:%M UTC')

# --- DuckDB venv -------------------------------------------------------------------------------------------------
if ! "$VENV/bin/python" -c 'import duckdb' >/dev/null 2>&1; then
    say "creating $VENV with duckdb (pip)"
    timeout 120 python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    timeout 600 "$VENV/bin/pip" install -q duckdb >&2 || die "pip install duckdb into $VENV failed (needs PyPI)"
fi
VPY=$VENV/bin/python

# --- per dataset: untimed preparation, then the measurements ------------------------------------------------------
json_get() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

prepare() {   # N DATA WORK
    local n=$1 data=$2 work=$3 files nfiles
    rm -rf "$work"
    mkdir -p "$work"
    WORKS+=("$work")
    files=$work/files.txt
    find "$data/storage" -type f -name '*.xz' | LC_ALL=C sort >"$files"
    nfiles=$(wc -l <"$files")
    say "[$n] telemetry import + reindex into $work/te.db (not timed)"
    timeout "$TIMEOUT" "$TELEMETRY" import "$data/storage" --store "$work/te.db" --json >"$work/import.json" 2>"$work/import.err" ||
        { tail -n 20 "$work/import.err" >&2; die "telemetry import failed or timed out (see $work/import.err)"; }
    python3 - "$work/import.json" "$n" "$nfiles" <<'EOF' || die "telemetry import did not import the whole dataset (see $work/import.json)"
import json, sys
s = json.load(open(sys.argv[1]))
ok = s["pings"] == int(sys.argv[2]) and s["files_imported"] == int(sys.argv[3]) and s["bad_line_count"] == 0 and not s["file_errors"]
sys.exit(0 if ok else 1)
EOF
    # Histogram column files: import may build them (or mark them stale); reindex makes sure they are there.
    timeout "$TIMEOUT" "$TELEMETRY" reindex --store "$work/te.db" >"$work/reindex.out" 2>&1 ||
        { tail -n 20 "$work/reindex.out" >&2; die "telemetry reindex failed or timed out (see $work/reindex.out)"; }
    say "[$n] payloads as JSON lines for DuckDB, and a sqlite3 table (id, json) (not timed)"
    xargs -d '\n' -a "$files" timeout "$TIMEOUT" xz -dc -- | cut -f2- >"$work/pings.jsonl"
    [[ $(wc -l <"$work/pings.jsonl") == "$n" ]] || die "$work/pings.jsonl does not have $n lines"
    sqlite3 "$work/sqlite.db" 'CREATE TABLE pings(id TEXT, json TEXT)'
    xargs -d '\n' -a "$files" timeout "$TIMEOUT" xz -dc -- |
        timeout "$TIMEOUT" sqlite3 -cmd '.mode tabs' "$work/sqlite.db" '.import /dev/stdin pings'
    [[ $(sqlite3 "$work/sqlite.db" 'SELECT count(*) FROM pings') == "$n" ]] || die "sqlite3: the table does not have $n rows"
    du -sb "$work"/te.db "$work"/te.db.* "$work/pings.jsonl" "$work/sqlite.db" 2>/dev/null |
        awk '{printf "%s%s %.0f MB", (NR > 1 ? ", " : ""), $2, $1 / 1e6} END {print ""}' | sed "s|$work/||g" >"$work/sizes.txt"
}

RESULTS=()
for i in "${!SIZES[@]}"; do
    n=${SIZES[$i]}
    work=$QROOT/$n
    prepare "$n" "${DATA[$n]}" "$work"
    slow=$SLOW_RUNS
    ((i == 0)) || slow=1
    expect=()
    [[ $n == 20000 ]] && expect=(--expect-j1 "$EXPECT_J1_20000")
    say "[$n] measuring: one system at a time (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
    # The measuring driver bounds every command it starts by --timeout; this outer limit covers all of them.
    rc=0
    timeout $((TIMEOUT * 8)) "$VPY" "$SCRIPTS/bench_query.py" measure --pings "$n" --storage "${DATA[$n]}/storage" \
        --work "$work" --telemetry "$TELEMETRY" --out "$work/results.json" --repeat "$REPEAT" --slow-runs "$slow" \
        --timeout "$TIMEOUT" --quiet-wait "$QUIET_WAIT" "${expect[@]}" || rc=$?
    ((rc != 3)) || { echo "bench-query: the answers differ (above); nothing written to docs/benchmarks.md" >&2; exit 1; }
    ((rc != 124 && rc != 137)) || die "[$n] the measurements timed out"
    ((rc == 0)) || die "[$n] the measurements failed (exit $rc)"
    RESULTS+=("$work/results.json")
    ((KEEP)) || rm -rf "$work"/te.db "$work"/te.db[.-]* "$work/pings.jsonl" "$work/sqlite.db"
done

# --- report ----------------------------------------------------------------------------------------------------
rel() { case $1 in "$REPO"/*) echo "${1#"$REPO"/}" ;; *) echo "$1" ;; esac; }
cmdline="scripts/bench-query.sh"
for a in "${ORIG_ARGS[@]}"; do cmdline+=" $a"; done
META=$QROOT/meta.tsv
{
    printf 'command\t%s\n' "$cmdline"
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'commit\t%s\n' "$COMMIT"
    printf 'binary\t%s\n' "$( ((BUILD)) && echo "built by this run ($(rel "$SCRATCH"))" || echo "--no-build: $(rel "$TELEMETRY") built $BINARY_DATE, not by this run")"
    printf 'dirty\t%s\n' "$DIRTY"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu_model\t%s\n' "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
    printf 'mem\t%s\n' "$(awk '/^MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    printf 'kernel\t%s\n' "$(uname -sr)"
    printf 'versions\t%s; Python %s\n' "$(swift --version 2>/dev/null | grep -o 'Swift version [^ ]*' | head -1)" \
        "$("$VPY" -c 'import platform; print(platform.python_version())')"
    printf 'quiet_wait\t%s\n' "$QUIET_WAIT"
    for n in "${SIZES[@]}"; do
        printf 'gen_command_%s\tpython3 ../shared/tools/gen_pings.py --pings %s --format storage --seed %s --reasons %s --out %s\n' \
            "$n" "$n" "$SEED" "$REASONS" "$(rel "${DATA[$n]}")"
        printf 'dataset_%s\t%s/storage\n' "$n" "$(rel "${DATA[$n]}")"
        printf 'dataset_desc_%s\t%s; untimed work files: %s\n' "$n" \
            "$(python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["outputs"]["storage"]; print("%d files, %.1f MB xz, %.1f MB of JSON lines" % (s["files"], s["bytes_on_disk"] / 1e6, s["bytes_uncompressed"] / 1e6))' "${DATA[$n]}/MANIFEST.json")" \
            "$(cat "$QROOT/$n/sizes.txt")"
    done
} >"$META"

echo
if ((WRITE_DOC)); then
    "$VPY" "$SCRIPTS/bench_query.py" report "${RESULTS[@]}" --meta "$META" --doc "$DOC"
    say "wrote the \"## Query\" section of $(rel "$DOC"); raw results: $(for r in "${RESULTS[@]}"; do printf '%s ' "$(rel "$r")"; done)"
else
    "$VPY" "$SCRIPTS/bench_query.py" report "${RESULTS[@]}" --meta "$META"
fi
