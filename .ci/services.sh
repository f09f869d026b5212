# Starts (or checks) the local services the test suites talk to. Sourced by .ci/run.
# Each is started only if it is not answering already; a service that cannot be started
# fails the run.

wait_port() { # host port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

start_postgres() {
  if ! wait_port 127.0.0.1 5432 1; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    wait_port 127.0.0.1 5432 30 || { echo "PostgreSQL did not start" >&2; return 1; }
  fi
  export DATABASE_TEST_URL="${DATABASE_TEST_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
}

start_rabbitmq() {
  if ! wait_port 127.0.0.1 5672 1; then
    echo "starting RabbitMQ"
    rabbitmq-server -detached
    wait_port 127.0.0.1 5672 60 || { echo "RabbitMQ did not start" >&2; return 1; }
  fi
  export AMQP_TEST_URL="${AMQP_TEST_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
}

start_services() {
  start_postgres
  start_rabbitmq
}
