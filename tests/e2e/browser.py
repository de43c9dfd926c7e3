"""How we start Debian's Chromium (never a downloaded browser): used by the browser tests and by
scripts/screenshots.py.

As root in a sandbox without a GPU; background networking off, because the machine's closed
network refuses Chromium's own connections (updates, safe browsing, sync).
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
