#!/usr/bin/env bash
# usage: qtimes.sh BIN DATA_DIR KEY LABEL — starts the server, times each
# histogram (day) 9 times after one warm-up, prints the median ms and total.
set -euo pipefail
BIN=$1; DATA=$2; KEY=$3; LABEL=$4
PORT=18714
env -u AUDITLOG_DATABASE_URL AUDITLOG_LOG=warn "$BIN" --data-dir "$DATA" serve --listen 127.0.0.1:$PORT > /work/benchdir-search14/server-$LABEL.log 2>&1 &
PID=$!
START=$(date +%s.%N)
for i in $(seq 1 1200); do grep -q "auditlog listening on" /work/benchdir-search14/server-$LABEL.log && break; sleep 0.5; done
echo "$LABEL open+listen_s=$(python3 -c "print(round($(date +%s.%N)-$START,1))")"
sleep 1
for q in 'q=user:u-0001' 'q=user:u-0001,u-0002,u-0003' 'user=u-0001' 'q=-user:u-0001' 'q=user:u-0001%20time:2025-06-30..2025-07-06' 'q=target:TC-1'; do
  url="http://127.0.0.1:$PORT/api/v1/events/histogram?interval=day&$q"
  total=$(curl -s -H "Authorization: Bearer $KEY" "$url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
  times=()
  for i in $(seq 1 9); do times+=($(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $KEY" "$url")); done
  med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 5p)
  echo "$LABEL $q total=$total median_ms=$(python3 -c "print(round($med*1000,2))") all_s=${times[*]}"
done
kill -TERM $PID; wait $PID 2>/dev/null || true
