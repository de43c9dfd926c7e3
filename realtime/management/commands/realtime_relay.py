"""manage.py realtime_relay: send again the outbox events the after-commit hook did not send."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from realtime import relay


class Command(BaseCommand):
    help = (
        "Send outbox events still unpublished a few seconds after they were written (Redis was "
        "down, or the process died after COMMIT). Safe to run as several copies. Stops after "
        "the batch in hand on SIGTERM/SIGINT. See realtime/relay.py."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="send what is due now, then exit")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds to sleep when nothing is due (REALTIME_RELAY_INTERVAL_SECONDS)",
        )
        parser.add_argument(
            "--delay",
            type=float,
            default=None,
            help="resend events unpublished this many seconds after they were written "
            "(REALTIME_RELAY_DELAY_SECONDS)",
        )
        parser.add_argument(
            "--batch", type=int, default=None, help="events per claim (REALTIME_RELAY_BATCH)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            self.stderr.write(f"realtime_relay: {signal.Signals(signum).name}, stopping")
            stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
        if options["batch"] is not None and options["batch"] < 1:
            self.stderr.write("--batch must be at least 1")
            raise SystemExit(2)
        sent, failed = relay.run(
            stop=stop,
            once=options["once"],
            interval=options["interval"],
            delay_seconds=options["delay"],
            batch=options["batch"],
        )
        if options["verbosity"] >= 1:
            self.stdout.write(f"realtime_relay: sent {sent}, failed {failed}")
