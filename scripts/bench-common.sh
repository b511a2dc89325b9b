# Shared by scripts/bench-import.sh, bench-convert.sh and bench-query.sh; sourced after each script has set its
# variables and defined die/say. Uses: RUN (work directory holding results.tsv), TIMEOUT, QUIET_WAIT, SEED, REASONS,
# MEASURE_IN / MEASURE_OUT / INPROC (optional, per measure call).

# Prints ok (cached, complete), stale (our manifest, other parameters or incomplete), foreign or none.
dataset_state() {
    python3 - "$1" "$2" "$SEED" "$REASONS" <<'EOF'
import json, os, sys
out, pings, seed, reasons = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
mpath, storage = os.path.join(out, "MANIFEST.json"), os.path.join(out, "storage")
try:
    with open(mpath) as f:
        m = json.load(f)
except (OSError, ValueError):
    print("foreign" if os.path.exists(storage) or os.path.exists(mpath) else "none"); sys.exit()
if m.get("generator") != "gen_pings.py":
    print("foreign"); sys.exit()
want = {"seed": seed, "pings": pings, "reasons": reasons, "start_date": "20131015", "days": 14,
        "bad_fraction": 0.0, "duplicate_fraction": 0.0}
same = all(m.get(k) == v for k, v in want.items())
st = m.get("outputs", {}).get("storage")
n = sum(1 for d, _, fs in os.walk(storage) for f in fs if f.endswith(".xz")) if os.path.isdir(storage) else -1
print("ok" if same and st and st.get("files") == n and st.get("records") == pings else "stale")
EOF
}

HZ=$(getconf CLK_TCK)
cpu_busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }

# Waits (at most QUIET_WAIT s) until the machine used less than a quarter of a core over the last second:
# another engineer's build or test run on this 2-core machine would otherwise slow the command down.
wait_quiet() {
    local waited=0 a b
    while ((waited < QUIET_WAIT)); do
        a=$(cpu_busy); sleep 1; b=$(cpu_busy)
        (((b - a) * 4 < HZ)) && return 0
        waited=$((waited + 1))
    done
    ((QUIET_WAIT == 0)) || say "the machine is still busy after ${QUIET_WAIT} s of waiting; measuring anyway"
}

# measure KEY ROUND COMMAND... : runs COMMAND once under /usr/bin/time -v (stdin: $MEASURE_IN or /dev/null,
# stdout: $MEASURE_OUT or RUN/KEY.ROUND.out) and appends a results.tsv row (in-process seconds: $INPROC).
measure() {
    local key=$1 round=$2 base rc before after
    shift 2
    base=$RUN/$key.$round
    sync
    wait_quiet
    before=$(cpu_busy)
    set +e
    timeout --kill-after=10 "$TIMEOUT" /usr/bin/time -v -o "$base.time" "$@" \
        <"${MEASURE_IN:-/dev/null}" >"${MEASURE_OUT:-$base.out}" 2>"$base.err"
    rc=$?
    set -e
    after=$(cpu_busy)
    ((rc != 124 && rc != 137)) || die "$key timed out after $TIMEOUT s: $*"
    if ((rc != 0)); then
        tail -n 20 "$base.err" >&2
        die "$key failed (exit $rc): $*"
    fi
    awk -F': ' -v key="$key" -v round="$round" -v busy="$(((after - before)))" -v hz="$HZ" '
        /Elapsed \(wall clock\)/ { n = split($NF, p, ":"); wall = 0; for (i = 1; i <= n; i++) wall = wall * 60 + p[i] }
        /Maximum resident set size/ { rss = $NF }
        /User time \(seconds\)/ { user = $NF }
        /System time \(seconds\)/ { sys = $NF }
        /File system outputs/ { fsout = $NF }
        END { other = busy / hz - user - sys; if (other < 0) other = 0
              printf "%s\t%s\t%.2f\t%d\t%.2f\t%.2f\t%.2f\t%d\t", round, key, wall, rss, user, sys, other, fsout }' \
        "$base.time" >>"$RUN/results.tsv"
    printf '%s\n' "${INPROC:--}" >>"$RUN/results.tsv"
    say "$(printf '%-10s' "$key") $(tail -n 1 "$RUN/results.tsv" | awk -F'\t' '{printf "wall %6.2f s  peak RSS %5.0f MB  cpu %5.1f s  other cpu %4.1f s", $3, $4 / 1024, $5 + $6, $7}')"
}

# In-process seconds into the results.tsv row just written (for commands that report their own time).
set_inproc() { sed -i '$ s/\t-$/\t'"$1"'/' "$RUN/results.tsv"; }
