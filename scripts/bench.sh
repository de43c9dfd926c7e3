#!/usr/bin/env bash
# The locator benchmark (make bench): install, start a private PostgreSQL/PostGIS, then time the
# in-memory locator against the ORM `covers` query on SpatiaLite and PostGIS over the demo grid
# and a 100,000-cell lattice. Prints a table; see bench/README.md. Extra arguments go to
# bench/locator_bench.py (e.g. --postgis-sample 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
# shellcheck source=scripts/services.sh
source scripts/services.sh
trap services_stop EXIT
services_start

export DJANGO_DEBUG=1
export DATABASE_URL="spatialite:///$CITYOPS_SERVICES_DIR/bench.sqlite3"
export CITYOPS_LOG_LEVEL=WARNING
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/python bench/locator_bench.py "$@"
