#!/usr/bin/env bash
# Export benchmark (BENCHMARKS.md "Exports"): for each size, loads that many
# events through the ingest API, then exports all of them
#   1. through the server: POST /api/v1/exports (CSV), poll until completed;
#      rows/s from created_at..completed_at, peak RSS = the server's VmHWM
#      (a server restarted after loading, so that ingest does not count);
#   2. with `auditlog export` (the same writer code), CSV and gzip JSON Lines,
#      under /usr/bin/time -v for the peak RSS ("Maximum resident set size").
# Usage: bench/export-memory.sh [SIZES...]   (default: 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then sizes=("$@"); else sizes=(100000 1000000); fi
cargo build --release -p auditlog >&2
bin=$PWD/target/release/auditlog

start_server() { # dir -> sets pid, url
    "$bin" --data-dir "$1" serve --listen 127.0.0.1:0 >"$1/server.out" 2>"$1/server.err" &
    pid=$!
    for _ in $(seq 1 200); do
        url=$(sed -n 's/^auditlog listening on //p' "$1/server.out")
        [ -n "$url" ] && return 0
        sleep 0.1
    done
    echo "server did not start" >&2; exit 1
}

stop_server() { kill -TERM "$pid"; wait "$pid" || true; }

kib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }

echo "| events | path | format | rows | seconds | rows/s | peak RSS | file size |"
echo "|---:|---|---|---:|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
    dir=$(mktemp -d /tmp/auditlog-bench.XXXXXX)
    "$bin" --data-dir "$dir" account create bench >/dev/null
    ingest=$("$bin" --data-dir "$dir" key create --account bench --scope ingest)
    read=$("$bin" --data-dir "$dir" key create --account bench --scope read)
    start_server "$dir"
    python3 bench/load-events.py "$url" "$ingest" "$n" >&2
    stop_server

    # 1. The server's worker.
    start_server "$dir"
    created=$(curl -sf -X POST "$url/api/v1/exports" -H "Authorization: Bearer $read" \
        -H 'Content-Type: application/json' -d '{"format":"csv"}')
    id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["export"]["id"])' "$created")
    while :; do
        export_json=$(curl -sf "$url/api/v1/exports/$id" -H "Authorization: Bearer $read")
        status=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["export"]["status"])' "$export_json")
        [ "$status" = completed ] && break
        [ "$status" = failed ] && { echo "export failed: $export_json" >&2; exit 1; }
        sleep 0.2
    done
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    python3 - "$export_json" "$n" "$(kib "$hwm")" <<'PY'
import json, sys
from datetime import datetime
e = json.loads(sys.argv[1])["export"]
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
seconds = (t(e["completed_at"]) - t(e["created_at"])).total_seconds()
print(f"| {int(sys.argv[2]):,} | server worker | csv | {e['row_count']:,} | {seconds:.1f} | {e['row_count'] / seconds:,.0f} | {sys.argv[3]} | {e['size_bytes'] / 2**20:.0f} MiB |")
PY
    stop_server

    # 2. The CLI, same writer.
    for format in csv jsonl-gzip; do
        args=(--format "${format%-gzip}"); out="$dir/out.${format%-gzip}"
        [ "$format" = jsonl-gzip ] && { args+=(--gzip); out="$out.gz"; }
        /usr/bin/time -v "$bin" --data-dir "$dir" export --account bench "${args[@]}" -o "$out" 2>"$dir/time.txt"
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time.txt")
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time.txt")
        seconds=$(python3 -c 'import sys; p=[float(x) for x in sys.argv[1].split(":")]; print(sum(v*60**i for i,v in enumerate(reversed(p))))' "$wall")
        size=$(stat -c %s "$out")
        # Rows in the file (the bench data has no line breaks in cells; the
        # CSV header is not a row).
        if [ "$format" = csv ]; then rows=$(($(wc -l <"$out") - 1)); else rows=$(gzip -dc "$out" | wc -l); fi
        python3 -c 'import sys; n,rows,s,rss,size,f=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]),sys.argv[4],int(sys.argv[5]),sys.argv[6]; print(f"| {n:,} | auditlog export | {f} | {rows:,} | {s:.1f} | {rows/s:,.0f} | {rss} | {size/2**20:.0f} MiB |")' \
            "$n" "$rows" "$seconds" "$(kib "$rss")" "$size" "$format"
    done
    rm -rf "$dir"
done
