#!/usr/bin/env bash
# Convert benchmark: TelemetryEngine `telemetry convert` on a raw submission log vs the cost of the work no
# converter can avoid (inflating the gzipped payloads + xz-compressing the output). Prints one results table and
# writes it to docs/benchmarks.md ("## Convert").
#
#   scripts/bench-convert.sh [--pings N] [--out DIR] [--jobs N] [--repeat N] [--profile] [--no-diag]
#                            [--no-build] [--no-doc] [--keep] [--timeout SECONDS] [--quiet-wait SECONDS]
#
# Steps (each bounded by `timeout`):
#   1. dataset: ../shared/tools/gen_pings.py --pings N --format rawlog --seed 42
#      --reasons saved-session=0.75,idle-daily=0.25 --out DIR/convert-N  (4 raw logs in DIR/convert-N/rawlog and
#      the histogram cache in DIR/convert-N/histogram-cache; skipped when its MANIFEST.json already describes the
#      same parameters and the files are all there)
#   2. release build: swift build -c release --scratch-path .build-bench
#   3. measured, one command at a time, after `sync` and a wait for an idle machine, under /usr/bin/time -v:
#      telemetry convert RAWLOG --out OUT --histogram-cache CACHE --jobs 2 --json (fresh OUT; its summary and
#      output checked against the MANIFEST after every run), and the bound: (a) inflating every gzipped payload
#      with zlib (scripts/bench_convert.py gunzip, only the zlib calls timed) and (b) `xz -0 -C crc64 -T1` over
#      the uncompressed storage files that convert wrote (decompressed once, untimed, after the first run), also
#      as 2 processes; with diagnostics (default) also telemetry convert --jobs 1.
#   4. with --profile, one convert under `perf record -g`, summarised by pipeline stage.
#   5. table + goal ratio on stdout and in docs/benchmarks.md (scripts/bench_convert_report.py).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/scripts
GEN=${GEN_PINGS:-$REPO/../shared/tools/gen_pings.py}
SCRATCH=$REPO/.build-bench
DOC=$REPO/docs/benchmarks.md
SEED=42
REASONS=saved-session=0.75,idle-daily=0.25

PINGS=20000
OUT=$REPO/bench-out
JOBS=2
REPEAT=3
DIAG=1
PROFILE=0
BUILD=1
WRITE_DOC=1
KEEP=0
TIMEOUT=900          # per measured command
QUIET_WAIT=60        # at most this many seconds of waiting for an idle machine before each measured command
PERF_FREQ=499
ORIG_ARGS=("$@")

usage() {
    sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Options:
  --pings N          pings in the dataset (default 20000)
  --out DIR          work directory (default: bench-out/ in the repository, git-ignored); the dataset is cached in
                     DIR/convert-N, the runs go to DIR/convert-run
  --jobs N           telemetry convert --jobs (default 2, the number of cores of the benchmark machine)
  --repeat N         rounds of measurements; the table shows the best (least disturbed) and the median run of each
                     command and lists all of them (default 3)
  --profile          also run one convert under `perf record -g` and add a CPU profile by pipeline stage
  --no-diag          skip the diagnostic row (telemetry convert --jobs 1)
  --no-build         use the existing .build-bench/release/telemetry
  --no-doc           do not write docs/benchmarks.md
  --keep             keep DIR/convert-run (outputs, the decompressed copy of the output: ~1 GB) after the run
  --timeout SECONDS  limit for each measured command (default 900)
  --quiet-wait SECONDS
                     before each measured command, wait up to this long for the other processes to use
                     less than a quarter of a core (default 60; 0: do not wait)
Environment: GEN_PINGS (path of gen_pings.py).
EOF
}

die() { echo "bench-convert: $*" >&2; exit 2; }
say() { echo "==> $*" >&2; }
# shellcheck source=scripts/bench-common.sh
source "$SCRIPTS/bench-common.sh"   # dataset_state, wait_quiet, measure, set_inproc

