#!/usr/bin/env bash
# Runs every benchmark scenario (Auditlog over HTTP, the SQLite and the
# PostgreSQL baselines on the same seeded events) and writes the tables to
# bench/results/latest.md (and a dated copy). Extra arguments go to `bench`,
# for example: bench/run-all.sh --events 1000000 --seed 42
# Needs PostgreSQL at 127.0.0.1:5432 with trust auth for user postgres
# (or pass --no-postgres), and the sqlite3 shell for the SQLite CSV export.
# The stores and the benchmark's PostgreSQL database are removed at the end
# unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p auditlog -p auditlog-bench
work=target/bench-work
rm -rf "$work"
mkdir -p "$work" bench/results
{
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- commit: $(git rev-parse --short HEAD)"
  echo "- cores: $(nproc); memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "- cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "- disk: $(df -h --output=source,size "$PWD" | tail -1 | xargs)"
  echo "- command: bench/run-all.sh $*"
} > "$work/machine.md"
target/release/bench all --work-dir "$work" --out "$work/tables.md" "$@"
{ cat "$work/machine.md"; echo; cat "$work/tables.md"; } > bench/results/latest.md
cp bench/results/latest.md "bench/results/$(date -u +%Y%m%dT%H%MZ).md"
cp "$work/results.jsonl" bench/results/latest.jsonl
# Drop the PostgreSQL database and the stores unless asked to keep them
# (KEEP=1 bench/run-all.sh … keeps them for single-scenario reruns).
if [ "${KEEP:-0}" != 1 ]; then
  target/release/bench clean --work-dir "$work" "$@"
fi
echo "results: bench/results/latest.md"
