#!/usr/bin/env bash
# The soak (BENCHMARKS.md "Soak"): a paced mixed load — batch and single-event
# ingest, first / filtered / cursor pages and histograms from several
# clients — against `auditlog serve` on a fresh embedded store, sampled every
# 10 s (req/s, p50/p99 per operation, errors, the server's VmRSS, the writer
# queue depth from /metrics). Exits non-zero, with the verdict as the last
# line of the report, if RSS keeps growing over the second half beyond
# --max-rss-slope (MiB/min, default 1) or any request failed.
# Extra arguments go to `bench soak`, e.g.: bench/soak.sh --duration 60
# Results: bench/results/soak-<date>.md (machine, command, tables, verdict)
# and bench/results/soak-<date>.jsonl (the raw 10-s samples).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p auditlog -p auditlog-bench
work=target/bench-soak
rm -rf "$work"
mkdir -p "$work" bench/results
stamp=$(date -u +%Y%m%dT%H%MZ)
status=0
target/release/bench soak --work-dir "$work" "$@" || status=$?
{
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ) (run ended)"
  echo "- commit: $(git rev-parse --short HEAD)"
  echo "- cores: $(nproc); memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "- cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: bench/soak.sh $*"
  echo "- MALLOC_ARENA_MAX: ${MALLOC_ARENA_MAX:-unset (since 2026-11-27 the binary caps glibc at 2 arenas itself)}"
  echo
  cat "$work/soak.md" 2>/dev/null || echo "(no report: the soak stopped before its end)"
} > "bench/results/soak-$stamp.md"
cp "$work/soak-samples.jsonl" "bench/results/soak-$stamp.jsonl" 2>/dev/null || true
# The store is large after ten minutes of ingest; keep it only if asked.
if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work/soak"; fi
echo "results: bench/results/soak-$stamp.md"
exit "$status"
