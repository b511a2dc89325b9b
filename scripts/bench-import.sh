#!/usr/bin/env bash
# Import benchmark: TelemetryEngine `telemetry import` vs `xz -dc`, DuckDB and the sqlite3 shell on the same
# pings. Prints one results table and writes it to docs/benchmarks.md ("## Import").
#
#   scripts/bench-import.sh [--pings N] [--out DIR] [--scale] [--repeat N] [--profile] [--no-diag]
#                           [--no-build] [--no-doc] [--keep] [--timeout SECONDS] [--quiet-wait SECONDS]
#
# Steps (each bounded by `timeout`):
#   1. dataset: ../shared/tools/gen_pings.py --pings N --format storage --seed 42
#      --reasons saved-session=0.75,idle-daily=0.25 --out DIR  (pings in DIR/storage; skipped when
#      DIR/MANIFEST.json already describes the same parameters and the files are all there)
#   2. release build: swift build -c release --scratch-path .build-bench
#   3. DuckDB in a venv (bench-out/.venv-bench, or $BENCH_VENV): pip install duckdb
#   4. untimed preparation: decompress all files once into DIR/run/pings.tsv (<uuid>\t<json> lines) and
#      rewrap it as JSON lines for DuckDB's read_json
#   5. measured, one command at a time, after `sync` and a short wait for an idle machine, under /usr/bin/time -v:
#      telemetry import (fresh store), xz -dc (1 and 2 processes), DuckDB read_json and read_csv loads,
#      sqlite3 shell .import; with diagnostics (default) also DuckDB and sqlite3 fed by `xz -dc` through a
#      pipe, telemetry --jobs 1 and telemetry on the same pings as plain-text files; with --scale also telemetry on a 2x dataset (generated into DIR/scale-2N).
#   6. table + goal ratios on stdout and in docs/benchmarks.md (scripts/bench_import_report.py).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/scripts
GEN=${GEN_PINGS:-$REPO/../shared/tools/gen_pings.py}
VENV=${BENCH_VENV:-$REPO/bench-out/.venv-bench}
SCRATCH=$REPO/.build-bench
DOC=$REPO/docs/benchmarks.md
SEED=42
REASONS=saved-session=0.75,idle-daily=0.25

PINGS=20000
OUT=$REPO/bench-out
SCALE=0
REPEAT=1
DIAG=1
PROFILE=0
BUILD=1
WRITE_DOC=1
KEEP=0
TIMEOUT=600          # per measured command
QUIET_WAIT=20        # at most this many seconds of waiting for an idle machine before each measured command
PERF_FREQ=499
ORIG_ARGS=("$@")

usage() {
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Options:
  --pings N          pings in the dataset (default 20000)
  --out DIR          dataset cache and work directory (default: bench-out/ in the repository, git-ignored)
  --scale            also import a 2x dataset (--pings 2N, generated once into DIR/scale-2N) to show that
                     peak RSS does not grow with the dataset (off by default: generation takes ~40 s more)
  --repeat N         rounds of measurements; the table shows the best (least disturbed) run of each
                     command and lists all of them (default 1)
  --profile          also run one import under `perf record` and add a CPU profile by component
  --no-diag          skip the context and diagnostic rows (DuckDB and sqlite3 fed by xz -dc through a pipe,
                     telemetry --jobs 1, telemetry from plain-text files)
  --no-build         use the existing .build-bench/release/telemetry
  --no-doc           do not write docs/benchmarks.md
  --keep             keep DIR/run (decompressed TSV, stores, ...: several GB) after the run
  --timeout SECONDS  limit for each measured command (default 600)
  --quiet-wait SECONDS
                     before each measured command, wait up to this long for the other processes to use
                     less than a quarter of a core (default 20; 0: do not wait)
Environment: GEN_PINGS (path of gen_pings.py), BENCH_VENV (DuckDB venv directory).
EOF
}

die() { echo "bench-import: $*" >&2; exit 2; }
say() { echo "==> $*" >&2; }
# shellcheck source=scripts/bench-common.sh
source "$SCRIPTS/bench-common.sh"   # dataset_state, wait_quiet, measure, set_inproc

while (($#)); do
    case $1 in
        --pings) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--pings needs a positive integer"; PINGS=$2; shift 2 ;;
        --out) [[ -n ${2:-} ]] || die "--out needs a directory"; OUT=$2; shift 2 ;;
        --scale) SCALE=1; shift ;;
        --repeat) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--repeat needs a positive integer"; REPEAT=$2; shift 2 ;;
        --profile) PROFILE=1; shift ;;
        --no-diag) DIAG=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-doc) WRITE_DOC=0; shift ;;
        --keep) KEEP=1; shift ;;
        --timeout) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--timeout needs seconds"; TIMEOUT=$2; shift 2 ;;
        --quiet-wait) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--quiet-wait needs seconds"; QUIET_WAIT=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUN=$OUT/run
