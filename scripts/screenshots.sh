#!/usr/bin/env bash
# Screenshots for the documentation (docs/screenshots/*.png), taken with Debian's Chromium.
#
# Uses a throw-away SpatiaLite database and static root in a temporary directory: migrate, load
# the demo geography and users, add a draft generation with deliberate errors (so the admin shows
# a validation report with findings), collect static files, serve with Daphne on a free local
# port, run scripts/screenshots.py, stop Daphne. Nothing outside docs/screenshots/ is changed
# (besides var/demo_password, which cityops_demo_users keeps).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev

TMP="$(mktemp -d "${TMPDIR:-/tmp}/cityops-screenshots.XXXXXX")"
DAPHNE_PID=""
cleanup() {
  if [ -n "$DAPHNE_PID" ] && kill -0 "$DAPHNE_PID" 2>/dev/null; then
    kill "$DAPHNE_PID" 2>/dev/null || true
    wait "$DAPHNE_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

PY=.venv/bin/python
export DATABASE_URL="spatialite:///$TMP/screenshots.sqlite3"
export DJANGO_DEBUG=1
export DJANGO_STATIC_ROOT="$TMP/static"
export DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost"
export CITYOPS_MAP_TILE_URL=""  # the screenshots show the offline map
export DJANGO_MEDIA_ROOT="$TMP/media"  # photos of the demo cases
export CITYOPS_LOG_LEVEL="${CITYOPS_LOG_LEVEL:-WARNING}"

echo "==> database and demo data in $TMP"
$PY manage.py migrate --no-input -v0
$PY manage.py gridmap_demo
$PY manage.py cityops_demo_users >/dev/null
$PY manage.py shell -v0 <<'PYTHON'
# A draft with a gap (one community's grid cells left out) and an overlap (one cell grown into its
# neighbours): what an import with mistakes looks like before it is validated.
import shapely

from gridmap.demo import build_demo_partition
from gridmap.models import Generation, Level
from gridmap.services import generation_create_draft, regions_add

if not Generation.objects.filter(label__startswith="草稿示例").exists():
    partition = build_demo_partition()
    gap_community = partition.communities[7].code
    grids = [g for g in partition.grids if not g.code.startswith(gap_community)]
    grids += [g for g in partition.grids if g.code.startswith(gap_community)][:3]
    grids[100].geom = shapely.buffer(grids[100].geom, 0.0006)
    draft = generation_create_draft(
        label="草稿示例：有缝隙和重叠 draft with errors",
        source="scripts/screenshots.sh: the demo partition with a gap and an overlap",
        synthetic=True,
    )
    for level, regions in (
        (Level.DISTRICT, partition.district),
        (Level.STREET, partition.streets),
        (Level.COMMUNITY, partition.communities),
        (Level.GRID, grids),
    ):
        regions_add(generation=draft, level=level, regions=regions)
PYTHON
# The grid worker's phone (/m/): categories and calendar, and cases waiting for the demo grid
# worker — one dispatched to them, one fixed by 城管 for them to verify; the point they stand on.
$PY manage.py incidents_load_categories -v0
$PY manage.py incidents_load_calendar -v0
$PY manage.py shell -v0 >"$TMP/mobile_point" <<'PYTHON'
import shapely

from accounts.models import User
from gridmap.models import Region
from incidents.models import Category, Incident
from incidents.services import (
    incident_accept, incident_dispatch, incident_feed_back, incident_register, incident_report,
)

worker = User.objects.get(username="gridworker")
grid = Region.objects.get(generation__status="active", code=worker.place_code)
point = shapely.point_on_surface(shapely.from_wkb(bytes(grid.geom.wkb)))
if not Incident.objects.filter(grid_code=worker.place_code).exists():
    district, handler = User.objects.get(username="district"), User.objects.get(username="dept")

    def case(code, text):
        made = incident_report(
            channel="citizen", category=Category.objects.get(code=code),
            lon=point.x, lat=point.y, description=text,
        )
        return incident_register(incident=made, by=district)

    mine = case("01001", "人行道供水井盖缺失，已用锥桶临时围挡")
    incident_dispatch(incident=mine, by=district, assignee=worker)
    fixed = case("06010", "小区门口垃圾堆放")
    incident_dispatch(incident=fixed, by=district, department_code="CGJ")
    incident_accept(incident=fixed, by=handler)
    incident_feed_back(incident=fixed, by=handler, feedback="已清运，现场已清扫")
print(point.x, point.y)
PYTHON
# The wall screen (/command/wall/): a day of several dozen cases across the streets (some
# overdue, escalated, closed), and a screen token to open it as a kiosk does.
$PY manage.py shell -v0 <scripts/wall_demo_load.py
WALL_PATH="$($PY manage.py command_issue_screen_token --name "文档截图大屏" 2>/dev/null)"
# The consoles: a morning's queue in 龙华街道 with callers, addresses and one case fed back with
# photos (the number of that case is the script's last line).
CONSOLE_CASE="$($PY manage.py shell -v0 <scripts/consoles_demo_load.py | tail -n 1)"
$PY manage.py collectstatic --no-input -v0

PORT="$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
echo "==> daphne on 127.0.0.1:$PORT"
.venv/bin/daphne -b 127.0.0.1 -p "$PORT" config.asgi:application >"$TMP/daphne.log" 2>&1 &
DAPHNE_PID=$!
for _ in $(seq 1 100); do
  if $PY -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/', timeout=1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$DAPHNE_PID" 2>/dev/null; then
    cat "$TMP/daphne.log"
    echo "daphne exited" >&2
    exit 1
  fi
  sleep 0.2
done

echo "==> screenshots"
$PY scripts/screenshots.py --base-url "http://127.0.0.1:$PORT" --out docs/screenshots \
  --username admin --password-file var/demo_password
read -r MOBILE_LON MOBILE_LAT <"$TMP/mobile_point"
$PY scripts/screenshots_mobile.py --base-url "http://127.0.0.1:$PORT" --out docs/screenshots \
  --username gridworker --password-file var/demo_password --lon "$MOBILE_LON" --lat "$MOBILE_LAT"
$PY scripts/screenshots_wall.py --base-url "http://127.0.0.1:$PORT" --wall-path "$WALL_PATH" \
  --out docs/screenshots
$PY scripts/screenshots_consoles.py --base-url "http://127.0.0.1:$PORT" --out docs/screenshots \
  --password-file var/demo_password --case "$CONSOLE_CASE"
