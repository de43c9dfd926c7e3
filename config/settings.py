"""CityOps settings. Every value that differs between machines comes from the environment.

Each variable is listed with a one-line comment in `.env.example`. Production differs from the
demo by values, not code: the demo command exports development values, CI exports test values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)

_DEV_SECRET = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env_str("DJANGO_SECRET_KEY", _DEV_SECRET if DEBUG else None)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# A refused form says what to do, in the site's look (command.views.errors).
CSRF_FAILURE_VIEW = "command.views.errors.csrf_failure"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    # Before django.contrib.auth: its changepassword and createsuperuser are the audited ones
    # (accounts/management/commands), which manage.py runs in place of Django's.
    "accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "realtime",
    "audit",
    "gridmap",
    "incidents",
    "dispatch",
    "command",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "config.query_guard.QueryNulGuardMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.sessions.SessionActivityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

# --- Database -------------------------------------------------------------------------------
# spatialite:///absolute/path.sqlite3 (embedded default) or postgis://user:pw@host:port/name.
DATABASE_URL = env_str("DATABASE_URL", f"spatialite:///{BASE_DIR / 'var' / 'cityops.sqlite3'}")
# DB_CONN_MAX_AGE: seconds a connection is kept between requests. On SpatiaLite 600 unless set:
# opening a connection opens the file and loads the extension (≈7 ms of CPU, most of what a small
# request cost), and the server's request threads are kept (config/http.py), each with its own
# connection. On PostgreSQL 0: the pool below keeps the connections.
_SPATIALITE = DATABASE_URL.startswith("spatialite")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600 if _SPATIALITE else 0)
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgis"):
    # A connection pool (psycopg_pool, Django >= 5.1). Without it each request would open (and
    # close) a new PostgreSQL connection: TCP, authentication and session set-up, several ms of
    # CPU each.
    # DB_POOL_MAX_SIZE bounds the connections of one process; requests beyond it wait for a free
    # one (DB_POOL_TIMEOUT seconds, then an error). Persistent connections (DB_CONN_MAX_AGE) and
    # the pool exclude each other: DB_POOL_MAX_SIZE=0 turns the pool off.
    pool_max = env_int("DB_POOL_MAX_SIZE", 10)
    if pool_max > 0 and DATABASES["default"].get("CONN_MAX_AGE"):
        raise ImproperlyConfigured(
            "DB_CONN_MAX_AGE and the connection pool exclude each other: set DB_POOL_MAX_SIZE=0 "
            "to keep connections open without a pool, or leave DB_CONN_MAX_AGE at 0"
        )
    if pool_max > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(env_int("DB_POOL_MIN_SIZE", 2), pool_max),
            "max_size": pool_max,
            "timeout": env_float("DB_POOL_TIMEOUT", 10.0),
        }
if DATABASES["default"]["ENGINE"].endswith("spatialite"):
    # The SpatiaLite backend with its library lookup done once per process (config/db_backends).
    DATABASES["default"]["ENGINE"] = "config.db_backends.spatialite"
    # Concurrent writers (Daphne + worker loops) wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    # BEGIN IMMEDIATE: a transaction takes the write lock when it starts, so concurrent writers
    # wait (up to the timeout) instead of failing with "database is locked" on lock upgrade.
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    # Write-ahead log: readers and the one writer no longer block each other, and a commit is
    # one append to the log (synchronous stays FULL: the log is synced before a commit returns,
    # so an acknowledged case survives a power cut). The mode is stored in the file; setting it
    # on every new connection is a no-op once it is on.
    DATABASES["default"]["OPTIONS"].setdefault("init_command", "PRAGMA journal_mode=WAL")
    test_name = env_str("SPATIALITE_TEST_NAME", "")
    if test_name:
        # A file (not :memory:) so that subprocesses in tests can open the same test database.
        DATABASES["default"]["TEST"] = {"NAME": test_name}
SPATIALITE_LIBRARY_PATH = env_str("SPATIALITE_LIBRARY_PATH", "mod_spatialite")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# gis.W001: Debian 12 ships GDAL 3.6, which cannot block file/network access from crafted
# spatial references. CityOps builds spatial references only from EPSG integers and from
# boundary files an administrator imports on the server; see docs/decisions/0003.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
AUTH_USER_MODEL = "accounts.User"
# Django's password check, refused while an address is locked out after failed sign-ins.
AUTHENTICATION_BACKENDS = ["accounts.signin.SignInBackend"]

LOGIN_URL = "login"
# The site's sign-in page sends each role to where it works (command.views.SignInView), so this
# is only Django's default for other login views.
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Language and time ---------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("CITYOPS_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # Front-end libraries installed from the npm registry (package.json), never hand-copied.
    "config.staticfinders.NpmFinder",
]
NPM_ROOT = BASE_DIR / "node_modules"
NPM_FILES = {
    "vendor/leaflet/": "leaflet/dist/",
    "vendor/ol/ol.js": "ol/dist/ol.js",
    "vendor/ol/ol.js.map": "ol/dist/ol.js.map",
    "vendor/ol/ol.css": "ol/ol.css",
    # The wall screen: marker clustering and charts.
    "vendor/leaflet.markercluster/": "leaflet.markercluster/dist/",
    "vendor/echarts/echarts.min.js": "echarts/dist/echarts.min.js",
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media/"

# --- Security ---------------------------------------------------------------------------------
# Secure by default when DEBUG is off; each can be relaxed explicitly (e.g. TLS ends at a proxy).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# A signed-in session ends after this many minutes without use (accounts.sessions; 等保's
# 登录连接超时自动退出); a grid worker's phone after the second. 0: no idle limit.
CITYOPS_SESSION_IDLE_MINUTES = env_int("CITYOPS_SESSION_IDLE_MINUTES", 30)
CITYOPS_PHONE_SESSION_IDLE_MINUTES = env_int("CITYOPS_PHONE_SESSION_IDLE_MINUTES", 720)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)

# --- Channels ---------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")


def channel_layers_for(redis_url: str) -> dict[str, Any]:
    """CHANNEL_LAYERS for a Redis URL; empty = the in-process layer (one-process demo: groups
    live in this process only). Redis pub/sub rather than channels_redis.core: ADR 0010."""
    if not redis_url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return {
        "default": {
            "BACKEND": "realtime.layers.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url]},
        }
    }


CHANNEL_LAYERS = channel_layers_for(REDIS_URL)
# Who may join which scopes: a function (user, session) → list of scopes, by dotted path, so
# that realtime imports no domain app.
REALTIME_SCOPES_FUNCTION = "command.live.scopes_for_connection"
# Seconds between heartbeats on a socket (the contract promises at most 20).
REALTIME_HEARTBEAT_SECONDS = env_float("REALTIME_HEARTBEAT_SECONDS", 15.0)
# Seconds between a socket's re-reads of its session and user (signed out, expired after the
# idle limit, deactivated, moved): the longest a socket outlives its session.
REALTIME_REAUTH_SECONDS = env_float("REALTIME_REAUTH_SECONDS", 60.0)
# Shortest interval between two `events` messages on one socket (coalescing), in seconds.
REALTIME_COALESCE_SECONDS = env_float("REALTIME_COALESCE_SECONDS", 0.25)
# Seconds between database catch-ups of a socket while the channel layer is down.
REALTIME_DOWN_POLL_SECONDS = env_float("REALTIME_DOWN_POLL_SECONDS", 5.0)
# Largest gap (events per scope) a socket replays; beyond it the client reloads its snapshot.
REALTIME_REPLAY_LIMIT = env_int("REALTIME_REPLAY_LIMIT", 1000)
# Largest inbound WebSocket message (bytes) and inbound rate (messages per second, burst).
REALTIME_MAX_MESSAGE_BYTES = env_int("REALTIME_MAX_MESSAGE_BYTES", 16384)
REALTIME_MAX_MESSAGES_PER_SECOND = env_float("REALTIME_MAX_MESSAGES_PER_SECOND", 5.0)
REALTIME_MAX_MESSAGE_BURST = env_int("REALTIME_MAX_MESSAGE_BURST", 20)
# The relay resends events still unpublished this many seconds after they were written.
REALTIME_RELAY_DELAY_SECONDS = env_float("REALTIME_RELAY_DELAY_SECONDS", 5.0)
# Seconds the relay sleeps when nothing is due, and events it claims per batch.
REALTIME_RELAY_INTERVAL_SECONDS = env_float("REALTIME_RELAY_INTERVAL_SECONDS", 1.0)
REALTIME_RELAY_BATCH = env_int("REALTIME_RELAY_BATCH", 200)
# Days of sent outbox events kept for replays (manage.py realtime_prune, realtime/retention.py).
REALTIME_OUTBOX_RETENTION_DAYS = env_int("REALTIME_OUTBOX_RETENTION_DAYS", 30)

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.SessionAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    # DRF's handler, plus 503 + Retry-After when the database is overloaded (config/api_errors).
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": env_str("CITYOPS_ANON_RATE", "600/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CityOps API",
    "DESCRIPTION": "龙华区一网统管 command and dispatch: geography, incidents, dispatch.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENABLE_DJANGO_DEPLOY_CHECK": True,
}

# --- Geography (gridmap) ----------------------------------------------------------------------
# A point outside every grid cell but within this distance of the district boundary is routed to
# the nearest grid cell and flagged; farther out it is outside the jurisdiction.
GRIDMAP_OUTSIDE_BUFFER_M = env_float("GRIDMAP_OUTSIDE_BUFFER_M", 200.0)
# How often (seconds) a process checks whether another process activated a new generation.
GRIDMAP_LOCATOR_RECHECK_SECONDS = env_float("GRIDMAP_LOCATOR_RECHECK_SECONDS", 2.0)
# Validation tolerances and caps for imported boundaries.
GRIDMAP_AREA_TOLERANCE_M2 = env_float("GRIDMAP_AREA_TOLERANCE_M2", 1.0)
GRIDMAP_MAX_VERTICES_PER_REGION = env_int("GRIDMAP_MAX_VERTICES_PER_REGION", 100_000)
GRIDMAP_MAX_BYTES_PER_REGION = env_int("GRIDMAP_MAX_BYTES_PER_REGION", 4_000_000)
GRIDMAP_MAX_IMPORT_BYTES = env_int("GRIDMAP_MAX_IMPORT_BYTES", 200_000_000)
# Working calendar (incidents.calendar): the working periods of a working day, local time.
CITYOPS_WORKING_HOURS = env_str("CITYOPS_WORKING_HOURS", "08:30-12:00,14:00-18:00")
# How often (seconds) a process re-checks the holiday table for changes made elsewhere.
CITYOPS_CALENDAR_RECHECK_SECONDS = env_float("CITYOPS_CALENDAR_RECHECK_SECONDS", 30.0)
# Bulk intake: a sensor's alarm repeats its open case (no new case) while the case's latest alarm
# is at most this many minutes old (incidents.services.bulk).
CITYOPS_SENSOR_DEDUPE_WINDOW_MINUTES = env_int("CITYOPS_SENSOR_DEDUPE_WINDOW_MINUTES", 60)
# Responders' shared positions older than this many minutes are no longer shown (dispatch).
CITYOPS_RESPONDER_MAX_AGE_MINUTES = env_int("CITYOPS_RESPONDER_MAX_AGE_MINUTES", 30)
# HTTP requests served at once by one server process (config/http.py): each runs its synchronous
# work on one of this many reused threads; more wait in the event loop for a free one. Keep it
# at most DB_POOL_MAX_SIZE on PostgreSQL, or requests wait for a connection instead.
CITYOPS_HTTP_THREADS = env_int("CITYOPS_HTTP_THREADS", 8)
# 台账导出: the most cases one CSV export of a console's queue may hold (command.exports).
CITYOPS_EXPORT_MAX_ROWS = env_int("CITYOPS_EXPORT_MAX_ROWS", 10_000)
# Optional raster tile URL template for maps ({z}/{x}/{y}); empty = boundaries only, no tiles.
CITYOPS_MAP_TILE_URL = env_str("CITYOPS_MAP_TILE_URL", "")
# Case photos (incidents.services.photos): the largest file accepted, in bytes; the most pixels
# (width × height, checked from the header before decoding: decompression bombs); the most
# photos in one request.
CITYOPS_PHOTO_MAX_BYTES = env_int("CITYOPS_PHOTO_MAX_BYTES", 10 * 1024 * 1024)
CITYOPS_PHOTO_MAX_PIXELS = env_int("CITYOPS_PHOTO_MAX_PIXELS", 40_000_000)
CITYOPS_PHOTO_MAX_PER_REQUEST = env_int("CITYOPS_PHOTO_MAX_PER_REQUEST", 6)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("CITYOPS_LOG_LEVEL", "INFO")},
}
