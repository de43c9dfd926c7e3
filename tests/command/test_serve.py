"""manage.py cityops_serve: several Daphne workers on one listening socket (real processes, the
test database, the run's Redis)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.asgi_server import PROJECT, DaphneServer, daphne_server, free_port, redis_for_tests
from tests.realtime.live import DISTRICT, make_user, open_feed, publish_committed, session_of


def children_of(pid: int) -> set[int]:
    """The live child processes of `pid` (the manager starts its workers from its main thread)."""
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def established_on(port: int) -> dict[int, int]:
    """Socket inode → local port of the established TCP connections of this machine whose local
    port is `port` (the server's side of each connection)."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes[int(fields[9])] = local_port
    return inodes


def holders(workers: set[int], port: int) -> dict[int, int]:
    """Worker pid → how many of the server's established connections it holds."""
    inodes = established_on(port)
    held = {}
    for pid in workers:
        count = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                count += 1
        held[pid] = count
    return held


def wait_until_listening(server: DaphneServer, workers: int) -> None:
    """Wait until `workers` Daphne processes have logged that they listen on the socket."""
    deadline = time.monotonic() + 60
    while server.log().count("Listening on TCP address") < workers:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)


def answers(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py cityops_serve with these arguments (and environment changes) to its end."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    environment.pop("SPATIALITE_TEST_NAME", None)
    return subprocess.run(
        [sys.executable, "manage.py", "cityops_serve", *args],
        cwd=PROJECT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_several_workers_need_the_redis_channel_layer():
    result = serve("--workers", "2", "--port", "0", REDIS_URL="")
    assert result.returncode == 1
    assert "--workers: several workers need the Redis channel layer" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_two_workers_share_the_socket_each_delivers_events_and_a_dead_one_is_replaced():
    user = make_user("serve-district", "district_operator", "440309")
    session = session_of(user)
    with redis_for_tests() as redis_url, daphne_server(redis_url=redis_url, workers=2) as server:
        assert server.process is not None
        workers = children_of(server.process.pid)
        assert len(workers) == 2, server.log()
        # The server answered as soon as one worker listened; the other may still be importing
        # Django (seconds on a loaded CI machine) while the first accepts every connection.
        wait_until_listening(server, 2)

        # Sockets held by each worker: the kernel hands a new connection to whichever process
        # accepts first, and an idle one can win them all (CI saw 40 of 40 go to one). So each
        # worker in turn is stopped (SIGSTOP) while two sockets open: the other accepts them.
        feeds = []
        stack = []
        try:
            for paused in sorted(workers):
                os.kill(paused, signal.SIGSTOP)
                try:
                    for _ in range(2):
                        context = open_feed(server.url, session)
                        feed = context.__enter__()
                        stack.append(context)
                        feed.hello(scopes=[DISTRICT])
                        feed.wait_for(lambda f: f.of_type("welcome"), what="welcome")
                        feeds.append(feed)
                finally:
                    os.kill(paused, signal.SIGCONT)
            held = holders(workers, server.port)
            assert all(held.values()), held

            # An event committed here reaches Redis once; every worker sends it to its sockets.
            publish_committed([DISTRICT], n=7)
            for feed in feeds:
                feed.wait_for(
                    lambda f: any(e["payload"] == {"n": 7} for e in f.events()),
                    what="the event on every socket, whichever worker holds it",
                )
        finally:
            for context in reversed(stack):
                context.__exit__(None, None, None)

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = children_of(server.process.pid)
            if victim not in now and len(now) == 2:
                break
            time.sleep(0.2)
        replaced = children_of(server.process.pid)
        assert victim not in replaced and len(replaced) == 2, server.log()
        assert f"worker {victim} exited" in server.log()
        assert answers(server.url + "/api/v1/incidents/") == 403  # still served

        server.stop()  # SIGTERM to the manager
        assert server.process.returncode == 0, server.log()
        # The manager waited for its workers: they are gone, not left running or as zombies.
        assert not any(Path(f"/proc/{pid}").exists() for pid in replaced)


def test_a_port_in_use_is_refused_naming_the_option():
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        result = serve("--port", str(port))
    assert result.returncode == 1
    assert f"--port: cannot listen on 127.0.0.1:{port}" in result.stderr
