"""The escalation worker (督办): warn cases at 80 % of their stage limit, escalate breached ones.

    manage.py dispatch_escalate                  # loop: a pass every 30 s until SIGTERM/SIGINT
    manage.py dispatch_escalate --once           # one pass, then exit (cron, tests)
    manage.py dispatch_escalate --interval 10 --batch 200

Each pass is incidents.services.escalation.escalation_run_once at the current time: every case is
claimed and handled in its own short transaction, so any number of copies may run at once (on
PostgreSQL with SKIP LOCKED; on SQLite one writer at a time) and no case is warned or escalated
twice. When a pass used up its batch, the next one starts at once; otherwise the worker waits
`--interval` seconds. SIGTERM or SIGINT stops it after the case in hand. One log line per pass.
docs/escalation.md.

Each pass also ends the sign-in sessions that expired (accounts.services.sessions_end_expired:
deleted, and each user's audited as 超时退出, or as 强制下线 when a password change or a
deactivation had already made it invalid), the clean-up Django leaves to `clearsessions`, so a
deployment runs one periodic worker, not two.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from accounts.services import sessions_end_expired
from incidents.services.escalation import DEFAULT_BATCH, escalation_run_once

log = logging.getLogger("dispatch.escalate")

# The worker sleeps in slices this long, so a stop signal is honoured promptly.
SLEEP_SLICE_SECONDS = 0.5


class Command(BaseCommand):
    help = "Warn cases at 80 % of their stage limit and escalate (督办) breached ones, in a loop."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run one pass and exit")
        parser.add_argument(
            "--interval",
            type=float,
            default=30.0,
            help="seconds between passes when nothing more is due (default 30)",
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=DEFAULT_BATCH,
            help=f"most cases one pass handles (default {DEFAULT_BATCH})",
        )

    def handle(self, *args: Any, once: bool, interval: float, batch: int, **options: Any) -> None:
        if not interval > 0:
            raise CommandError(f"--interval must be more than 0 seconds, not {interval}")
        if batch < 1:
            raise CommandError(f"--batch must be at least 1, not {batch}")
        stopping = threading.Event()
        restore: dict[int, Any] = {}
        if not once and threading.current_thread() is threading.main_thread():

            def request_stop(signum: int, frame: FrameType | None) -> None:
                name = signal.Signals(signum).name
                log.info("escalation worker: %s received, stopping", name)
                stopping.set()

            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                restore[stop_signal] = signal.signal(stop_signal, request_stop)
        log.info(
            "escalation worker started (%s, interval %ss, batch %s)",
            "one pass" if once else "loop",
            interval,
            batch,
        )
        try:
            while not stopping.is_set():
                if not once:  # a long-running loop: drop a broken or expired connection
                    close_old_connections()
                try:
                    now = timezone.now()
                    done = escalation_run_once(now=now, batch=batch, stop=stopping.is_set)
                    sessions = sessions_end_expired(now=now)
                except DatabaseError:
                    if once:
                        raise
                    log.exception("escalation pass failed; retrying in %ss", interval)
                    self._sleep(interval, stopping)
                    continue
                log.info("escalation pass: %s", done.as_text())
                if sessions:
                    log.info("expired sessions ended: %s", sessions)
                if once:
                    break
                if not done.more:
                    self._sleep(interval, stopping)
        finally:
            for number, handler in restore.items():
                signal.signal(number, handler)
        log.info("escalation worker stopped")

    @staticmethod
    def _sleep(seconds: float, stopping: threading.Event) -> None:
        until = time.monotonic() + seconds
        while not stopping.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(SLEEP_SLICE_SECONDS, remaining))
