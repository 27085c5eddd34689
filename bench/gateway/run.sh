#!/bin/sh
# The gateway's benchmarks and crash test, in one run (issue 5).
# Usage: bench/gateway/run.sh [load flags...]
# Environment: KILLS (30), JOBS (300) for the crash test; CRASH=0 skips it.
# PostgreSQL: HOURGLASS_TEST_POSTGRES, else
# postgres://postgres@127.0.0.1:5432/test?sslmode=disable (skipped when down).
set -eu
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/hourglass" ./cmd/hourglass
go build -o "$bin/load" ./bench/gateway/load
go build -o "$bin/crash" ./bench/gateway/crash
echo "== load: throughput (SQLite, PostgreSQL), memory, webhook ingest =="
"$bin/load" -bin "$bin/hourglass" "$@"
if [ "${CRASH:-1}" != 0 ]; then
	echo
	echo "== crash test =="
	"$bin/crash" -bin "$bin/hourglass" -kills "${KILLS:-30}" -jobs "${JOBS:-300}" | grep -v '^  \[.*kill '
fi
