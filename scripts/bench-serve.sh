#!/usr/bin/env bash
# Serve benchmark: wrk POSTs real pings to `telemetry serve` on loopback. Prints a results table and writes it to
# docs/benchmarks.md ("## Serve"; only that section is replaced).
#
#   scripts/bench-serve.sh [--duration S] [--connections N] [--wrk-threads N] [--writers "1 2"] [--fsync POLICY]
#                          [--bodies "5k 18k 50k"] [--repeat N] [--no-build] [--no-doc] [--report-only RESULTS.tsv]
#
# Steps (each bounded by `timeout`):
#   1. release build: swift build -c release --scratch-path .build-bench (BENCH_SCRATCH overrides; --no-build uses
#      what is there)
#   2. bodies, all real pings from ../shared/datasets/real: 5k = the plain 5,369-byte saved-session ping of
#      raw-logs/unicode.v1.packed; 18k = the 18,255-byte gzip idle-daily ping of raw-logs/telemetry1.log (the size
#      of the seed's 16 KB reference); 50k = pings/v4/main-fx48a1-nightly.json.gz (50,986 bytes, gzip)
#   3. for each writer count and body: start `telemetry serve --port 0` (fresh log directory, --fsync POLICY,
#      --max-log-size 256 MiB; finished files are deleted once a second so the disk does not fill), 2 s of warm-up
#      load, then `wrk --latency -t T -c N -d S` with a Lua script that POSTs the body (scripts/bench-serve.lua),
#      CPU of the server (/proc/PID/stat) and of wrk (/usr/bin/time) measured over the timed run; then SIGTERM and
#      a check that the server stored at least as many records as wrk counted 200s.
#   4. steps 3 run --repeat times (rounds, each running every configuration once); table on stdout and in
#      docs/benchmarks.md: per configuration the round with the median req/s, and every round's req/s and p99.
#      The raw results are kept in bench-out/serve-results.tsv; --report-only FILE rewrites the section from such
#      a file without running anything.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${TELEMETRY_SHARED:-$REPO/../shared}
SCRATCH=${BENCH_SCRATCH:-$REPO/.build-bench}
DOC=$REPO/docs/benchmarks.md
LUA=$REPO/scripts/bench-serve.lua
DURATION=15
CONNECTIONS=32
WRK_THREADS=2
WRITERS="1 2"
FSYNC=interval
BODIES="5k 18k 50k"
REPEAT=1
REPORT_ONLY=""
BUILD=1
WRITE_DOC=1
ARGS="$*"

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --wrk-threads) WRK_THREADS=$2; shift 2 ;;
        --writers) WRITERS=$2; shift 2 ;;
        --fsync) FSYNC=$2; shift 2 ;;
        --bodies) BODIES=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --report-only) REPORT_ONLY=$2; BUILD=0; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-doc) WRITE_DOC=0; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

if [ -z "$REPORT_ONLY" ]; then
if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    sudo_cmd=(); if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get install -y -qq wrk >/dev/null || { "${sudo_cmd[@]}" apt-get update -qq; "${sudo_cmd[@]}" apt-get install -y -qq wrk >/dev/null; }
fi

if [ "$BUILD" = 1 ]; then
    echo "building release binary in $SCRATCH" >&2
    (cd "$REPO" && timeout 1800 swift build -c release --scratch-path "$SCRATCH" --product telemetry >&2)
fi
BIN=$SCRATCH/release/telemetry
[ -x "$BIN" ] || { echo "no release binary at $BIN" >&2; exit 2; }

