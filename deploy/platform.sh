#!/usr/bin/env bash
# The platform deployment on this machine, in one command: invite-http in platform mode
# (AMQP_URL set: it serves the API and publishes work) and two invite-worker processes (they
# run the engine), on the local PostgreSQL and RabbitMQ (started first if they are not
# answering, as CI does). Ctrl-C (or SIGTERM) stops every process gracefully.
#
#   deploy/platform.sh                 # API on 127.0.0.1:8003, workers' admin on :8004, :8005
#   WORKERS=4 deploy/platform.sh       # more workers
#
# Variables (all optional): DATABASE_URL (default postgres://postgres@127.0.0.1:5432/
# invite_platform, created if missing), AMQP_URL (default the local guest account), WORKERS (2),
# ADMIN_PORT (8004: the first worker's admin port, the next ones follow), BIND_ADDR
# (127.0.0.1:8003), AMQP_QUEUE_PREFIX (none), PROFILE (release; debug builds faster), INVITE_JWT_SECRET (unset: the API prints a development token),
# and every variable of invite-http and invite-worker (see their --help / README).
set -euo pipefail
cd "$(dirname "$0")/.."

. .ci/services.sh
start_postgres
start_rabbitmq

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/invite_platform}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
WORKERS="${WORKERS:-2}"
ADMIN_PORT="${ADMIN_PORT:-8004}"

# The database, if it does not exist yet (the processes migrate it at start).
db="${DATABASE_URL##*/}"
db="${db%%\?*}"
server="${DATABASE_URL%/*}/postgres"
if ! psql "$server" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  echo "creating database $db"
  psql "$server" -qc "CREATE DATABASE \"$db\""
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ "${PROFILE:-release}" = debug ]; then
  cargo build -p invite-http -p invite-worker
  bin="$CARGO_TARGET_DIR/debug"
else
  cargo build --release -p invite-http -p invite-worker
  bin="$CARGO_TARGET_DIR/release"
fi

pids=()
stop() {
  trap - INT TERM EXIT
  if [ "${#pids[@]}" -gt 0 ]; then
    echo "stopping ${#pids[@]} processes"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop INT TERM EXIT

for ((i = 0; i < WORKERS; i++)); do
  WORKER_ADMIN_ADDR="127.0.0.1:$((ADMIN_PORT + i))" "$bin/invite-worker" &
  pids+=("$!")
done
"$bin/invite-http" &
pids+=("$!")

echo "platform: invite-http on ${BIND_ADDR:-127.0.0.1:8003} (platform mode), $WORKERS workers (admin on 127.0.0.1:$ADMIN_PORT…); Ctrl-C stops"
# Runs until one process exits (then stops the others) or Ctrl-C.
wait -n "${pids[@]}"
