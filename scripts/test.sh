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
# The S3 tests (Tests/TelemetryS3Tests) run moto's S3 server from .venv (git-ignored; Debian's Python refuses
# system-wide pip installs); the Spark tests (Tests/SparkTests) and the export tests (Tests/TelemetryExportTests) read the exported Parquet with pyarrow,
# DuckDB and PySpark in local mode on Java 17. They fail, not skip, without them.
if ! .venv/bin/python -c 'import moto.server, boto3, pyspark, pyarrow, duckdb' 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6' 'pyspark>=3.5,<5' 'pyarrow>=15' 'duckdb>=1.1'
fi
swift build --build-tests
swift test --skip-build