WORK=$(mktemp -d /tmp/bench-serve.XXXXXX)
SERVER_PID=""
CLEANER_PID=""
cleanup() {
    if [ -n "$CLEANER_PID" ]; then kill "$CLEANER_PID" 2>/dev/null || true; fi
    if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Bodies (real pings).
python3 - "$SHARED" "$WORK" <<'EOF'
import struct, sys, shutil
shared, work = sys.argv[1], sys.argv[2]
def records(path):
    data = open(path, 'rb').read(); i = 0
    while i + 15 <= len(data):
        if data[i] != 0x1E: i += 1; continue
        path_len, data_len, _ = struct.unpack('<HIQ', data[i + 1:i + 15])
        yield data[i + 15 + path_len:i + 15 + path_len + data_len]; i += 15 + path_len + data_len
unicode = list(records(f'{shared}/datasets/real/raw-logs/unicode.v1.packed'))
open(f'{work}/5k.bin', 'wb').write(unicode[1])
open(f'{work}/18k.bin', 'wb').write(next(records(f'{shared}/datasets/real/raw-logs/telemetry1.log')))
shutil.copy(f'{shared}/datasets/real/pings/v4/main-fx48a1-nightly.json.gz', f'{work}/50k.bin')
EOF

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
machine_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
HZ=$(getconf CLK_TCK)
RESULTS=$WORK/results.tsv
: > "$RESULTS"

for round in $(seq 1 "$REPEAT"); do
for writers in $WRITERS; do
    for body in $BODIES; do
        size=$(stat -c %s "$WORK/$body.bin")
        logs=$WORK/logs-$writers-$body
        mkdir -p "$logs"
        rm -f "$WORK/port"
        "$BIN" serve --port 0 --port-file "$WORK/port" --log-path "$logs" --max-log-size 268435456 \
            --writers "$writers" --fsync "$FSYNC" > "$WORK/server.out" 2> "$WORK/server.err" &
        SERVER_PID=$!
        for _ in $(seq 1 300); do [ -s "$WORK/port" ] && break; sleep 0.1; done
        port=$(cat "$WORK/port")
        (while kill -0 "$SERVER_PID" 2>/dev/null; do find "$logs" -name '*.finished' -delete; sleep 1; done) &
        CLEANER_PID=$!
        export BENCH_BODY=$WORK/$body.bin
        timeout 30 wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d 2s -s "$LUA" "http://127.0.0.1:$port" > /dev/null
        server_before=$(ticks "$SERVER_PID"); machine_before=$(machine_busy)
        timeout $((DURATION + 60)) /usr/bin/time -f "WRKCPU %U %S" -o "$WORK/wrk.time" \
            wrk --latency -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" -s "$LUA" "http://127.0.0.1:$port" > "$WORK/wrk.out"
        server_after=$(ticks "$SERVER_PID"); machine_after=$(machine_busy)
        metrics=$(curl -s "http://127.0.0.1:$port/metrics")
        kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
        kill "$CLEANER_PID" 2>/dev/null || true; wait "$CLEANER_PID" 2>/dev/null || true; CLEANER_PID=""
        stored=$(printf '%s\n' "$metrics" | awk '/^telemetry_ingest_stored_records_total / {print $2}')
        non200=$(printf '%s\n' "$metrics" | awk '/^telemetry_ingest_errors_total/ {s += $2} END {print s + 0}')
        result=$(grep '^RESULT' "$WORK/wrk.out")
        wrkcpu=$(awk '/^WRKCPU/ {print $2 + $3}' "$WORK/wrk.time")
        python3 - "$writers" "$body" "$size" "$result" "$((server_after - server_before))" "$HZ" "$wrkcpu" \
            "$((machine_after - machine_before))" "$stored" "$non200" >> "$RESULTS" <<'EOF'
import sys
writers, body, size, result, server_ticks, hz, wrk_cpu, machine_ticks, stored, non200 = sys.argv[1:]
r = dict(kv.split('=') for kv in result.split()[1:])
seconds = int(r['duration_us']) / 1e6
requests = int(r['requests'])
ok = requests - int(r['status_errors'])
server_cpu = int(server_ticks) / int(hz)
machine_cpu = int(machine_ticks) / int(hz)
print('\t'.join(map(str, [writers, body, size, requests, f'{requests / seconds:.0f}', f'{ok * int(size) / seconds / 1e6:.1f}',
      f"{int(r['p50_us']) / 1000:.2f}", f"{int(r['p99_us']) / 1000:.2f}", f"{int(r['max_us']) / 1000:.1f}",
      f'{server_cpu:.1f}', f'{server_cpu / seconds:.2f}', f'{float(wrk_cpu):.1f}',
      f'{max(machine_cpu - server_cpu - float(wrk_cpu), 0) / seconds:.2f}',
      r['status_errors'], int(r['connect_errors']) + int(r['read_errors']) + int(r['write_errors']) + int(r['timeouts']),
      stored, non200, f'{seconds:.1f}'])))
EOF
        tail -1 "$RESULTS" >&2
        if [ "$(cut -f16 < <(tail -1 "$RESULTS"))" -lt "$(( $(cut -f4 < <(tail -1 "$RESULTS")) - $(cut -f14 < <(tail -1 "$RESULTS")) ))" ]; then
            echo "error: the server stored fewer records than wrk counted successful responses" >&2
            exit 1
        fi
    done
done
done
mkdir -p "$REPO/bench-out"
{ printf '#\t%s\t%s\t%s\n' "$ARGS" "$(date -u '+%Y-%m-%d %H:%M')" "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- Sources Package.swift 2>/dev/null || echo ' + uncommitted changes')"; cat "$RESULTS"; } > "$REPO/bench-out/serve-results.tsv"
RESULTS=$REPO/bench-out/serve-results.tsv
else
RESULTS=$REPORT_ONLY
fi

python3 - "$RESULTS" "$DOC" "$WRITE_DOC" "$DURATION" "$CONNECTIONS" "$WRK_THREADS" "$FSYNC" "$ARGS" "$REPO" <<'EOF'
import sys, subprocess, datetime, re, os
results, doc, write_doc, duration, connections, wrk_threads, fsync, args, repo = sys.argv[1:]
lines = [line.rstrip('\n').split('\t') for line in open(results) if line.strip()]
runs = [l for l in lines if l[0] != '#']
meta = next((l for l in lines if l[0] == '#' and len(l) >= 4), None)
if meta: args, measured, commit = meta[1], meta[2], meta[3]
else: measured, commit = None, None
# Per (writers, body), in first-seen order: the run with the median req/s, and all runs.
groups = {}
for r in runs: groups.setdefault((r[0], r[1]), []).append(r)
rows, everything = [], {}
for key, group in groups.items():
    ordered = sorted(group, key=lambda r: float(r[4]))
    rows.append(ordered[(len(ordered) - 1) // 2])
    everything[key] = ' / '.join(f'{float(r[4]):,.0f} ({r[7]})' for r in group)
names = {'5k': '5 KB plain JSON (real saved-session ping)', '18k': '18 KB gzip (real idle-daily ping)',
         '50k': '50 KB gzip (real v4 main ping)'}
def sh(cmd):
    try: return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception: return '?'
commit = commit or sh(f'git -C {repo} rev-parse --short HEAD')
measured = measured or f'{datetime.datetime.utcnow():%Y-%m-%d %H:%M}'
cpu = sh("lscpu | awk -F: '/Model name/ {print $2; exit}'").strip()
out = ['## Serve', '',
       'Written by `scripts/bench-serve.sh`; rerun it to refresh this section (it replaces only this section).', '',
       f'- Command: `scripts/bench-serve.sh{(" " + args) if args else ""}` (release build, `swift build -c release --scratch-path .build-bench`)',
       f'- Date: {measured} UTC; commit `{commit}`',
       f'- Machine: `nproc` = {os.cpu_count()}, {cpu}; server, wrk and everything else share these cores',
       f'- Load: `wrk --latency -t {wrk_threads} -c {connections} -d {duration}s -s scripts/bench-serve.lua` on 127.0.0.1 after 2 s of warm-up; every request POSTs the same body to the same path (`/submit/telemetry/0fdac909-d2ec-454c-b625-261a3e5d5c9b/main/Firefox/48.0a1/nightly/20160315030230`; the server does not dedupe); keep-alive connections; wrk builds the request once (no Lua `request()`), so its CPU goes to I/O',
       f'- Server: `telemetry serve --port 0 --fsync {fsync} --max-log-size 268435456 --writers N` (2 event loops, v1 records); finished files deleted once a second during the run',
       '- MB/s counts request bodies acknowledged with 200; CPU s is over the timed run; "other cores" is the CPU that everything else on the machine (other engineers\' builds and tests) used during the run, in cores out of 2.0 (from /proc/stat minus server and wrk): above about 0.3 the run competed for CPU and its latency tail is inflated', '',
       f'- Rounds: {len(next(iter(groups.values())))}; each row is the round with the median req/s; the last column lists every round\'s req/s (p99 ms) in round order', '',
       '| writers | body | requests | req/s | MB/s | p50 ms | p99 ms | max ms | server CPU s | server cores | wrk CPU s | other cores | non-2xx | socket errors | stored records | all rounds: req/s (p99 ms) |',
       '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|']
for r in rows:
    w, body, size, req, rps, mbs, p50, p99, mx, scpu, scores, wcpu, other, st, sock, stored, non200, secs = r
    out.append(f'| {w} | {names.get(body, body)} | {req} | {rps} | {mbs} | {p50} | {p99} | {mx} | {scpu} | {scores} | {wcpu} | {other} | {st} | {sock} | {stored} | {everything[(w, body)]} |')
out += ['', 'Goal (issue 4): at least twice the seed\'s Node.js server — about 8,000 requests/s with a 16 KB gzipped real ping, 32 connections, wrk on the same 2 cores, p99 11 ms — so ≥ 16,000 requests/s with p99 < 10 ms.', '']
for r in rows:
    if r[1] == '18k':
        rps, p99 = float(r[4]), float(r[7])
        out.append(f'- {r[0]} writer(s), 18 KB gzip ping: **{rps:,.0f} req/s** ({rps / 8000:.2f}× the seed; ≥ 2×: **{"met" if rps >= 16000 else "missed"}**), '
                   f'p99 **{p99} ms** (< 10 ms: **{"met" if p99 < 10 else "missed"}**), p50 {r[6]} ms.')
others = [float(r[12]) for r in runs]; servers = [float(r[10]) for r in runs]
spread = {}
for r in runs: spread.setdefault((r[0], r[1]), []).append(float(r[7]))
worst = max(max(v) / max(min(v), 0.001) for v in spread.values())
out.append(f'- CPU contention: during these runs the rest of the machine used {min(others):.2f}–{max(others):.2f} of the 2 cores '
           f'("other cores"; the server got {min(servers):.2f}–{max(servers):.2f}). The p50 stays near 1 ms, while the p99 of one configuration '
           f'varies up to {worst:.1f}× between rounds: the tail follows the machine\'s load. Each request crosses two thread hand-offs '
           '(event loop → log writer → event loop), and on a saturated machine each can wait a scheduler slice for a core. '
           'A p99 measured with "other cores" near 0 is the comparable figure.')
per_writer = {}
for r in rows: per_writer.setdefault(r[0], []).append(float(r[4]))
if len(per_writer) > 1:
    out.append('- Writers (median rounds, all bodies): ' + ', '.join(f'{w} writer(s) {sum(v):,.0f} req/s summed' for w, v in per_writer.items())
               + '; the default is one writer (`--writers 1`).')
per_request = [(r[1], r[0], float(r[9]) * 1e6 / int(r[3])) for r in rows]
out.append('- Server CPU per request (median rounds): ' + ', '.join(f'{names.get(b, b).split(" (")[0]} with {w} writer(s) {us:.0f} µs' for b, w, us in per_request) + '.')
out.append('')
section = '\n'.join(out) + '\n'
print(section)
if write_doc == '1':
    text = open(doc).read() if os.path.exists(doc) else '# Benchmarks\n'
    pattern = re.compile(r'^## Serve\n.*?(?=^## |\Z)', re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + '\n', text, count=1)
    else:
        text = text.rstrip('\n') + '\n\n' + section
    open(doc, 'w').write(text)
EOF
