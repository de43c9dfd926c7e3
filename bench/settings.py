"""Settings for the locator benchmark: the project settings plus a second database, `postgis`.

`default` is whatever DATABASE_URL names (scripts/bench.sh points it at a SpatiaLite file in a
temporary directory); `postgis` comes from POSTGIS_URL (scripts/services.sh exports it).
"""

from __future__ import annotations

import os

import dj_database_url

from config.settings import *  # noqa: F403
from config.settings import DATABASES

DATABASES["postgis"] = dj_database_url.parse(os.environ["POSTGIS_URL"])

# DJANGO_DEBUG=1 only supplies the development secret key and hosts. With DEBUG on, Django logs
# every query (CursorDebugWrapper), which would add its own cost to the ORM timings.
DEBUG = False
