#!/usr/bin/env bash
# The demo: install, create the SpatiaLite database, load the demo geography and users, serve
# with Daphne on 127.0.0.1:8000. Re-running is quick and keeps the database.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh runtime
mkdir -p var
[ -f var/secret_key ] || (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key)
HOST="${CITYOPS_DEMO_HOST:-127.0.0.1}"; PORT="${CITYOPS_DEMO_PORT:-8000}"
# The demo runs as a deployment does (DEBUG off: the site's own error pages, no tracebacks or
# settings shown, the browsable API off), except that it speaks plain HTTP on this machine:
# no redirect to HTTPS, cookies not marked Secure, no HSTS (each can be set in the environment).
export DJANGO_DEBUG="${DJANGO_DEBUG:-0}"
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-$(cat var/secret_key)}"
export DJANGO_ALLOWED_HOSTS="${DJANGO_ALLOWED_HOSTS:-127.0.0.1,localhost,$HOST}"
export DJANGO_SECURE_SSL_REDIRECT="${DJANGO_SECURE_SSL_REDIRECT:-0}"
export DJANGO_SESSION_COOKIE_SECURE="${DJANGO_SESSION_COOKIE_SECURE:-0}"
export DJANGO_CSRF_COOKIE_SECURE="${DJANGO_CSRF_COOKIE_SECURE:-0}"
export DJANGO_SECURE_HSTS_SECONDS="${DJANGO_SECURE_HSTS_SECONDS:-0}"
PY=.venv/bin/python
$PY manage.py migrate --no-input -v0
$PY manage.py gridmap_demo
$PY manage.py incidents_load_categories
$PY manage.py incidents_load_calendar
$PY manage.py collectstatic --no-input -v0
$PY manage.py cityops_demo_users
# A fresh database gets a demo day of cases, moved through the loop by the real services, and a
# kiosk token for the wall screen (its URL is kept in var/demo_wall_url: the token is shown once).
if [ "$($PY manage.py shell -v0 -c 'from incidents.models import Incident; print(Incident.objects.exists())')" = "False" ]; then
  echo "==> loading a demo day of cases (scripts/wall_demo_load.py)"
  $PY manage.py shell -v0 <scripts/wall_demo_load.py
  rm -f var/demo_wall_url
fi
if [ ! -s var/demo_wall_url ]; then
  (umask 077; $PY manage.py command_issue_screen_token --name "演示大屏 demo wall" \
    --base-url "http://$HOST:$PORT" > var/demo_wall_url)
fi
WALL_URL="$(cat var/demo_wall_url)"
cat <<MSG

CityOps demo — 龙华区一网统管 (street/community/grid lines are a SYNTHETIC demo partition)
  Home            http://$HOST:$PORT/
  Geography map   http://$HOST:$PORT/map/
  Locate API      http://$HOST:$PORT/api/v1/locate?lon=114.0305&lat=22.6696
  Regions API     http://$HOST:$PORT/api/v1/regions/?level=street
  API docs        http://$HOST:$PORT/api/docs/
  Sign in         http://$HOST:$PORT/accounts/login/
  Incidents API   http://$HOST:$PORT/api/v1/incidents/   (after signing in)
  Wall screen     $WALL_URL   (kiosk token, no sign-in)
  Consoles        http://$HOST:$PORT/command/   (street, community, department, intake)
  Grid worker     http://$HOST:$PORT/m/   (phone view; sign in as gridworker)
  Open311         http://$HOST:$PORT/open311/v2/services.json
  Admin           http://$HOST:$PORT/admin/
Serving with Daphne on $HOST:$PORT, with the escalation worker (预警/督办, every 30 s)
(Ctrl-C to stop both).
MSG
# The worker is a separate process: with the demo's in-process channel layer its events reach
# open screens through the database, at their next heartbeat (docs/realtime.md).
$PY manage.py dispatch_escalate --interval 30 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT
.venv/bin/daphne -b "$HOST" -p "$PORT" config.asgi:application
