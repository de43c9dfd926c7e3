"""Serve CityOps with several Daphne processes on one listening socket.

    manage.py cityops_serve [--bind 127.0.0.1] [--port 8000] [--workers N] [--proxy-headers]

A Daphne process runs its Python on one core at a time (the GIL), so one process is all a
server gets of a machine however many cores it has. This command opens the listening socket
once and starts `--workers` processes of `daphne --fd <socket> config.asgi:application` that
all accept on it: the kernel hands each new connection (an HTTP keep-alive connection or a
WebSocket) to one of them.

* A worker that exits is started again after a second (a crash costs its connections, not the
  service; WebSocket clients reconnect and resume from their sequence numbers). One that keeps
  dying within 30 s of its start waits twice as long each time, up to 30 s.
* SIGTERM or SIGINT stops every worker (SIGTERM to each, SIGKILL after `--grace` seconds) and
  then the command.
* Several workers need a channel layer they share: the Redis layer (`REDIS_URL`). With the
  in-process layer a socket would only hear the events of the worker it is connected to, so the
  command refuses. One worker (the default) is plain Daphne.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

RESTART_DELAY_SECONDS = 1.0
# A worker that dies this soon after it started is failing, not crashing once (a bad setting, a
# database that refuses it): the delay before the next start doubles, up to the longest.
FAILING_WITHIN_SECONDS = 30.0
LONGEST_RESTART_DELAY_SECONDS = 30.0


def shared_channel_layer() -> bool:
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return "InMemory" not in backend


class Command(BaseCommand):
    help = "Serve CityOps with several Daphne processes sharing one listening socket."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="Daphne processes (≥ 1)")
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="trust X-Forwarded-For/-Proto from a reverse proxy in front (Daphne's option)",
        )
        parser.add_argument(
            "--grace", type=float, default=15.0, help="seconds workers get to stop on SIGTERM"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workers = options["workers"]
        if workers < 1:
            raise CommandError("--workers: must be at least 1")
        if workers > 1 and not shared_channel_layer():
            raise CommandError(
                "--workers: several workers need the Redis channel layer (set REDIS_URL); with "
                "the in-process layer a WebSocket would only hear its own worker's events"
            )
        family = socket.AF_INET6 if ":" in options["bind"] else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((options["bind"], options["port"]))
        except OSError as error:
            where = f"{options['bind']}:{options['port']}"
            raise CommandError(f"--port: cannot listen on {where}: {error}") from None
        listener.listen(1024)
        daphne = [
            str(Path(sys.executable).with_name("daphne")),
            "--fd",
            str(listener.fileno()),
            "-v",
            "1" if options["verbosity"] > 0 else "0",
        ]
        if options["proxy_headers"]:
            daphne.append("--proxy-headers")
        daphne.append("config.asgi:application")

        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

        def start() -> subprocess.Popen[bytes]:
            # Our own Daphne with fixed arguments, no shell.
            return subprocess.Popen(daphne, pass_fds=[listener.fileno()])  # noqa: S603

        running = [start() for _ in range(workers)]
        started_at = [time.monotonic()] * workers
        delays = [RESTART_DELAY_SECONDS] * workers
        host, port = listener.getsockname()[:2]
        self.stdout.write(
            f"Serving on http://{host}:{port} with {workers} Daphne worker(s): "
            + ", ".join(str(p.pid) for p in running),
        )
        self.stdout.flush()
        try:
            while not stopping:
                time.sleep(0.2)
                for index, process in enumerate(running):
                    if process.poll() is not None and not stopping:
                        if time.monotonic() - started_at[index] < FAILING_WITHIN_SECONDS:
                            delays[index] = min(2 * delays[index], LONGEST_RESTART_DELAY_SECONDS)
                        else:
                            delays[index] = RESTART_DELAY_SECONDS
                        self.stderr.write(
                            f"worker {process.pid} exited with {process.returncode}; "
                            f"starting another in {delays[index]:.0f} s"
                        )
                        self._sleep_unless_stopping(delays[index], lambda: stopping)
                        if stopping:
                            break
                        running[index] = start()
                        started_at[index] = time.monotonic()
                        self.stdout.write(f"worker {running[index].pid} started")
                        self.stdout.flush()
        finally:
            for process in running:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + options["grace"]
            for process in running:
                try:
                    process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            listener.close()

    @staticmethod
    def _sleep_unless_stopping(seconds: float, stopping: Any) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stopping():
            time.sleep(0.1)
