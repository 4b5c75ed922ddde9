#!/bin/bash
# usage: KEY=<api key> DATA_DIR=<store> bench/first-pages.sh <auditlog-bin> <label>: first pages (limit 50) over one keep-alive connection;
# server CPU per request from /proc/<pid>/stat, latency p50/p95 of 400 requests after 100 warm-up.
# QUERIES='<query string>|<query string>|...' replaces the default queries.
BIN=$1; L=$2; K=${KEY:?the first key of the bench manifest (manifest.json)}
$BIN serve --data-dir ${DATA_DIR:-target/bench-work/auditlog} --listen 127.0.0.1:18080 > /tmp/serve-$L.log 2>&1 &
P=$!; sleep 2
cpu() { awk '{print $14+$15}' /proc/$P/stat; }
DEFAULT='q=project:Checkout|q=type:%22Test%20Case%22|q=user:u-0001|project=Checkout|user=u-0001|event_type=Test%20Case&from=2025-06-30T00:00:00Z&to=2025-07-07T00:00:00Z'
IFS='|' read -r -a QS <<< "${QUERIES:-$DEFAULT}"
for q in "${QS[@]}"; do
  URLS=(); for i in $(seq 1 500); do URLS+=(-o /dev/null "http://127.0.0.1:18080/api/v1/events?limit=50&$q"); done
  c0=$(cpu)
  curl -s -H "Authorization: Bearer $K" -w "%{time_total}\n" "${URLS[@]}" > /tmp/lat-$L.txt
  c1=$(cpu)
  tail -n 400 /tmp/lat-$L.txt | sort -n | awk -v q="$q" -v l="$L" -v cpu=$((c1-c0)) '{a[NR]=$1} END {printf "%-5s %-70s p50 %5.2f ms  p95 %5.2f ms  server CPU %.2f ms/request\n", l, q, a[int(NR*0.5)]*1000, a[int(NR*0.95)]*1000, cpu*10/500}'
done
kill $P; wait $P 2>/dev/null
