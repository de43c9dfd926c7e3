"""Helpers of the live-feed tests: users with sessions, a real WebSocket client, publishing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from realtime.outbox import publish
from tests.asgi_server import ws_url_of

DISTRICT = "district:440309"
STREET = "street:440309001"
OTHER_STREET = "street:440309002"


def make_user(username: str, role: str, place: str = "", department: str = "") -> Any:
    return get_user_model().objects.create_user(
        username=username,
        password="pw-123456789",
        role=role,
        place_code=place,
        department_code=department,
    )


def session_of(user: Any) -> str:
    """A session cookie value for `user`, committed in the test database."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@contextmanager
def open_feed(base_url: str, session: str | None, origin: str | None = None) -> Iterator[Feed]:
    """A WebSocket to the server's /ws/ with the session cookie (and an Origin header of the
    server's own address, as a browser on its pages sends)."""
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    with connect(
        ws_url_of(base_url),
        origin=origin or base_url,  # type: ignore[arg-type]
        additional_headers=headers,
        open_timeout=30,
        max_size=None,
    ) as ws:
        yield Feed(ws)


def publish_committed(scopes: Iterable[str], n: int = 0) -> Any:
    with transaction.atomic():
        return publish(type="tests.thing_changed", payload={"n": n}, scopes=list(scopes))


class Feed:
    """A socket and everything it received, with waits on conditions over what came."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.closed: ConnectionClosed | None = None

    def hello(self, last: dict[str, int] | None = None, scopes: list[str] | None = None) -> None:
        message: dict[str, Any] = {"type": "hello", "last": last or {}}
        if scopes is not None:
            message["scopes"] = scopes
        self.ws.send(json.dumps(message))

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def receive(self, timeout: float) -> dict[str, Any] | None:
        try:
            text = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as closed:
            self.closed = closed
            raise
        message = json.loads(text)
        self.messages.append(message)
        return message

    def wait_for(
        self, condition: Callable[[Feed], bool], timeout: float = 30.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out waiting for {what or condition}; got {self.messages[-20:]}"
                )
            self.receive(min(left, 1.0))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def events(self) -> list[dict[str, Any]]:
        return [event for m in self.of_type("events") for event in m["events"]]

    def seqs(self, scope: str) -> list[int]:
        return [e["seqs"][scope] for e in self.events() if scope in e["seqs"]]

    def last(self) -> dict[str, int]:
        """The highest number seen per scope: what a client sends in hello/resync."""
        last: dict[str, int] = {}
        for event in self.events():
            for scope, seq in event["seqs"].items():
                last[scope] = max(last.get(scope, 0), seq)
        return last

    def close_code(self, timeout: float = 30.0) -> int | None:
        """Wait for the server to close the socket; its close code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.receive(1.0)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
        raise AssertionError(f"the server did not close the socket; got {self.messages[-5:]}")