PINGS2=$((2 * PINGS))
DATA2=$OUT/scale-$PINGS2

# --- tools ---------------------------------------------------------------------------------------------------
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1  ($2)"); }
need swift "the Swift toolchain"
need python3 "apt-get install -y python3 python3-venv"
need xz "apt-get install -y xz-utils"
need sqlite3 "apt-get install -y sqlite3"
need git "apt-get install -y git"
for tool in timeout sync sort find xargs awk getconf sleep; do need "$tool" "coreutils / findutils / gawk"; done
if [[ ! -x /usr/bin/time || $(/usr/bin/time -v true 2>&1) != *"Maximum resident set size"* ]]; then
    missing+=("/usr/bin/time, GNU time with -v  (apt-get install -y time)")
fi
[[ -f $GEN ]] || missing+=("gen_pings.py at $GEN  (the shared/ tools beside the repository, or set GEN_PINGS=path)")
if [[ ! -x $VENV/bin/python ]] && command -v python3 >/dev/null && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=("python3 venv/ensurepip, to create $VENV  (apt-get install -y python3-venv)")
fi
if ((PROFILE)); then
    if ! command -v perf >/dev/null; then
        missing+=("perf, for --profile  (apt-get install -y linux-perf)")
    elif ! perf stat -e task-clock -o /dev/null true >/dev/null 2>&1; then
        missing+=("a working perf, for --profile  (perf stat fails: check /proc/sys/kernel/perf_event_paranoid)")
    fi
