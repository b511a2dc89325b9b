#!/usr/bin/env bash
# The main job on a fresh clone: build, import the sample dataset shipped in datasets/, run a saved query.
# The sample holds a few bad lines and one file outside the layout on purpose, so the import reports them
# (and exits 1); the query runs either way.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 2
log=$(mktemp)
echo "== swift build -c release (a first build takes a few minutes)"
if ! swift build -c release --product telemetry >"$log" 2>&1; then
    tail -n 30 "$log"; rm -f "$log"; exit 2
fi
rm -f "$log"
store=sample.db
rm -f "$store" "$store-wal" "$store-shm"
echo "== telemetry import datasets/sample/storage --store $store"
.build/release/telemetry import datasets/sample/storage --store "$store"
echo
echo "== telemetry query --file queries/overview.sql --store $store"
.build/release/telemetry query --file queries/overview.sql --store "$store"
