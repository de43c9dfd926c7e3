"""GeoDjango's SpatiaLite backend, with its library lookup done once per process.

`django.contrib.gis.db.backends.spatialite.base.DatabaseWrapper.__init__` calls
`ctypes.util.find_library("spatialite")` every time a wrapper is made, and on Linux that runs
`ldconfig -p` in a subprocess. Under Daphne each request runs in a thread of its own and gets a
new wrapper, so every request paid for a fork and exec (about 1 ms of the server's CPU, more of
the machine's). The answer cannot change while the process runs: it is looked up once here.
"""

from __future__ import annotations

from ctypes.util import find_library
from functools import cache

from django.contrib.gis.db.backends.spatialite import base as gis_spatialite

# The module-level name the GeoDjango wrapper's __init__ looks up when it runs.
gis_spatialite.find_library = cache(find_library)  # type: ignore[attr-defined]


class DatabaseWrapper(gis_spatialite.DatabaseWrapper):
    """The GeoDjango SpatiaLite wrapper; only the library lookup above differs."""
