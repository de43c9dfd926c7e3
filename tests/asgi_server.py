"""A real ASGI server for browser and socket tests: Daphne in a subprocess, on the test database.

pytest-django's `live_server` is a WSGI thread and cannot serve WebSockets; this starts
`.venv/bin/daphne -b 127.0.0.1 -p <free port> config.asgi:application` with the environment of
the test run plus a DATABASE_URL naming the SAME test database (the SpatiaLite file of
SPATIALITE_TEST_NAME, or PostgreSQL's `test_<name>`) and a REDIS_URL, waits until it answers
HTTP, and stops it afterwards.

Use the fixture (import it into your conftest.py or test module):

    from tests.asgi_server import asgi_server  # noqa: F401  (pytest fixture)

    @pytest.mark.django_db(transaction=True)    # the server sees committed rows only
    def test_wall(asgi_server, committed_demo_geography):
        page.goto(asgi_server + "/")             # "http://127.0.0.1:<port>"
        ws_url = ws_url_of(asgi_server)          # "ws://127.0.0.1:<port>/ws/"

`asgi_server` is session-scoped (one Daphne for the whole run) and yields the base URL. Events
your test publishes reach the server's sockets through Redis: with REDIS_URL set (as
`scripts/test.sh` does) both processes use it; without it the fixture starts a private
redis-server and points this process's channel layer at it for the session.

For more control (your own Redis to kill or flush, two servers, settings through the
environment), use the context managers:

    with private_redis() as redis:                       # redis.url, .stop(), .start(), .flushall()
        with daphne_server(redis_url=redis.url, env={"REALTIME_HEARTBEAT_SECONDS": "1"}) as srv:
            srv.url, srv.ws_url, srv.log()               # .stop() (SIGTERM), .kill() (SIGKILL),
                                                         # .restart() (same port)

    with redis_for_tests() as redis_url: ...             # the run's REDIS_URL, or a private one
                                                         # this process's channel layer uses too
(a private Redis for your own server also needs this process's channel layer pointed at it:
`settings.CHANNEL_LAYERS = channel_layers_for(redis.url)` from config.settings).

Requirements and limits:
* The test database must be one another process can open: on SQLite run with
  SPATIALITE_TEST_NAME=/tmp/<name>.sqlite3 (an in-memory test database fails with that advice).
* The server serves plain http on loopback, so the subprocess gets
  DJANGO_SESSION_COOKIE_SECURE=0, DJANGO_CSRF_COOKIE_SECURE=0 and DJANGO_SECURE_SSL_REDIRECT=0
  (a browser would not send a Secure cookie over http); DJANGO_ALLOW_ASYNC_UNSAFE is removed so
  the server is as strict as in production.
* Tests that write rows the server must see need committed data: `transaction=True` tests (and
  `committed_demo_geography` for the geography).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

PROJECT = Path(__file__).resolve().parents[1]
DAPHNE = PROJECT / ".venv" / "bin" / "daphne"
REDIS_SERVER = "/usr/bin/redis-server"
APPLICATION = "config.asgi:application"
# The machine is shared and Django with GDAL/SpatiaLite takes a few seconds to import.
START_TIMEOUT_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ws_url_of(base_url: str, path: str = "/ws/") -> str:
    """ "http://127.0.0.1:8123" → "ws://127.0.0.1:8123/ws/"."""
    return "ws" + base_url.removeprefix("http") + path


def database_url_of_test_run() -> str:
    """A DATABASE_URL naming the database this test run uses (after pytest-django set it up)."""
    from django.db import connection

    settings = connection.settings_dict
    name = str(settings["NAME"])
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.fail(
                "a server subprocess cannot open an in-memory SQLite test database: run with "
                "SPATIALITE_TEST_NAME=/tmp/<yourname>.sqlite3"
            )
        return f"spatialite:///{Path(name).resolve()}"
    if connection.vendor == "postgresql":
        user = quote(str(settings.get("USER") or ""), safe="")
        password = quote(str(settings.get("PASSWORD") or ""), safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = str(settings.get("HOST") or "127.0.0.1")
        port = str(settings.get("PORT") or "5432")
        return f"postgis://{credentials}{host}:{port}/{quote(name, safe='')}"
    pytest.fail(f"no server subprocess support for the {connection.vendor} database")


class RedisServer:
    """A private redis-server on a free loopback port that a test may stop, start or flush."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited at start")
            try:
                if self.command("PING") == "+PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer in 30 s")

    def stop(self) -> None:
        """Kill it (SIGKILL: the data, kept in memory only, is gone, as after a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def command(self, *words: str) -> str:
        """Send one command over a raw socket; the first reply line ("+OK", ":3", "-ERR …")."""
        payload = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(payload.encode())
            return conn.makefile("rb").readline().decode().rstrip("\r\n")

    def flushall(self) -> None:
        reply = self.command("FLUSHALL")
        assert reply == "+OK", reply


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    if not Path(REDIS_SERVER).exists():
        pytest.fail(f"{REDIS_SERVER} is missing: run `scripts/bootstrap.sh dev` (redis-server)")
    with tempfile.TemporaryDirectory(prefix="cityops-redis-") as directory:
        redis = RedisServer(Path(directory))
        redis.start()
        try:
            yield redis
        finally:
            redis.stop()


class DaphneServer:
    """One Daphne process serving config.asgi:application on a free loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int | None = None) -> None:
        self.env = env
        self.log_path = log_path
        # None: one plain `daphne`; N: `manage.py cityops_serve --workers N` (N Daphne processes
        # on one socket, under a manager process that is `self.process`).
        self.workers = workers
        self.port = 0
        self.url = ""
        self.ws_url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, port: int | None = None) -> None:
        """Start on `port`, or on a free port (retried if another process takes it first)."""
        for _attempt in range(3):
            self.port = port or free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.ws_url = ws_url_of(self.url)
            command = [str(DAPHNE), "-b", "127.0.0.1", "-p", str(self.port), APPLICATION]
            if self.workers is not None:
                command = [str(DAPHNE.with_name("python")), "manage.py", "cityops_serve"]
                command += ["--port", str(self.port), "--workers", str(self.workers)]
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    command,
                    cwd=PROJECT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_until_answering():
                return
            if "Address already in use" not in self.log():
                break
        self.stop()
        pytest.fail(f"Daphne did not start; its output:\n{self.log()[-4000:]}")

    def _wait_until_answering(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5):
                    return True
            except urllib.error.HTTPError:
                return True  # any HTTP answer means it serves
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        """SIGTERM, as a process manager stops it; SIGKILL if it has not exited after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        """Stop (SIGTERM) and start again on the same port: clients see the server go away and
        come back at the same address."""
        self.stop()
        self.start(self.port)

    def kill(self) -> None:
        """SIGKILL: the server dies at once, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        """Everything the server printed so far (its log lines, tracebacks)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def server_env(*, redis_url: str, env: dict[str, str] | None = None) -> dict[str, str]:
    environment = dict(os.environ)
    environment.pop("SPATIALITE_TEST_NAME", None)  # the server opens the test database itself
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url_of_test_run(),
            "REDIS_URL": redis_url,
            "DJANGO_SESSION_COOKIE_SECURE": "0",
            "DJANGO_CSRF_COOKIE_SECURE": "0",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.update(env or {})
    return environment


@contextmanager
def daphne_server(
    *, redis_url: str, env: dict[str, str] | None = None, workers: int | None = None
) -> Iterator[DaphneServer]:
    """Start Daphne on the test database with this Redis (extra environment variables in `env`,
    e.g. realtime settings), yield it once it answers, stop it afterwards. The caller must have
    the test database set up (a `django_db` test or fixture). `workers`: serve with
    `manage.py cityops_serve --workers N` instead of one plain Daphne."""
    if not DAPHNE.exists():
        pytest.fail(f"{DAPHNE} is missing: run `scripts/bootstrap.sh dev`")
    with tempfile.TemporaryDirectory(prefix="cityops-daphne-") as directory:
        environment = server_env(redis_url=redis_url, env=env)
        server = DaphneServer(environment, Path(directory) / "log", workers)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def redis_for_tests() -> Iterator[str]:
    """settings.REDIS_URL when set; otherwise a private Redis that this process's channel layer
    also uses while it runs (so events published here reach the server's sockets)."""
    from django.conf import settings

    from config.settings import channel_layers_for

    if settings.REDIS_URL:
        yield settings.REDIS_URL
        return
    with private_redis() as redis:
        layers = channel_layers_for(redis.url)
        with underlying_settings(REDIS_URL=redis.url, CHANNEL_LAYERS=layers):
            yield redis.url


@contextmanager
def underlying_settings(**values: Any) -> Iterator[None]:
    """Set `values` on the settings beneath every override active now, and put them back
    afterwards: for a session-scoped fixture, which is set up inside the first test that asks
    for it. override_settings would not do there: disabling an override restores the settings
    object captured when it was enabled, so the end of that test's own overrides (pytest-django's
    `settings` fixture, autouse in tests/conftest.py) would silently take the session's values
    away with it — the channel layer of this process fell back to the in-memory one, and events
    published here no longer reached the server's sockets."""
    from django.conf import settings
    from django.core.signals import setting_changed

    root = settings._wrapped
    while hasattr(root, "default_settings"):  # a UserSettingsHolder: an override
        root = root.default_settings
    previous = {name: getattr(root, name) for name in values}

    def apply(changes: dict[str, Any], enter: bool) -> None:
        for name, value in changes.items():
            setattr(root, name, value)
            settings.__dict__.pop(name, None)  # LazySettings caches what it has read
            setting_changed.send(
                sender=type(root), setting=name, value=getattr(settings, name), enter=enter
            )

    apply(values, True)
    try:
        yield
    finally:
        apply(previous, False)


@pytest.fixture(scope="session")
def asgi_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Base URL ("http://127.0.0.1:<port>") of a Daphne serving the test database; see the
    module docstring."""
    with (
        django_db_blocker.unblock(),
        redis_for_tests() as redis_url,
        daphne_server(redis_url=redis_url) as server,
    ):
        yield server.url