fi
if ((${#missing[@]})); then
    echo "bench-import: missing tools:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 2
fi
for path in "$SCRATCH" "$VENV" "$OUT"; do
    case $path in
        "$REPO"/*) git -C "$REPO" check-ignore -q "$path" ||
            echo "bench-import: warning: ${path#"$REPO"/} is not git-ignored; add it to .gitignore" >&2 ;;
    esac
done

rm -rf "$RUN"
mkdir -p "$RUN"
cleanup() {
    if ((!KEEP)); then
        rm -rf "$RUN/plain" "$RUN"/pings.tsv "$RUN"/pings.jsonl "$RUN"/*.db "$RUN"/*.db-* "$RUN"/*.duckdb \
            "$RUN"/*.duckdb.wal "$RUN"/perf.data* 2>/dev/null || true
    fi
}
trap cleanup EXIT

# --- dataset ---------------------------------------------------------------------------------------------------

ensure_dataset() {   # DIR PINGS
    local dir=$1 pings=$2 state
    state=$(dataset_state "$dir" "$pings")
    case $state in
        ok) say "dataset $dir: cached ($pings pings)"; return ;;
        foreign) die "$dir/storage or $dir/MANIFEST.json exists but is not a gen_pings.py dataset; remove it or use another --out" ;;
        stale) say "dataset $dir: other parameters or incomplete; regenerating"; rm -rf "$dir/storage" "$dir/MANIFEST.json" ;;
    esac
    say "generating $pings pings into $dir (about $((pings / 1000)) s on 2 cores)"
    mkdir -p "$dir"
    timeout 1800 python3 "$GEN" --pings "$pings" --format storage --seed "$SEED" --reasons "$REASONS" --out "$dir" >&2 ||
        die "gen_pings.py failed or timed out (1800 s)"
    [[ $(dataset_state "$dir" "$pings") == ok ]] || die "$dir: the generated dataset does not match its MANIFEST.json"
}

manifest_field() {   # DIR FIELD (of outputs.storage)
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1] + "/MANIFEST.json"))["outputs"]["storage"][sys.argv[2]])' "$1" "$2"
}

ensure_dataset "$OUT" "$PINGS"
((SCALE)) && ensure_dataset "$DATA2" "$PINGS2"

# --- build -----------------------------------------------------------------------------------------------------
TELEMETRY=$SCRATCH/release/telemetry
if ((BUILD)); then
    say "swift build -c release --scratch-path .build-bench (a few minutes from scratch)"
    built=0
    for attempt in 1 2 3; do   # a source edited by someone else during the build fails it: try again
        if (cd "$REPO" && timeout 1800 swift build -c release --scratch-path "$SCRATCH") >"$RUN/build.log" 2>&1; then
            built=1; break
        fi
        grep -q 'was modified during the build' "$RUN/build.log" || break
        say "a source file changed during the build (attempt $attempt); building again"
    done
    if ((!built)); then
        tail -n 30 "$RUN/build.log" >&2
        die "release build failed or timed out (log: $RUN/build.log). If the work tree is broken by edits in progress, rerun with --no-build to measure the last binary built in .build-bench"
    fi
fi
[[ -x $TELEMETRY ]] || die "$TELEMETRY not found (run without --no-build)"
"$TELEMETRY" import --help >/dev/null || die "$TELEMETRY import --help failed"

# --- DuckDB venv -------------------------------------------------------------------------------------------------
if ! "$VENV/bin/python" -c 'import duckdb' >/dev/null 2>&1; then
    say "creating $VENV with duckdb (pip)"
    timeout 120 python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    timeout 600 "$VENV/bin/pip" install -q duckdb >&2 || die "pip install duckdb into $VENV failed (needs PyPI)"
fi
VPY=$VENV/bin/python

# --- untimed preparation ---------------------------------------------------------------------------------------
FILES_LIST=$RUN/files.txt
find "$OUT/storage" -type f -name '*.xz' | LC_ALL=C sort >"$FILES_LIST"
mapfile -t FILES <"$FILES_LIST"
JSON_BYTES=$(manifest_field "$OUT" bytes_uncompressed)
XZ_BYTES=$(manifest_field "$OUT" bytes_on_disk)
say "decompressing ${#FILES[@]} files once into $RUN/pings.tsv (not timed)"
timeout 600 xz -dc "${FILES[@]}" >"$RUN/pings.tsv"
[[ $(stat -c %s "$RUN/pings.tsv") == "$JSON_BYTES" ]] || die "pings.tsv is not $JSON_BYTES bytes"
say "rewrapping as JSON lines for read_json (not timed)"
timeout 600 "$VPY" "$SCRIPTS/bench_duckdb.py" rewrap "$RUN/pings.tsv" "$RUN/pings.jsonl"
if ((DIAG)); then
    say "writing the plain-text copy of the storage tree (not timed)"
    for f in "${FILES[@]}"; do
        rel=${f#"$OUT/storage/"}
        mkdir -p "$RUN/plain/${rel%/*}"
        xz -dc "$f" >"$RUN/plain/${rel%.xz}"
    done
fi
if ((SCALE)); then
    find "$DATA2/storage" -type f -name '*.xz' -exec cat {} + >/dev/null
fi
cat "${FILES[@]}" "$RUN/pings.tsv" "$RUN/pings.jsonl" >/dev/null   # into the page cache
printf 'CREATE TABLE pings(id TEXT, json TEXT);\n.mode tabs\n.import %s pings\n' "$RUN/pings.tsv" >"$RUN/sqlite-import.sql"

# --- measuring -------------------------------------------------------------------------------------------------
printf 'round\tkey\twall_s\trss_kb\tuser_s\tsys_s\tother_cpu_s\tfs_out_blocks\tinproc_s\n' >"$RUN/results.tsv"

json_get() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# The import summary must say: every file imported, the expected pings, no bad lines, no file errors.
check_import() {   # OUTFILE PINGS FILES
    python3 - "$@" <<'EOF' || die "telemetry import did not import the whole dataset (see $1)"
import json, sys
s = json.load(open(sys.argv[1]))
ok = s["pings"] == int(sys.argv[2]) and s["files_imported"] == int(sys.argv[3]) and s["bad_line_count"] == 0 and not s["file_errors"]
sys.exit(0 if ok else 1)
EOF
}

te_import() {   # KEY ROUND ROOT PINGS FILES [extra args]
    local key=$1 round=$2 root=$3 pings=$4 nfiles=$5
    shift 5
    rm -f "$RUN/$key.db" "$RUN/$key.db-wal" "$RUN/$key.db-shm"
    measure "$key" "$round" "$TELEMETRY" import "$root" --store "$RUN/$key.db" --json "$@"
    check_import "$RUN/$key.$round.out" "$pings" "$nfiles"
    # in-process seconds into the row just written
    sed -i '$ s/\t-$/\t'"$(json_get "$RUN/$key.$round.out" seconds)"'/' "$RUN/results.tsv"
    if [[ $key == te && $round == 1 ]]; then   # describe the store the import built, for the report
        sqlite3 "$RUN/$key.db" "SELECT (SELECT count(*) FROM pragma_table_info('pings')) || ' columns, ' ||
            (SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'pings') || ' indexes; file ' ||
            printf('%.0f', (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()) / 1e6) || ' MB'" \
            >"$RUN/te-store.txt" 2>/dev/null || echo "?" >"$RUN/te-store.txt"
        stat -c %s "$RUN/$key.db" >"$RUN/te-store.bytes"
    fi
    rm -f "$RUN/$key.db" "$RUN/$key.db-wal" "$RUN/$key.db-shm"
}

duck_load() {   # KEY ROUND VARIANT INPUT
    local key=$1 round=$2
    rm -f "$RUN/$key.duckdb" "$RUN/$key.duckdb.wal"
    measure "$key" "$round" "$VPY" "$SCRIPTS/bench_duckdb.py" load "$3" "$4" "$RUN/$key.duckdb"
    [[ $(json_get "$RUN/$key.$round.out" rows) == "$PINGS" ]] || die "$key: the DuckDB table does not have $PINGS rows"
    sed -i '$ s/\t-$/\t'"$(json_get "$RUN/$key.$round.out" seconds)"'/' "$RUN/results.tsv"
    rm -f "$RUN/$key.duckdb" "$RUN/$key.duckdb.wal"
}

if ((SCALE)); then FILES2=$(find "$DATA2/storage" -type f -name '*.xz' | wc -l); fi
say "measuring: $REPEAT round(s), one command at a time (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
for ((round = 1; round <= REPEAT; round++)); do
    say "round $round/$REPEAT"
    te_import te "$round" "$OUT/storage" "$PINGS" "${#FILES[@]}"
    MEASURE_OUT=/dev/null measure xz1 "$round" xz -dc "${FILES[@]}"
    MEASURE_OUT=/dev/null MEASURE_IN=$FILES_LIST measure xz2 "$round" xargs -d '\n' -P2 -n 40 xz -dc
    duck_load duck_json "$round" read_json "$RUN/pings.jsonl"
    duck_load duck_csv "$round" read_csv "$RUN/pings.tsv"
    rm -f "$RUN/sqlite.db"
    MEASURE_IN=$RUN/sqlite-import.sql measure sqlite "$round" sqlite3 "$RUN/sqlite.db"
    [[ $(sqlite3 "$RUN/sqlite.db" 'SELECT count(*) FROM pings') == "$PINGS" ]] || die "sqlite3: the table does not have $PINGS rows"
    stat -c %s "$RUN/sqlite.db" >"$RUN/sqlite-db.bytes"
    rm -f "$RUN/sqlite.db"
    if ((DIAG)); then
        # Context, end to end from the xz files: one `xz -dc` process piped into the loader.
        rm -f "$RUN/duck_csv_xz.duckdb" "$RUN/duck_csv_xz.duckdb.wal"
        measure duck_csv_xz "$round" bash -c 'set -o pipefail; vpy=$1 helper=$2 db=$3; shift 3
            xz -dc -- "$@" | "$vpy" "$helper" load read_csv /dev/stdin "$db"' \
            bash "$VPY" "$SCRIPTS/bench_duckdb.py" "$RUN/duck_csv_xz.duckdb" "${FILES[@]}"
        [[ $(json_get "$RUN/duck_csv_xz.$round.out" rows) == "$PINGS" ]] || die "duck_csv_xz: the DuckDB table does not have $PINGS rows"
        rm -f "$RUN/duck_csv_xz.duckdb" "$RUN/duck_csv_xz.duckdb.wal" "$RUN/sqlite_xz.db"
        sqlite3 "$RUN/sqlite_xz.db" 'CREATE TABLE pings(id TEXT, json TEXT)'
        measure sqlite_xz "$round" bash -c 'set -o pipefail; db=$1; shift
            xz -dc -- "$@" | sqlite3 -cmd ".mode tabs" "$db" ".import /dev/stdin pings"' bash "$RUN/sqlite_xz.db" "${FILES[@]}"
        [[ $(sqlite3 "$RUN/sqlite_xz.db" 'SELECT count(*) FROM pings') == "$PINGS" ]] || die "sqlite_xz: the table does not have $PINGS rows"
        rm -f "$RUN/sqlite_xz.db"
        te_import te_j1 "$round" "$OUT/storage" "$PINGS" "${#FILES[@]}" --jobs 1
        te_import te_plain "$round" "$RUN/plain" "$PINGS" "${#FILES[@]}"
    fi
    if ((SCALE)); then
        te_import te_x2 "$round" "$DATA2/storage" "$PINGS2" "$FILES2"
    fi
done

if ((PROFILE)); then
    say "profiling one import: perf record -F $PERF_FREQ -g"
    rm -f "$RUN/prof.db"*
    sync
    timeout "$TIMEOUT" perf record -q -F "$PERF_FREQ" -g -o "$RUN/perf.data" -- \
        "$TELEMETRY" import "$OUT/storage" --store "$RUN/prof.db" --json >"$RUN/prof.out" 2>"$RUN/prof.err" ||
        die "perf record of telemetry import failed (see $RUN/prof.err)"
    timeout "$TIMEOUT" perf script -i "$RUN/perf.data" -F pid,tid,ip,sym,dso 2>/dev/null |
        python3 "$SCRIPTS/bench_import_report.py" profile "$PERF_FREQ" >"$RUN/profile.md"
    rm -f "$RUN/prof.db"*
fi

# --- report ----------------------------------------------------------------------------------------------------
rel() { case $1 in "$REPO"/*) echo "${1#"$REPO"/}" ;; *) echo "$1" ;; esac; }
cmdline="scripts/bench-import.sh"
for a in "${ORIG_ARGS[@]}"; do cmdline+=" $a"; done
{
    printf 'command\t%s\n' "$cmdline"
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'commit\t%s\n' "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf 'binary\t%s\n' "$( ((BUILD)) && echo "built by this run" || echo "--no-build: the binary built $(date -u -r "$TELEMETRY" '+%Y-%m-%d %H:%M UTC'), not by this run")"
    printf 'dirty\t%s\n' "$([[ -n $(git -C "$REPO" status --porcelain -- Sources Package.swift 2>/dev/null) ]] && echo 1 || echo 0)"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu_model\t%s\n' "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
    printf 'mem\t%s\n' "$(awk '/^MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    printf 'kernel\t%s\n' "$(uname -sr)"
    printf 'versions\t%s; xz %s; sqlite3 %s; DuckDB %s (Python %s)\n' \
        "$(swift --version 2>/dev/null | grep -o 'Swift version [^ ]*' | head -1)" \
        "$(xz --version | awk 'NR==1{print $NF}')" "$(sqlite3 --version | cut -d' ' -f1)" \
        "$("$VPY" -c 'import duckdb; print(duckdb.__version__)')" "$("$VPY" -c 'import platform; print(platform.python_version())')"
    printf 'gen_command\tpython3 ../shared/tools/gen_pings.py --pings %s --format storage --seed %s --reasons %s --out %s\n' \
        "$PINGS" "$SEED" "$REASONS" "$(rel "$OUT")"
    printf 'dataset\t%s/storage\n' "$(rel "$OUT")"
    printf 'pings\t%s\nfiles\t%s\nxz_bytes\t%s\njson_bytes\t%s\n' "$PINGS" "${#FILES[@]}" "$XZ_BYTES" "$JSON_BYTES"
    printf 'pings_x2\t%s\n' "$PINGS2"
    printf 'json_bytes_x2\t%s\n' "$( ((SCALE)) && manifest_field "$DATA2" bytes_uncompressed || echo 0)"
    printf 'repeat\t%s\n' "$REPEAT"
    printf 'quiet_wait\t%s\n' "$QUIET_WAIT"
    printf 'te_command\t%s\n' "telemetry import $(rel "$OUT")/storage --store X.db --json"
    printf 'duckdb_version\t%s\n' "$(json_get "$RUN/duck_json.1.out" duckdb_version)"
    printf 'duckdb_threads\t%s\n' "$(json_get "$RUN/duck_json.1.out" threads)"
    printf 'duckdb_sql\t%s\n' "$({ echo '-- read_json (the "DuckDB read_json" row), over {"id": ..., "ping": ...} lines:'
        "$VPY" "$SCRIPTS/bench_duckdb.py" sql read_json; echo ';'
        echo '-- read_csv + json_transform (the second DuckDB row), over the <uuid>\t<json> TSV:'
        "$VPY" "$SCRIPTS/bench_duckdb.py" sql read_csv; echo ';'; } | tr '\n' '\037')"
    printf 'sqlite_version\t%s\n' "$(sqlite3 --version | cut -d' ' -f1)"
    printf 'te_store\t%s\n' "$(cat "$RUN/te-store.txt")"
    printf 'te_store_bytes\t%s\n' "$(cat "$RUN/te-store.bytes")"
    printf 'sqlite_db_bytes\t%s\n' "$(cat "$RUN/sqlite-db.bytes")"
    ((PROFILE)) && printf 'profile_md\t%s\n' "$RUN/profile.md"
    true
} >"$RUN/meta.tsv"

echo
if ((WRITE_DOC)); then
    python3 "$SCRIPTS/bench_import_report.py" table "$RUN" --doc "$DOC"
    say "wrote the \"## Import\" section of $(rel "$DOC"); raw results: $(rel "$RUN")/results.tsv"
else
    python3 "$SCRIPTS/bench_import_report.py" table "$RUN"
fi