while (($#)); do
    case $1 in
        --pings) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--pings needs a positive integer"; PINGS=$2; shift 2 ;;
        --out) [[ -n ${2:-} ]] || die "--out needs a directory"; OUT=$2; shift 2 ;;
        --jobs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive integer"; JOBS=$2; shift 2 ;;
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
DATA=$OUT/convert-$PINGS
RUN=$OUT/convert-run
PLAIN=$RUN/plain

# --- tools ---------------------------------------------------------------------------------------------------
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1  ($2)"); }
need swift "the Swift toolchain"
need python3 "apt-get install -y python3"
need xz "apt-get install -y xz-utils"
need git "apt-get install -y git"
for tool in timeout sync sort find xargs awk getconf sleep nproc; do need "$tool" "coreutils / findutils / gawk"; done
if [[ ! -x /usr/bin/time || $(/usr/bin/time -v true 2>&1) != *"Maximum resident set size"* ]]; then
    missing+=("/usr/bin/time, GNU time with -v  (apt-get install -y time)")
fi
[[ -f $GEN ]] || missing+=("gen_pings.py at $GEN  (the shared/ tools beside the repository, or set GEN_PINGS=path)")
if command -v python3 >/dev/null && ! python3 -c 'import zlib' 2>/dev/null; then
    missing+=("python3 with the zlib module")
fi
if ((PROFILE)); then
    if ! command -v perf >/dev/null; then
        missing+=("perf, for --profile  (apt-get install -y linux-perf)")
    elif ! perf stat -e task-clock -o /dev/null true >/dev/null 2>&1; then
        missing+=("a working perf, for --profile  (perf stat fails: check /proc/sys/kernel/perf_event_paranoid)")
    fi
