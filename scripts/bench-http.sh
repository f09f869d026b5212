#!/usr/bin/env bash
# HTTP load on a release `invite-http` on PostgreSQL (a scratch database, 10 sandbox accounts),
# `wrk -t2 -c64 --latency` for 10 s; prints requests/s and p99. Two modes:
#
#   status  `GET /tasks/{id}/status` of one running sandbox invite task (2 000 targets,
#           Telegram's limits so it keeps running)
#   create  `POST /tasks`: a new sandbox invite task of TARGETS (100) targets per request,
#           each with its own name (the task, its targets and their de-duplication written)
#
#   scripts/bench-http.sh status
#   CONNECTIONS=32 DURATION=20s scripts/bench-http.sh create
#
# Needs `psql`, `curl` and `wrk` (Debian: `apt-get install -y wrk`). Uses the server at
# DATABASE_TEST_URL (default postgres://postgres@127.0.0.1:5432/postgres); the database
# `invite_bench_http_<pid>` is dropped at the end. The binary is built with
# `cargo build --release -p invite-http` into CARGO_TARGET_DIR (default `target`); set
# INVITE_HTTP_BIN to use another one.
set -euo pipefail

MODE=${1:-status}
case "$MODE" in status | create) ;; *) echo "usage: $0 status|create" >&2; exit 2 ;; esac

ADMIN_URL=${DATABASE_TEST_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-18003}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
DB=invite_bench_http_$$
URL=${ADMIN_URL%/*}/$DB
API=http://127.0.0.1:$PORT/api/v1/invite
LOG=$(mktemp)
LUA=$(mktemp --suffix=.lua)
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${INVITE_HTTP_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release -q -p invite-http)
    INVITE_HTTP_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/invite-http
fi

psql "$ADMIN_URL" -Xqc "CREATE DATABASE $DB"
SERVER=
cleanup() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    psql "$ADMIN_URL" -Xqc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
    rm -f "$LOG" "$LUA"
}
trap cleanup EXIT

DATABASE_URL=$URL BIND_ADDR=127.0.0.1:$PORT INVITE_SANDBOX_ACCOUNTS=10 \
    INVITE_SANDBOX_TIME_SCALE=1 INVITE_MAX_TARGETS_PER_TASK=100000 RUST_LOG=warn \
    "$INVITE_HTTP_BIN" >"$LOG" 2>&1 &
SERVER=$!
TOKEN=
for _ in $(seq 1 100); do
    TOKEN=$(sed -n 's/^ *export TOKEN=//p' "$LOG")
    if [ -n "$TOKEN" ] && curl -sf "$API/health" >/dev/null 2>&1; then break; fi
    sleep 0.2
done
[ -n "$TOKEN" ] || { cat "$LOG"; echo "invite-http did not start" >&2; exit 1; }
AUTH="Authorization: Bearer $TOKEN"

if [ "$MODE" = create ]; then
    # Each request a task of its own, named by wrk thread and request number.
    PEOPLE=$(seq -f '"@create_person_%05g"' 1 "${TARGETS:-100}" | paste -sd, -)
    cat >"$LUA" <<LUA
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end
-- wrk.format's own header table would replace the -H headers (the token): add to them instead.
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
    n = n + 1
    local body = '{"name": "load ' .. id .. ' ' .. n .. '", "platform": "sandbox", '
        .. '"action": "invite", "group": "@load_group", "targets": [$PEOPLE]}'
    return wrk.format("POST", nil, nil, body)
end
LUA
    OUT=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "$AUTH" -s "$LUA" "$API/tasks")
    WHAT="POST /tasks of ${TARGETS:-100} targets"
else
    PEOPLE=$(seq -f '"@load_person_%05g"' 1 2000 | paste -sd, -)
    ID=$(curl -sf -X POST "$API/tasks" -H "$AUTH" -H 'Content-Type: application/json' \
        -d "{\"name\": \"load\", \"platform\": \"sandbox\", \"action\": \"invite\", \
             \"group\": \"@load_group\", \"targets\": [$PEOPLE]}" |
        sed -E 's/.*"task":\{"id":([0-9]+).*/\1/')
    curl -sf -X POST "$API/tasks/$ID/start" -H "$AUTH" >/dev/null
    sleep 2
    STATUS=$(curl -sf "$API/tasks/$ID/status" -H "$AUTH")
    echo "task $ID: $STATUS" | cut -c1-300

    OUT=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "$AUTH" "$API/tasks/$ID/status")
    WHAT="status of a running task"
fi
echo "$OUT"
RPS=$(echo "$OUT" | sed -n 's/^Requests\/sec: *//p')
P99=$(echo "$OUT" | awk '$1 == "99%" {print $2}')
NON2XX=$(echo "$OUT" | sed -n 's/^ *Non-2xx or 3xx responses: *//p')
echo
echo "$WHAT, 10 accounts, wrk -t2 -c$CONNECTIONS -d$DURATION: rps: $RPS p99: $P99 non-2xx: ${NON2XX:-0}"
