#!/usr/bin/env bash
# The demo: install, create the SpatiaLite database, load the demo geography and users, serve
# with Daphne on 127.0.0.1:8000. Re-running is quick and keeps the database.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh runtime
mkdir -p var
[ -f var/secret_key ] || (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key)
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-$(cat var/secret_key)}"
export DJANGO_ALLOWED_HOSTS="${DJANGO_ALLOWED_HOSTS:-127.0.0.1,localhost}"
PY=.venv/bin/python
$PY manage.py migrate --no-input -v0
$PY manage.py gridmap_demo
$PY manage.py incidents_load_categories
$PY manage.py incidents_load_calendar
$PY manage.py collectstatic --no-input -v0
$PY manage.py cityops_demo_users
HOST="${CITYOPS_DEMO_HOST:-127.0.0.1}"; PORT="${CITYOPS_DEMO_PORT:-8000}"
cat <<MSG

CityOps demo — 龙华区一网统管 (street/community/grid lines are a SYNTHETIC demo partition)
  Home            http://$HOST:$PORT/
  Geography map   http://$HOST:$PORT/map/
  Locate API      http://$HOST:$PORT/api/v1/locate?lon=114.0305&lat=22.6696
  Regions API     http://$HOST:$PORT/api/v1/regions/?level=street
  API docs        http://$HOST:$PORT/api/docs/
  Sign in         http://$HOST:$PORT/accounts/login/
  Incidents API   http://$HOST:$PORT/api/v1/incidents/   (after signing in)
  Admin           http://$HOST:$PORT/admin/
Serving with Daphne on $HOST:$PORT (Ctrl-C to stop).
MSG
exec .venv/bin/daphne -b "$HOST" -p "$PORT" config.asgi:application
