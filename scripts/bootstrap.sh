#!/usr/bin/env bash
# Install what CityOps needs on a Debian 12 machine: Debian packages, the Python virtual
# environment, the npm packages. Safe to re-run: each step is skipped when already done.
#   scripts/bootstrap.sh          runtime (the demo)
#   scripts/bootstrap.sh dev      runtime + test servers, browser and tooling
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-runtime}"

RUNTIME_DEBS=(gdal-bin libgdal-dev libsqlite3-mod-spatialite libgeos-dev libpq5 libpq-dev python3.11
  python3.11-venv python3.11-dev build-essential libjpeg-dev zlib1g-dev libpng-dev libwebp-dev
  nodejs npm)
DEV_DEBS=(postgresql-15 postgresql-15-postgis-3 redis-server chromium fonts-noto-cjk gettext)
DEBS=("${RUNTIME_DEBS[@]}")
[ "$MODE" = dev ] && DEBS+=("${DEV_DEBS[@]}")

missing=()
for pkg in "${DEBS[@]}"; do
  if [ "$pkg" = nodejs ] || [ "$pkg" = npm ]; then
    command -v "${pkg/nodejs/node}" >/dev/null 2>&1 && continue
  fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=/usr/bin/python3.11  # Debian's build: its sqlite3 can load mod_spatialite
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sqlite3; sqlite3.connect(":memory:").enable_load_extension(True)' 2>/dev/null; then
  echo "==> creating .venv with $PY"
  rm -rf .venv
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade "pip==26.3"
fi
REQ=requirements.txt
[ "$MODE" = dev ] && REQ=requirements-dev.txt
STAMP=".venv/.installed-$(cat requirements.txt "$REQ" | sha256sum | cut -c1-16)-$MODE"
if [ ! -f "$STAMP" ]; then
  echo "==> pip install -r $REQ"
  .venv/bin/pip install -q -r "$REQ"
  touch "$STAMP"
fi

NPM_STAMP="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -f "$NPM_STAMP" ]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$NPM_STAMP"
fi
