#!/usr/bin/env bash
# The whole test suite (README.md): unit, conformance (../shared/conformance), real data (../shared/datasets),
# hazards, and end-to-end tests of the telemetry executable.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -d ../shared/conformance ]; then
    echo "error: ../shared (real data and conformance vectors) is missing beside the repository" >&2
    exit 2
fi
swift build --build-tests
swift test --skip-build
