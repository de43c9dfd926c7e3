"""The live feed at /ws/: one socket per page, events of the scopes the server lets it join.

The protocol is in docs/realtime.md ("The live feed"). In short:

    client → {"type": "hello", "last": {"district:440309": 57}, "scopes": [...optional]}
    server → {"type": "welcome", "epoch", "scopes", "seqs"}     then the replay, then live events
    server → {"type": "events", "events": [...], "replay": bool}  at most one per 250 ms
    server → {"type": "heartbeat", "epoch", "seqs", "layer": "up"|"down", "at"}  every 15 s
    client → {"type": "resync", "last": {...}}                    on a gap or an epoch change
    server → {"type": "resync_required", "scope", "reason"}        gap too large to replay
    server → {"type": "error", "code": "forbidden_scope", "scopes": [...]}

The server decides the scopes (settings.REALTIME_SCOPES_FUNCTION, given the user and the
session). Each socket keeps a `realtime.feed.Cursor` and sends an event only when it is the next
one in every joined scope, so what a client receives has no gap and no duplicate whichever way
the event came: live through the channel layer, or read from the database (the replay after
hello or resync, the catch-up when a live event shows a gap, the periodic catch-up while the
channel layer is down).

One task per socket (the pump) owns the cursor and does all sending of events; the handlers of
client messages and of channel-layer messages only queue work for it and wake it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils.module_loading import import_string

from realtime.epoch import current_epoch
from realtime.feed import Cursor, cached_latest_seqs, catch_up, latest_seqs, visible_seqs
from realtime.outbox import BATCH_TYPE, MESSAGE_TYPE, check_scope, group_name

log = logging.getLogger(__name__)

# Close codes (4000–4999 are the application's).
CLOSE_BAD_MESSAGE = 4400  # not JSON, not an object, unknown type, malformed fields, no hello
CLOSE_NOT_SIGNED_IN = 4401  # anonymous (or signed out since)
CLOSE_NO_SCOPE = 4403  # signed in, but nothing this account may follow live
CLOSE_TOO_LARGE = 4413  # an inbound message over REALTIME_MAX_MESSAGE_BYTES
CLOSE_TOO_MANY = 4429  # inbound messages faster than REALTIME_MAX_MESSAGES_PER_SECOND
# Channel-layer calls give up after this long (a black-holed Redis must not hang a socket).
LAYER_TIMEOUT_SECONDS = 2.0
# How long a live message that is ahead of the cursor waits for the missing one to arrive
# live before the socket reads the gap from the database.
REORDER_GRACE_SECONDS = 0.5
# Share of the heartbeat interval by which each wait is shortened at random.
HEARTBEAT_JITTER = 0.2
# Events per `events` message (a long replay goes out in several).
EVENTS_PER_MESSAGE = 500


def scopes_function() -> Callable[[Any, Any], list[str]]:
    return import_string(settings.REALTIME_SCOPES_FUNCTION)  # type: ignore[no-any-return]


def allowed_scopes(user: Any, session: Any) -> list[str]:
    """The scopes this connection may join, as the configured function says (checked)."""
    allowed = []
    for scope in scopes_function()(user, session):
        try:
            allowed.append(check_scope(scope))
        except ValueError:
            log.error("%s returned a bad scope %r", settings.REALTIME_SCOPES_FUNCTION, scope)
    return sorted(set(allowed))


# --- each event serialized once per process, not once per socket -------------------------------

ENCODED_CACHE_SIZE = 4096
_encoded: OrderedDict[tuple[int, tuple[tuple[str, int], ...]], str] = OrderedDict()


def encoded_event(message: dict[str, Any], joined: tuple[str, ...] | list[str]) -> str:
    """The JSON of an event as a socket that joined `joined` sees it, from a per-process cache
    keyed by event id and visible numbers: the sockets of one wall (same scopes) share one
    string, whoever asks first pays the json.dumps."""
    seqs = visible_seqs(message["seqs"], joined)
    key = (int(message["id"]), tuple(sorted(seqs.items())))
    text = _encoded.get(key)
    if text is None:
        text = json.dumps(
            {
                "id": message["id"],
                "event_type": message["event_type"],
                "payload": message["payload"],
                "seqs": dict(key[1]),
                "occurred_at": message.get("occurred_at"),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        _encoded[key] = text
        if len(_encoded) > ENCODED_CACHE_SIZE:
            _encoded.popitem(last=False)
    else:
        _encoded.move_to_end(key)
    return text


def _reloaded(session: Any) -> Any:
    """A fresh copy of a session from its store (the socket's copy was read at connect)."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class BadMessage(ValueError):
    pass


def _parse_last(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadMessage("last must be an object of scope → last sequence number seen")
    last = {}
    for scope, seq in value.items():
        if not isinstance(scope, str) or isinstance(seq, bool) or not isinstance(seq, int):
            raise BadMessage(f"last[{scope!r}] must be a whole number")
        if seq < 0:
            raise BadMessage(f"last[{scope!r}] must not be negative")
        last[scope] = seq
    return last


class LiveFeedConsumer(AsyncWebsocketConsumer):
    # --- life cycle ----------------------------------------------------------------------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Like channels' AsyncConsumer.__call__, but a channel layer that fails (Redis down)
        does not end the socket: the socket stays open, says so in its heartbeats and catches
        up from the database."""
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = ""
        self._setup_state()
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            tasks = [t for t in (self._pump_task, self._layer_task) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _setup_state(self) -> None:
        self.allowed: list[str] = []
        self.joined: list[str] = []
        self.cursor: Cursor | None = None
        self.user_label = "?"
        self._pump_task: asyncio.Task[None] | None = None
        self._layer_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # Set while the pump waits out a coalescing window: live events then only queue up in
        # the inbox, and the pump takes them all at the window's end.
        self._coalescing = False
        self._inbox: list[dict[str, Any]] = []
        # The latest committed numbers as the previous heartbeat read them.
        self._seen_committed: dict[str, int] = {}
        self._resync_last: dict[str, int] | None = None
        self._catch_up_due = False
        self._layer_up = self.channel_layer is not None
        self._tokens = float(settings.REALTIME_MAX_MESSAGE_BURST)
        self._tokens_at = time.monotonic()
        self._closing = False

    async def _read_layer(self) -> None:
        """The socket's channel-layer messages, in a task of their own (started once the socket
        has a channel): each live event goes to the pump's inbox. A failing layer is retried,
        never raised; a message already queued is taken without a trip through the event
        loop's scheduler."""
        layer = self.channel_layer
        assert layer is not None
        while True:
            try:
                message = await layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._layer_failed("receive", exc)
                await asyncio.sleep(1.0)
                continue
            kind = message.get("type")
            if kind == MESSAGE_TYPE:
                self._inbox.append(message)
            elif kind == BATCH_TYPE:
                self._inbox.extend(message["events"])
            else:
                log.warning("live feed: ignored a channel-layer message of type %r", kind)
                continue
            if not self._coalescing:
                self._wake.set()

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        user = self.scope.get("user")
        self.user_label = str(getattr(user, "pk", None) or "anonymous")
        self.allowed = await database_sync_to_async(allowed_scopes)(user, self.scope.get("session"))
        await self.accept()
        if not self.allowed:
            signed_in = bool(getattr(user, "is_authenticated", False))
            await self._close(CLOSE_NO_SCOPE if signed_in else CLOSE_NOT_SIGNED_IN)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
        if self._layer_up and self.channel_name:
            for scope in self.joined:
                try:
                    async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
                        await self.channel_layer.group_discard(  # type: ignore[union-attr]
                            group_name(scope), self.channel_name
                        )
                except Exception:  # noqa: S112 (the socket is gone either way)
                    continue
        raise StopConsumer()

    async def _close(self, code: int) -> None:
        self._closing = True
        await self.close(code=code)

    # --- client messages -----------------------------------------------------------------------

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        if self._closing:
            return
        text = message.get("text")
        raw = message.get("bytes")
        size = len(text.encode()) if text is not None else len(raw or b"")
        if size > settings.REALTIME_MAX_MESSAGE_BYTES:
            log.warning(
                "live feed of user %s: message of %d bytes closed the socket (limit %d)",
                self.user_label,
                size,
                settings.REALTIME_MAX_MESSAGE_BYTES,
            )
            await self._close(CLOSE_TOO_LARGE)
            return
        now = time.monotonic()
        self._tokens = min(
            float(settings.REALTIME_MAX_MESSAGE_BURST),
            self._tokens + (now - self._tokens_at) * settings.REALTIME_MAX_MESSAGES_PER_SECOND,
        )
        self._tokens_at = now
        if self._tokens < 1:
            log.warning("live feed of user %s: too many messages, closed", self.user_label)
            await self._close(CLOSE_TOO_MANY)
            return
        self._tokens -= 1
        try:
            if text is None:
                raise BadMessage("send text frames with JSON")
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise BadMessage("not JSON") from exc
            if not isinstance(data, dict):
                raise BadMessage("a message must be a JSON object")
            kind = data.get("type")
            if kind == "hello":
                await self._hello(data)
            elif kind == "resync":
                self._resync(data)
            else:
                raise BadMessage(f"unknown message type {kind!r}: send hello or resync")
        except BadMessage as exc:
            log.info(
                "live feed of user %s: bad message closed the socket: %s", self.user_label, exc
            )
            await self.send(
                text_data=json.dumps({"type": "error", "code": "bad_message", "detail": str(exc)})
            )
            await self._close(CLOSE_BAD_MESSAGE)

    async def _hello(self, data: dict[str, Any]) -> None:
        if self.cursor is not None:
            raise BadMessage("hello was already sent on this socket; send resync instead")
        last = _parse_last(data.get("last"))
        wanted = data.get("scopes")
        if wanted is None:
            wanted = self.allowed
        elif not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
            raise BadMessage("scopes must be a list of scope names")
        forbidden = sorted({s for s in wanted if s not in self.allowed})
        self.joined = sorted({s for s in wanted if s in self.allowed})
        if forbidden:
            log.warning(
                "live feed: user %s asked for scopes it may not join: %s (allowed: %s)",
                self.user_label,
                ", ".join(forbidden),
                ", ".join(self.allowed),
            )
            await self.send(
                text_data=json.dumps(
                    {"type": "error", "code": "forbidden_scope", "scopes": forbidden},
                    ensure_ascii=False,
                )
            )
        if not self.joined:
            await self._close(CLOSE_NO_SCOPE)
            return
        self.cursor = Cursor({scope: 0 for scope in self.joined})
        self._pump_task = asyncio.create_task(
            self._pump({s: last[s] for s in last if s in self.joined})
        )

    def _resync(self, data: dict[str, Any]) -> None:
        if self.cursor is None:
            raise BadMessage("send hello first")
        last = _parse_last(data.get("last"))
        self._resync_last = {s: seq for s, seq in last.items() if s in self.joined}
        self._wake.set()

    # --- channel layer -------------------------------------------------------------------------

    def _layer_failed(self, what: str, exc: BaseException) -> None:
        if self._layer_up:
            log.warning(
                "live feed: channel layer failed (%s: %s: %s); the socket catches up from the "
                "database until it is back",
                what,
                exc.__class__.__name__,
                exc,
            )
        self._layer_up = False

    async def _join_groups(self) -> None:
        """Join (again) every scope's group: refreshes channels_redis' group expiry and repairs
        memberships lost when Redis was flushed or restarted. Records whether the layer
        answered."""
        if self.channel_layer is None:
            return
        try:
            async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
                if not self.channel_name:
                    self.channel_name = await self.channel_layer.new_channel()
                    self._layer_task = asyncio.create_task(self._read_layer())
                for scope in self.joined:
                    await self.channel_layer.group_add(group_name(scope), self.channel_name)
                await current_epoch()
        except Exception as exc:
            self._layer_failed("group_add", exc)
            return
        if not self._layer_up:
            log.info("live feed: channel layer is back")
        self._layer_up = True

    # --- the pump: the one task that sends events --------------------------------------------

    async def _pump(self, last: dict[str, int]) -> None:
        try:
            await self._pump_loop(last)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live feed of user %s failed", self.user_label)
            await self._close(1011)

    async def _pump_loop(self, last: dict[str, int]) -> None:
        cursor = self.cursor
        assert cursor is not None
        await self._join_groups()  # first: live events from now on wait in the inbox
        epoch = await self._epoch()
        latest = await database_sync_to_async(latest_seqs)(self.joined, fresh=True)
        ahead = []
        for scope in self.joined:
            if scope in last and last[scope] <= latest[scope]:
                cursor.delivered[scope] = last[scope]
            else:
                # No last seq: the client starts from now (its snapshot). A last seq beyond
                # the latest one means the client's numbers are from another database.
                cursor.delivered[scope] = latest[scope]
                if scope in last:
                    ahead.append(scope)
        await self._send_json(
            {"type": "welcome", "epoch": epoch, "scopes": self.joined, "seqs": latest}
        )
        for scope in ahead:
            await self._send_json(
                {"type": "resync_required", "scope": scope, "reason": "ahead_of_server"}
            )
        # Only a client that came back with numbers below the latest has something to replay;
        # for the rest the groups were joined before the latest numbers were read, so whatever
        # is committed after them arrives live (or, should its message be lost, as a gap).
        self._catch_up_due = any(cursor.delivered[s] < latest[s] for s in self.joined)
        outgoing: list[tuple[bool, str]] = []  # (replayed?, event JSON)
        last_flush = 0.0
        coalesce = settings.REALTIME_COALESCE_SECONDS
        next_beat = time.monotonic() + self._beat_interval()
        reauth = float(settings.REALTIME_REAUTH_SECONDS)
        next_reauth = time.monotonic() + reauth
        beat: dict[str, Any] | None = None  # a heartbeat waiting for the events before it
        held: list[dict[str, Any]] = []  # live messages ahead of the cursor, waiting for a gap
        gap_since: float | None = None

        while True:
            if self._resync_last is not None:
                for scope, seq in self._resync_last.items():
                    cursor.delivered[scope] = min(cursor.delivered[scope], seq)
                self._resync_last = None
                self._catch_up_due = True
            if self._catch_up_due:
                self._catch_up_due = False
                outgoing += await self._catch_up(cursor)
            # Live messages may arrive out of order (two writers commit 5 and 6; 6 is sent
            # first): hold one that is ahead for a moment — the missing one usually follows
            # within milliseconds — and read the database only if the gap persists.
            held += self._inbox
            self._inbox = []
            progressed = True
            while progressed:
                progressed, waiting = False, []
                for message in held:
                    verdict = cursor.verdict(message["seqs"])
                    if verdict == "next":
                        cursor.advance(message["seqs"])
                        outgoing.append((False, encoded_event(message, self.joined)))
                        progressed = True
                    elif verdict == "gap":
                        waiting.append(message)
                held = waiting
            if not held:
                gap_since = None
            elif gap_since is None:
                gap_since = time.monotonic()
            elif time.monotonic() - gap_since >= REORDER_GRACE_SECONDS:
                gap_since = None
                self._catch_up_due = True
            if self._catch_up_due:
                continue  # read what is missing before anything after it goes out

            now = time.monotonic()
            if outgoing and now - last_flush >= coalesce:
                outgoing = await self._flush(outgoing)
                last_flush = time.monotonic()
            if now >= next_reauth:
                next_reauth = now + reauth
                if not await self._still_allowed():
                    return
            if beat is None and now >= next_beat:
                beat = await self._prepare_heartbeat(cursor)
                continue  # it may have asked for a catch-up, whose events go out first
            if beat is not None and not outgoing:
                # Sent after the events it counts, so a client never sees a number in a
                # heartbeat before the event that carries it.
                beat["seqs"] = {s: max(beat["seqs"][s], cursor.delivered[s]) for s in self.joined}
                beat["at"] = _now_iso()
                await self._send_json(beat)
                beat = None
                next_beat = time.monotonic() + self._beat_interval()

            deadline = min(last_flush + coalesce if outgoing else next_beat, next_reauth)
            if gap_since is not None:
                deadline = min(deadline, gap_since + REORDER_GRACE_SECONDS)
            self._wake.clear()
            if (self._inbox and not outgoing) or self._resync_last is not None:
                continue
            # With events waiting for the coalescing window, new live ones need no wake-up of
            # their own: they are taken at the window's end (a resync or a close still wakes).
            self._coalescing = bool(outgoing)
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await self._wake.wait()
            except TimeoutError:
                pass
            finally:
                self._coalescing = False

    def _beat_interval(self) -> float:
        """The time to the next heartbeat: the setting, shortened by up to a fifth at random so
        that sockets which connected together (a wall, a restart) do not all beat — re-join,
        read the latest numbers — in the same instant."""
        interval = float(settings.REALTIME_HEARTBEAT_SECONDS)
        if not self._layer_up:
            interval = min(interval, float(settings.REALTIME_DOWN_POLL_SECONDS))
        return interval * random.uniform(1.0 - HEARTBEAT_JITTER, 1.0)  # noqa: S311 (timing)

    async def _catch_up(self, cursor: Cursor) -> list[tuple[bool, str]]:
        result = await database_sync_to_async(catch_up)(
            cursor, limit=settings.REALTIME_REPLAY_LIMIT
        )
        for scope, reason in result.too_far.items():
            await self._send_json({"type": "resync_required", "scope": scope, "reason": reason})
        return [(True, encoded_event(message, self.joined)) for message in result.events]

    async def _flush(self, outgoing: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
        """Send one `events` message: the oldest run of replayed or of live events (at most
        EVENTS_PER_MESSAGE); return what is left for the next one."""
        replay = outgoing[0][0]
        count = 0
        while count < len(outgoing) and count < EVENTS_PER_MESSAGE and outgoing[count][0] == replay:
            count += 1
        body = ",".join(text for _, text in outgoing[:count])
        await self.send(
            text_data=f'{{"type":"events","replay":{"true" if replay else "false"},'
            f'"events":[{body}]}}'
        )
        return outgoing[count:]

    async def _prepare_heartbeat(self, cursor: Cursor) -> dict[str, Any]:
        """Re-join the groups, read the epoch and the latest numbers; if the database holds
        numbers this socket has not sent (live messages lost, or the layer is down), ask the
        pump for a catch-up. The heartbeat goes out once the events before it have."""
        await self._join_groups()
        epoch = await self._epoch()
        latest = cached_latest_seqs(self.joined)
        if latest is None:
            latest = await database_sync_to_async(latest_seqs)(self.joined)
        # While the layer is down this is how events arrive: every few seconds, and only when
        # there is something new (the latest numbers are shared by the process's sockets).
        # While it is up, numbers committed a moment ago are usually still on their way live:
        # only those the previous heartbeat already saw committed, and that have still not
        # arrived, are read from the database (a lost message, a flushed Redis).
        overdue = latest if not self._layer_up else self._seen_committed
        if any(overdue.get(s, 0) > cursor.delivered[s] for s in self.joined):
            self._catch_up_due = True
        self._seen_committed = latest
        return {
            "type": "heartbeat",
            "epoch": epoch,
            "seqs": latest,
            "layer": "up" if self._layer_up else "down",
            "at": "",
        }

    async def _epoch(self) -> str:
        try:
            return await current_epoch()
        except Exception as exc:
            self._layer_failed("epoch", exc)
            return "down"

    async def _still_allowed(self) -> bool:
        """Re-read the session and its user from the database (signed out, deactivated,
        password changed, role or place changed) and close if the socket may no longer follow
        what it joined."""
        session = self.scope.get("session")
        if session is not None:
            session = await database_sync_to_async(_reloaded)(session)
        user = await get_user({**self.scope, "session": session})
        allowed = await database_sync_to_async(allowed_scopes)(user, session)
        if set(self.joined) <= set(allowed):
            return True
        signed_in = bool(getattr(user, "is_authenticated", False))
        log.info("live feed of user %s: no longer allowed its scopes, closed", self.user_label)
        await self._close(CLOSE_NO_SCOPE if signed_in or allowed else CLOSE_NOT_SIGNED_IN)
        return False

    async def _send_json(self, data: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(data, ensure_ascii=False, separators=(",", ":")))
