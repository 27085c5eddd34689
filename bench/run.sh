#!/bin/sh
# Runs the polling and download benchmarks one after the other and prints
# their tables. Usage: bench/run.sh [polling flags...]
# Environment: JOBS (200), SPEED (100), SIZE (1073741824), DIR ($TMPDIR or /tmp).
set -eu
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/polling" ./bench/polling
go build -o "$bin/download" ./bench/download
echo "== polling: GETs and detection lag =="
"$bin/polling" -jobs "${JOBS:-200}" -speed "${SPEED:-100}" "$@" 2>/dev/null
echo
echo "== download: hourglass CLI vs curl -o =="
"$bin/download" -size "${SIZE:-1073741824}" -dir "${DIR:-${TMPDIR:-/tmp}}"
