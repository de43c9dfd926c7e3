#!/usr/bin/env bash
# Start private PostgreSQL 15 + PostGIS and Redis 7 servers under a temporary directory, on free
# loopback ports (never the system's default instances). Source it, then call services_start;
# services_stop runs from the caller's EXIT trap.
#   exports: CITYOPS_SERVICES_DIR PGPORT REDIS_PORT POSTGIS_URL REDIS_URL

PG_BIN=/usr/lib/postgresql/15/bin

free_port() {
  .venv/bin/python - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

services_start() {
  CITYOPS_SERVICES_DIR="$(mktemp -d /tmp/cityops-services.XXXXXX)"
  chmod 755 "$CITYOPS_SERVICES_DIR"
  export CITYOPS_SERVICES_DIR
  PGPORT="$(free_port)"; REDIS_PORT="$(free_port)"
  export PGPORT REDIS_PORT

  # PostgreSQL refuses to run as root: the cluster belongs to the unprivileged postgres user.
  local pgdata="$CITYOPS_SERVICES_DIR/pg" run_as=()
  local pgrun="$CITYOPS_SERVICES_DIR/pgrun"  # socket and log, writable by the server's user
  mkdir -p "$pgdata" "$pgrun"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$pgdata" "$pgrun"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$PG_BIN/initdb" -D "$pgdata" -U cityops --auth=trust -E UTF8 --locale=C.UTF-8 >"$CITYOPS_SERVICES_DIR/initdb.log" 2>&1 \
    || { cat "$CITYOPS_SERVICES_DIR/initdb.log"; return 1; }
  "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$pgdata" -l "$pgrun/pg.log" -w -t 60 start \
    -o "-p $PGPORT -k $pgrun -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null \
    || { cat "$pgrun/pg.log"; return 1; }
  "${run_as[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U cityops cityops
  export POSTGIS_URL="postgis://cityops@127.0.0.1:$PGPORT/cityops"

  mkdir -p "$CITYOPS_SERVICES_DIR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$CITYOPS_SERVICES_DIR/redis" \
    --save "" --appendonly no --daemonize yes --pidfile "$CITYOPS_SERVICES_DIR/redis/redis.pid" \
    --logfile "$CITYOPS_SERVICES_DIR/redis/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  echo "==> PostgreSQL/PostGIS on 127.0.0.1:$PGPORT, Redis on 127.0.0.1:$REDIS_PORT ($CITYOPS_SERVICES_DIR)"
}

services_stop() {
  [ -n "${CITYOPS_SERVICES_DIR:-}" ] && [ -d "$CITYOPS_SERVICES_DIR" ] || return 0
  local run_as=()
  [ "$(id -u)" -eq 0 ] && run_as=(runuser -u postgres --)
  if [ -f "$CITYOPS_SERVICES_DIR/pg/postmaster.pid" ]; then
    "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$CITYOPS_SERVICES_DIR/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ -f "$CITYOPS_SERVICES_DIR/redis/redis.pid" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$CITYOPS_SERVICES_DIR/redis/redis.pid")" 2>/dev/null || true
  fi
  rm -rf "$CITYOPS_SERVICES_DIR"
  echo "==> stopped PostgreSQL and Redis"
}
