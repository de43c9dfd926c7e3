#!/usr/bin/env bash
# The benchmarks (make bench): install, start a private PostgreSQL/PostGIS and Redis, then run
#   locator — the in-memory locator against the ORM `covers` query on SpatiaLite and PostGIS
#             (bench/locator_bench.py);
#   intake  — single reports and bulk intake over HTTP against a Daphne server, beside plain DRF
#             creates, three times: SpatiaLite + the in-process channel layer (the embedded
#             default), PostGIS + Redis (production's shape), and PostGIS + Redis with two server
#             processes (manage.py cityops_serve --workers 2) and two bulk gateways at once
#             as one integration account, then bulk alone with the gateways as two accounts
#             (bench/intake_bench.py);
#   counters — the counter upsert bulk intake locks its sensors with (1,000 alarm sources in one
#             statement, unnest arrays) beside the same upsert as a VALUES list, on PostGIS
#             (bench/counter_bench.py);
#   ws      — 1,000 WebSocket clients on the /ws/ feed while reports surge, beside a plain
#             `websockets` broadcast server doing the same deliveries (bench/ws_bench.py);
#             PostGIS + Redis; run twice: as fast as possible, then at WS_SURGE_RATE (20)/s.
# Each prints a table; see bench/README.md.
#
#   scripts/bench.sh                     every benchmark, default sizes (no arguments)
#   scripts/bench.sh locator [args]      the locator only; args go to bench/locator_bench.py
#   scripts/bench.sh intake [args]       the intake only; args go to bench/intake_bench.py
#   scripts/bench.sh counters [args]     the counter upsert only; args go to bench/counter_bench.py
#   scripts/bench.sh ws [args]           the WebSocket fan-out only; args go to bench/ws_bench.py
set -euo pipefail
cd "$(dirname "$0")/.."
which="all"
if [ $# -gt 0 ] && [[ "$1" =~ ^(locator|intake|counters|ws|all)$ ]]; then
  which="$1"
  shift
fi
scripts/bootstrap.sh dev
# shellcheck source=scripts/services.sh
source scripts/services.sh
trap services_stop EXIT
services_start

export DJANGO_DEBUG=1
export CITYOPS_LOG_LEVEL=WARNING
export PYTHONDONTWRITEBYTECODE=1
redis_url="$REDIS_URL"
unset REDIS_URL  # each run below says which channel layer it uses

if [ "$which" = "all" ] || [ "$which" = "locator" ]; then
  DATABASE_URL="spatialite:///$CITYOPS_SERVICES_DIR/bench.sqlite3" \
    .venv/bin/python bench/locator_bench.py "$@"
fi
if [ "$which" = "all" ] || [ "$which" = "intake" ]; then
  echo
  echo "==> intake on SpatiaLite, in-process channel layer"
  DATABASE_URL="spatialite:///$CITYOPS_SERVICES_DIR/intake.sqlite3" \
    .venv/bin/python bench/intake_bench.py "$@"
  echo
  echo "==> intake on PostGIS, Redis channel layer"
  # A database of its own: the locator benchmark's PostGIS tables stay out of the way.
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U cityops intake
  DATABASE_URL="postgis://cityops@127.0.0.1:$PGPORT/intake" REDIS_URL="$redis_url" \
    .venv/bin/python bench/intake_bench.py "$@"
  echo
  echo "==> intake on PostGIS, Redis channel layer, 2 server processes, 2 bulk gateways"
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U cityops intake2
  DATABASE_URL="postgis://cityops@127.0.0.1:$PGPORT/intake2" REDIS_URL="$redis_url" \
    .venv/bin/python bench/intake_bench.py --workers 2 --gateways 2 "$@"
  echo
  echo "==> bulk on PostGIS, Redis channel layer, 2 server processes, 2 bulk gateways as 2 accounts"
  # The run above sends every batch as one integration account; here each gateway is its own
  # platform account, as two platforms would be. The dedupe locks each batch's sensors (its
  # alarm sources), not its account, so the two runs' bulk figures should agree.
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U cityops intake3
  DATABASE_URL="postgis://cityops@127.0.0.1:$PGPORT/intake3" REDIS_URL="$redis_url" \
    .venv/bin/python bench/intake_bench.py --workers 2 --gateways 2 --accounts 2 --skip-single "$@"
fi
if [ "$which" = "all" ] || [ "$which" = "counters" ]; then
  echo
  echo "==> counter upsert on PostGIS"
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U cityops counters
  DATABASE_URL="postgis://cityops@127.0.0.1:$PGPORT/counters" .venv/bin/python bench/counter_bench.py "$@"
fi
if [ "$which" = "all" ] || [ "$which" = "ws" ]; then
  echo
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U cityops wsbench
  # Twice: capacity (reports as fast as the intake takes them: deliveries per second), then a
  # paced surge (WS_SURGE_RATE reports/s, open loop: report-to-screen latency).
  echo "==> WebSocket fan-out on PostGIS, Redis channel layer: as fast as possible"
  DATABASE_URL="postgis://cityops@127.0.0.1:$PGPORT/wsbench" REDIS_URL="$redis_url" \
    .venv/bin/python bench/ws_bench.py "$@"
  echo
  echo "==> WebSocket fan-out on PostGIS, Redis channel layer: a surge of ${WS_SURGE_RATE:-20} reports/s"
  DATABASE_URL="postgis://cityops@127.0.0.1:$PGPORT/wsbench" REDIS_URL="$redis_url" \
    .venv/bin/python bench/ws_bench.py --rate "${WS_SURGE_RATE:-20}" "$@"
fi
