#!/usr/bin/env bash
# Writes the seed corpora from realistic inputs: the events of `serve --demo`
# (as a client would send them, and as JSON Lines batches for the CSV writer),
# the examples of SPEC.md and the README, and the queries the console makes.
# The committed corpora (corpus/<target>/) started from these seeds and were
# then grown by fuzzing and minimised with `cargo fuzz cmin`; see README.md.
#
#   fuzz/seed.sh [OUT_DIR]   (default fuzz/seeds; needs curl and jq;
#                             AUDITLOG_BIN=path uses that binary instead of building one)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-fuzz/seeds}"
mkdir -p "$out"/{event_parse,query_params,csv_writer}
bin="${AUDITLOG_BIN:-}"
if [[ -z "$bin" ]]; then
    cargo build -q -p auditlog
    bin="${CARGO_TARGET_DIR:-target}/debug/auditlog"
fi
data="$(mktemp -d)"
log="$data/serve.log"
"$bin" serve --demo --data-dir "$data" --listen 127.0.0.1:0 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 120); do
    grep -q "listening on" "$log" && break
    sleep 1
done
base="$(grep -o 'http://[0-9.:]*' "$log" | head -n1)"
key="$(sed -n 's/.*read key: //p' "$log" | head -n1)"
get() { curl -sf -H "Authorization: Bearer $key" "$base/api/v1/events?$1"; }

# Demo events as clients send them: the stored fields (account, seq,
# received_at, hash) removed; one per file for event_parse.
get "limit=200" | jq -c '.events[] | del(.account, .seq, .received_at, .hash)' >"$data/events.jsonl"
n=0
while IFS= read -r line; do
    n=$((n + 1))
    printf '%s' "$line" >"$out/event_parse/demo-$n.json"
done <"$data/events.jsonl"
# ... and as JSON Lines batches of five for the CSV writer.
split -l 5 -d -a 3 "$data/events.jsonl" "$out/csv_writer/demo-"

# The SPEC.md example event, and the README's.
spec='{"id":"7f3c9a2e-6d1b-4c55-9a8e-0b6f1f5e2c11","time":"2026-11-25T14:03:07.123456Z","event_type":"Test Case","action":"Update","actor":{"id":"u-17","name":"Ada Lovelace","email":"ada@example.com"},"project":"Checkout","app":"Web","version":"2.3","target":{"id":"TC-1042","name":"Login with SSO"},"details":{"changes":[{"field":"title","old":"Login","new":"Login with SSO"}]},"context":{"ip":"203.0.113.7","user_agent":"Mozilla/5.0 …","request_id":"r-88"}}'
printf '%s' "$spec" >"$out/event_parse/spec-example.json"
printf '%s\n' "$spec" >"$out/csv_writer/spec-example.jsonl"
# Cells a spreadsheet would run, quotes, line breaks and non-ASCII (from the writer's tests).
printf '%s\n' '{"id":"e,1","time":"2026-11-25T14:03:07.123456Z","event_type":"Test Case","action":"Update","actor":{"id":"=HYPERLINK(\"x\")","name":"Ada, \"the\" Countess","email":"@ada"},"project":"+Checkout\r\nline two","app":"-Web","version":"\tv2","target":{"id":"TC-1","name":"Ünïcödé ✓ 日本"},"details":{"changes":[{"field":"title","old":"a,b","new":"say \"hi\"\n"}]},"context":{"ip":"2001:DB8::1","user_agent":"Mozilla/5.0 (X11; Linux)"}}' \
    >"$out/csv_writer/formula-cells.jsonl"
printf '%s' '{"event_type":"authentication","action":"LOGIN","actor":{"id":"u1"},"details":{"n":[1,1.5,-0,1e21,1e-7,9007199254740993,18446744073709551615]}}' \
    >"$out/event_parse/minimal-with-numbers.json"

# The queries of the README and the console, with real cursors from the demo data.
cursor="$(get "limit=3" | jq -r .next_cursor)"
i=0
for query in \
    "event_type=Test%20Case&action=Update&project=Checkout&limit=5" \
    "user=u-17&interval=day" \
    "event_type=test+case&event_type=Element&action=delete&user=u-1&user=u-2&project=Checkout&app=Web&version=2.3&target_id=TC-1042" \
    "from=2026-11-01T00:00:00Z&to=2026-11-25T23:59:59.999999%2B01:00&limit=1000" \
    "limit=50&cursor=$cursor" \
    "cursor=$cursor&cursor=$cursor" \
    "limit=0" \
    "from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z" \
    '{"event_type":["Test Case","element"],"action":"Update","project":"Checkout","from":"2026-01-01T00:00:00Z"}' \
    '{"user":["u-17"],"app":null,"to":"2026-11-25T14:03:07.123456Z"}'; do
    i=$((i + 1))
    printf '%s' "$query" >"$out/query_params/q-$i"
done
echo "seeds written to $out: $(find "$out" -type f | wc -l) files"
