"""Settings of the intake benchmark's server: the project settings with the bench URLconf, which
adds the plain DRF references (bench/intake_reference.py) beside the product's API.

DATABASE_URL names the bench database (a SpatiaLite file that bench/intake_bench.py creates,
or the PostGIS database it is pointed at); REDIS_URL, when set, the channel layer.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.intake_urls"
# DJANGO_DEBUG=1 only supplies the development secret key and hosts. With DEBUG on, Django keeps
# every query in memory (CursorDebugWrapper), which would add its own cost to every request.
DEBUG = False