fi
if ((${#missing[@]})); then
    echo "bench-convert: missing tools:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 2
fi
for path in "$SCRATCH" "$OUT"; do
    case $path in
        "$REPO"/*) git -C "$REPO" check-ignore -q "$path" ||
            echo "bench-convert: warning: ${path#"$REPO"/} is not git-ignored; add it to .gitignore" >&2 ;;
    esac
done

rm -rf "$RUN"
mkdir -p "$RUN"
cleanup() {
    if ((!KEEP)); then
        rm -rf "$PLAIN" "$RUN"/out-* "$RUN"/perf.data* "$RUN/telemetry" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# --- dataset ---------------------------------------------------------------------------------------------------
ensure_dataset() {   # DIR PINGS
    local dir=$1 pings=$2 state
    state=$(python3 "$SCRIPTS/bench_convert.py" state "$dir" "$pings" "$SEED" "$REASONS")
    case $state in
        ok) say "dataset $dir: cached ($pings pings)"; return ;;
        foreign) die "$dir/rawlog or $dir/MANIFEST.json exists but is not a gen_pings.py dataset; remove it or use another --out" ;;
        stale) say "dataset $dir: other parameters or incomplete; regenerating"
               rm -rf "$dir/rawlog" "$dir/histogram-cache" "$dir/MANIFEST.json" ;;
    esac
    say "generating $pings pings as raw logs into $dir (about $((pings * 2 / 1000)) s on 2 cores)"
    mkdir -p "$dir"
    timeout 1800 python3 "$GEN" --pings "$pings" --format rawlog --seed "$SEED" --reasons "$REASONS" --out "$dir" >&2 ||
        die "gen_pings.py failed or timed out (1800 s)"
    [[ $(python3 "$SCRIPTS/bench_convert.py" state "$dir" "$pings" "$SEED" "$REASONS") == ok ]] ||
        die "$dir: the generated dataset does not match its MANIFEST.json"
}
manifest_field() { python3 "$SCRIPTS/bench_convert.py" manifest "$DATA" "$1"; }

ensure_dataset "$DATA" "$PINGS"
mapfile -t RAWLOGS < <(find "$DATA/rawlog" -type f -name '*.finished' | LC_ALL=C sort)
RAW_BYTES=$(manifest_field bytes_on_disk)
RECORDS=$(manifest_field records)

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
BINARY_DATE=$(date -u -r "$TELEMETRY" '+%Y-%m-%d %H:%M UTC')
# Measure a private copy: .build-bench is shared with scripts/bench-import.sh, which may rebuild it mid-run.
cp "$TELEMETRY" "$RUN/telemetry"
TELEMETRY=$RUN/telemetry
"$TELEMETRY" convert --help >/dev/null || die "$TELEMETRY convert --help failed"

cat "${RAWLOGS[@]}" >/dev/null   # into the page cache
find "$DATA/histogram-cache" -type f -exec cat {} + >/dev/null

# --- measuring -------------------------------------------------------------------------------------------------
printf 'round\tkey\twall_s\trss_kb\tuser_s\tsys_s\tother_cpu_s\tfs_out_blocks\tinproc_s\n' >"$RUN/results.tsv"

json_get() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# te_convert KEY ROUND JOBS: one convert into a fresh output directory, then its summary and output are checked
# against the MANIFEST (records, categories, bytes; the output's lines counted with xz -dc; not timed). The first
# run's output is also decompressed into PLAIN: the input of the xz half of the bound.
te_convert() {
    local key=$1 round=$2 jobs=$3 out=$RUN/out-$1 plain=()
    rm -rf "$out"
    measure "$key" "$round" "$TELEMETRY" convert "$DATA/rawlog" --out "$out" --histogram-cache "$DATA/histogram-cache" \
        --jobs "$jobs" --json
    set_inproc "$(json_get "$RUN/$key.$round.out" seconds)"
    [[ -d $PLAIN ]] || plain=("$PLAIN")
    python3 "$SCRIPTS/bench_convert.py" check "$RUN/$key.$round.out" "$DATA" "$out" "${plain[@]}" >"$RUN/$key.$round.check" ||
        die "$key round $round: the convert output does not match the MANIFEST: $(cat "$RUN/$key.$round.check")"
    rm -rf "$out"
}

say "measuring: $REPEAT round(s), one command at a time (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
for ((round = 1; round <= REPEAT; round++)); do
    say "round $round/$REPEAT"
    te_convert te "$round" "$JOBS"
    if ((round == 1)); then
        find "$PLAIN" -type f | LC_ALL=C sort >"$RUN/plain-files.txt"
        xargs -d '\n' cat <"$RUN/plain-files.txt" >/dev/null   # into the page cache
        PLAIN_FILES=$(wc -l <"$RUN/plain-files.txt")
        PLAIN_BYTES=$(xargs -d '\n' stat -c %s <"$RUN/plain-files.txt" | awk '{s += $1} END {print s}')
    fi
    # (a) inflate every gzipped payload (zlib; only the zlib calls are timed: in-process seconds)
    MEASURE_OUT=$RUN/gunzip.$round.out measure gunzip "$round" python3 "$SCRIPTS/bench_convert.py" gunzip "${RAWLOGS[@]}"
    set_inproc "$(json_get "$RUN/gunzip.$round.out" seconds)"
    [[ $(json_get "$RUN/gunzip.$round.out" records) == "$RECORDS" ]] || die "gunzip: did not read $RECORDS records"
    # (b) xz -0 of the uncompressed output files, one stream per file, like convert writes them
    MEASURE_OUT=/dev/null MEASURE_IN=$RUN/plain-files.txt measure xz1 "$round" xargs -d '\n' xz -0 -C crc64 -T1 -c --
    MEASURE_OUT=/dev/null MEASURE_IN=$RUN/plain-files.txt measure xz2 "$round" xargs -d '\n' -P2 -n 50 xz -0 -C crc64 -T1 -c --
    if ((DIAG)); then
        te_convert te_j1 "$round" 1
    fi
done

if ((PROFILE)); then
    say "profiling one convert: perf record -F $PERF_FREQ -g"
    rm -rf "$RUN/out-prof"
    sync
    wait_quiet
    timeout "$TIMEOUT" perf record -q -F "$PERF_FREQ" -g -o "$RUN/perf.data" -- \
        "$TELEMETRY" convert "$DATA/rawlog" --out "$RUN/out-prof" --histogram-cache "$DATA/histogram-cache" \
        --jobs "$JOBS" --json >"$RUN/prof.out" 2>"$RUN/prof.err" ||
        die "perf record of telemetry convert failed (see $RUN/prof.err)"
    timeout "$TIMEOUT" perf script -i "$RUN/perf.data" -F pid,tid,time,ip,sym,dso 2>/dev/null |
        python3 "$SCRIPTS/bench_convert_report.py" profile "$PERF_FREQ" "$RUN/profile.json" >"$RUN/profile.md"
    rm -rf "$RUN/out-prof" "$RUN/perf.data"
fi

# --- report ----------------------------------------------------------------------------------------------------
rel() { case $1 in "$REPO"/*) echo "${1#"$REPO"/}" ;; *) echo "$1" ;; esac; }
cmdline="scripts/bench-convert.sh"
for a in "${ORIG_ARGS[@]}"; do cmdline+=" $a"; done
{
    printf 'command\t%s\n' "$cmdline"
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'commit\t%s\n' "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf 'binary\t%s\n' "$( ((BUILD)) && echo "built by this run ($BINARY_DATE)" || echo "--no-build: the binary built $BINARY_DATE, not by this run")"
    printf 'dirty\t%s\n' "$([[ -n $(git -C "$REPO" status --porcelain -- Sources Package.swift 2>/dev/null) ]] && echo 1 || echo 0)"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu_model\t%s\n' "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
    printf 'mem\t%s\n' "$(awk '/^MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    printf 'kernel\t%s\n' "$(uname -sr)"
    printf 'versions\t%s; xz %s (liblzma %s); Python %s (zlib %s)\n' \
        "$(swift --version 2>/dev/null | grep -o 'Swift version [^ ]*' | head -1)" \
        "$(xz --version | awk 'NR==1{print $NF}')" "$(xz --version | awk 'NR==2{print $NF}')" \
        "$(python3 -c 'import platform; print(platform.python_version())')" \
        "$(python3 -c 'import zlib; print(zlib.ZLIB_RUNTIME_VERSION)')"
    printf 'te_libs\t%s\n' "$(ldd "$TELEMETRY" 2>/dev/null | awk '/libz\.so|liblzma|libsimdjson/{print $1}' | sort | tr '\n' ' ')"
    printf 'gen_command\tpython3 ../shared/tools/gen_pings.py --pings %s --format rawlog --seed %s --reasons %s --out %s\n' \
        "$PINGS" "$SEED" "$REASONS" "$(rel "$DATA")"
    printf 'dataset\t%s/rawlog\n' "$(rel "$DATA")"
    printf 'pings\t%s\nrecords\t%s\nraw_files\t%s\nraw_bytes\t%s\n' "$PINGS" "$RECORDS" "${#RAWLOGS[@]}" "$RAW_BYTES"
    printf 'expected_convert_counts\t%s\n' "$(manifest_field expected_convert_counts)"
    printf 'jobs\t%s\n' "$JOBS"
    printf 'repeat\t%s\n' "$REPEAT"
    printf 'quiet_wait\t%s\n' "$QUIET_WAIT"
    printf 'te_command\t%s\n' "telemetry convert $(rel "$DATA")/rawlog --out OUT --histogram-cache $(rel "$DATA")/histogram-cache --jobs $JOBS --json"
    printf 'plain_files\t%s\nplain_bytes\t%s\n' "$PLAIN_FILES" "$PLAIN_BYTES"
    printf 'gunzip_json\t%s\n' "$(cat "$RUN/gunzip.1.out")"
    printf 'check_json\t%s\n' "$(cat "$RUN/te.1.check")"
    ((PROFILE)) && printf 'profile_md\t%s\nprofile_json\t%s\n' "$RUN/profile.md" "$RUN/profile.json"
    true
} >"$RUN/meta.tsv"

echo
if ((WRITE_DOC)); then
    python3 "$SCRIPTS/bench_convert_report.py" table "$RUN" --doc "$DOC"
    say "wrote the \"## Convert\" section of $(rel "$DOC"); raw results: $(rel "$RUN")/results.tsv"
else
    python3 "$SCRIPTS/bench_convert_report.py" table "$RUN"
fi
