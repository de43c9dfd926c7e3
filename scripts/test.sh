#!/usr/bin/env bash
# The test command: install, start private PostgreSQL/PostGIS + Redis, run linters and type
# checks, run the whole suite on SpatiaLite and on PostGIS, stop the servers (even on failure).
# Extra arguments go to pytest, e.g. scripts/test.sh -k locator
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev || exit 1
# shellcheck source=scripts/services.sh
source scripts/services.sh
trap services_stop EXIT
services_start || exit 1

export DJANGO_DEBUG=0
export DJANGO_SECRET_KEY="test-only-$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(40))')"
export DJANGO_ALLOWED_HOSTS="localhost,127.0.0.1,testserver"
export DJANGO_SECURE_SSL_REDIRECT=0
export CITYOPS_ANON_RATE="100000/minute"
export PYTHONDONTWRITEBYTECODE=1
export DJANGO_STATIC_ROOT="$CITYOPS_SERVICES_DIR/static"
PY=.venv/bin/python
failed=()
step() {
  local name="$1"; shift
  echo; echo "==> $name"
  if ! "$@"; then failed+=("$name"); fi
}

step "ruff check" .venv/bin/ruff check .
step "ruff format --check" .venv/bin/ruff format --check .
step "mypy (every app and config)" .venv/bin/mypy gridmap accounts incidents dispatch command audit realtime config
step "import-linter" .venv/bin/lint-imports
step "migrations are up to date" env DATABASE_URL="spatialite:///$CITYOPS_SERVICES_DIR/check.sqlite3" \
  $PY manage.py makemigrations --check --dry-run
step "collectstatic (manifest storage, as in production)" env DATABASE_URL="spatialite:///$CITYOPS_SERVICES_DIR/check.sqlite3" \
  $PY manage.py collectstatic --no-input -v0
step "pytest on SpatiaLite" env DATABASE_URL="spatialite:///$CITYOPS_SERVICES_DIR/cityops.sqlite3" \
  SPATIALITE_TEST_NAME="$CITYOPS_SERVICES_DIR/test_cityops.sqlite3" \
  $PY -m pytest -p no:cacheprovider "$@"
step "pytest on PostGIS" env DATABASE_URL="$POSTGIS_URL" $PY -m pytest -p no:cacheprovider "$@"

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "All checks passed on SpatiaLite and PostGIS."
