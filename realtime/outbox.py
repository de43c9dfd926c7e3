"""Publishing events: write them in the caller's transaction, send them after it commits.

    with transaction.atomic():
        ...change state...
        audit_record(...)
        publish(type="gridmap.generation_activated", payload={...}, scopes=["district:440309"])

`publish` writes the event and its per-scope sequence numbers (see realtime.models) and
registers an on-commit hook that sends it through the channel layer to one group per scope. A
rolled-back transaction leaves no event and sends nothing. If the channel layer is down (Redis
unreachable) the hook logs a warning and leaves the event unpublished for the relay; it never
raises into the caller, whose change is committed either way: Redis down degrades live push,
never the write. After such a failure the process's hooks leave the layer alone for a while
(LayerGate), so that a hung Redis does not hold every write for the send's time limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.db_backends.bulk import increment_counters, insert_rows, reserve_ids
from realtime.models import SCOPE_MAX_LENGTH, OutboxEvent, OutboxEventScope, ScopeSequence

log = logging.getLogger(__name__)

# The kinds of scope a socket can join: the hierarchy down to a grid cell, a department, one
# user's tasks.
SCOPE_KINDS = ("district", "street", "community", "grid", "department", "user")
_SCOPE = re.compile(rf"^(?:{'|'.join(SCOPE_KINDS)}):[A-Za-z0-9_-]+$")
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")
# The channel-layer message type of one event; a consumer handles it in `outbox_event`.
MESSAGE_TYPE = "outbox.event"
# The message type of several events of one scope, in sequence order: {"type": BATCH_TYPE,
# "events": [event message, ...]}. A batch of reports sends one of these per scope (and per
# BATCH_MESSAGE_EVENTS events) instead of one message per event and scope.
BATCH_TYPE = "outbox.events"
BATCH_MESSAGE_EVENTS = 200
# The after-commit send gives up after this long (a black-holed Redis must not hold a request).
SEND_TIMEOUT_SECONDS = 2.0
# After a failed send the after-commit hooks leave the channel layer alone for this long (see
# LayerGate); the relay sends what they skip.
LAYER_REST_SECONDS = 10.0
# Most events a replay returns at once.
REPLAY_LIMIT_MAX = 1000


class OutsideTransaction(RuntimeError):
    """publish() was called outside transaction.atomic()."""


def check_scope(scope: str) -> str:
    if len(scope) > SCOPE_MAX_LENGTH or not _SCOPE.match(scope):
        raise ValueError(
            f"bad scope {scope!r}: use <kind>:<id> with kind one of {', '.join(SCOPE_KINDS)} "
            f"and an id of letters, digits, '-' or '_' (at most {SCOPE_MAX_LENGTH} characters)"
        )
    return scope


def group_name(scope: str) -> str:
    """The channel-layer group of a scope: "street:440309001" → "scope.street.440309001".

    Channels allows only ASCII letters, digits, '-', '_' and '.' in group names, under 100
    characters; a scope's kind has no '.', so the mapping is one to one.
    """
    return "scope." + check_scope(scope).replace(":", ".", 1)


def event_message(
    *,
    event_id: int,
    event_type: str,
    payload: Any,
    seqs: dict[str, int],
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """The channel-layer message for an event, the same live and in a replay. `occurred_at`
    (when the event was written) travels as an ISO 8601 string; a caller that omits it sends
    null and the socket's replay of the same event carries it."""
    return {
        "type": MESSAGE_TYPE,
        "id": event_id,
        "event_type": event_type,
        "payload": payload,
        "seqs": seqs,
        "occurred_at": occurred_at.isoformat() if occurred_at is not None else None,
    }


# One encoder for every event (json.dumps with `cls` would build one per call).
_ENCODER = DjangoJSONEncoder(ensure_ascii=False, allow_nan=False)


def _checked(
    event_type: str, payload: dict[str, Any], scopes: Iterable[str]
) -> tuple[list[str], str, dict[str, Any]]:
    """An event's checks: its type, a dict payload, at least one valid scope. Returns its scopes
    sorted, its payload's JSON text and that text read back: serialized once, before anything
    is written, so a payload that is not JSON fails inside the caller's transaction, and the
    stored and the sent payload are the same plain JSON."""
    if not _EVENT_TYPE.match(event_type) or len(event_type) > 100:
        raise ValueError(f"bad event type {event_type!r}: use <app>.<what_happened>")
    if not isinstance(payload, dict):
        raise TypeError(
            f"the payload of {event_type} must be a dict, not {payload.__class__.__name__}"
        )
    ordered = sorted({check_scope(scope) for scope in scopes})
    if not ordered:
        raise ValueError(f"event {event_type} has no scope: nobody could ever see it")
    text = _ENCODER.encode(payload)
    return ordered, text, json.loads(text)


def publish(*, type: str, payload: dict[str, Any], scopes: Iterable[str]) -> OutboxEvent:
    """Write an event visible to `scopes`, inside the caller's transaction.atomic(), and send it
    to each scope's group after the transaction commits.

    Each scope's counter stays locked until the caller's transaction ends (that is what keeps
    the numbers gapless and in commit order), so publish last in the transaction, and once:
    two publishes in one transaction that share scopes can deadlock with another transaction
    doing the same in the other order.
    """
    if not transaction.get_connection().in_atomic_block:
        raise OutsideTransaction(
            f"publish({type!r}) must run inside the transaction.atomic() of the change it "
            "announces, so that the event commits or rolls back with it"
        )
    ordered, _, data = _checked(type, payload, scopes)
    event = OutboxEvent.objects.create(type=type, payload=data)
    seqs = _next_seqs(ordered)
    OutboxEventScope.objects.bulk_create(
        [OutboxEventScope(event=event, scope=scope, seq=seqs[scope]) for scope in ordered]
    )
    message = event_message(
        event_id=event.pk, event_type=type, payload=data, seqs=seqs, occurred_at=event.created_at
    )
    transaction.on_commit(partial(_send_after_commit, message), robust=True)
    return event


def _next_seqs(scopes: list[str]) -> dict[str, int]:
    """Take the next number in each scope; the counters stay locked until the transaction ends.

    One statement: INSERT … ON CONFLICT DO UPDATE … RETURNING creates a scope's counter row on
    first use (a concurrent creator is waited for) or adds one to it, locking each row as it
    goes. `scopes` is sorted and the rows are taken in that order, the order publish_batch locks
    them in, so two publishers never wait for each other in a circle.
    """
    taken = increment_counters(
        transaction.get_connection(),
        ScopeSequence,
        "scope",
        "last_seq",
        scopes,
        defaults={"pruned_through": 0},
    )
    return {name: taken[name] for name in scopes}


class LayerGate:
    """Whether the after-commit hooks try the channel layer now: a circuit breaker.

    A Redis that is down refuses at once, but a hung one (it accepts connections and answers
    nothing: a stalled host, a full network path) holds every hook for SEND_TIMEOUT_SECONDS,
    and with it the request that committed: each write of a process then takes 2 s more, and
    its request threads carry a few writes a second. So after a failed send the hooks skip the
    layer for LAYER_REST_SECONDS, leaving their events unpublished for the relay (which tries
    on its own schedule). Then one hook tries again while the others still skip; if it gets
    through, everyone sends again, otherwise the gate rests once more. Per process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rest_until = 0.0  # time.monotonic(); 0: the layer worked last time
        self._trying = False  # one hook is trying the layer after a rest

    def may_send(self) -> bool:
        with self._lock:
            if not self._rest_until:
                return True
            if self._trying or time.monotonic() < self._rest_until:
                return False
            self._trying = True
            return True

    def sent(self, ok: bool) -> None:
        with self._lock:
            self._trying = False
            self._rest_until = 0.0 if ok else time.monotonic() + LAYER_REST_SECONDS

    def reset(self) -> None:
        self.sent(True)


layer_gate = LayerGate()


def _send_after_commit(message: dict[str, Any]) -> None:
    """The on-commit hook: send to every scope's group, then mark the event published.

    Never raises: the caller's transaction has committed and its answer must not change. On
    failure the event stays unpublished (published_at null) for the relay to send; so does it
    while the layer rests after a failure (LayerGate), without an attempt counted.
    """
    event_id = message["id"]
    try:
        _send_through_gate(_group_send_all, message)
    except LayerResting:
        log.debug("outbox event %s left for the relay: the channel layer rests", event_id)
        return
    except Exception as exc:
        log.warning(
            "outbox event %s (%s) not sent after commit; it stays unpublished for the relay: "
            "%s: %s",
            event_id,
            message["event_type"],
            exc.__class__.__name__,
            exc,
        )
        _mark(event_id, published=False)
        return
    _mark(event_id, published=True)


class LayerResting(Exception):
    """The channel layer was not tried: it rests after a failed send (LayerGate)."""


def _send_through_gate(send: Callable[..., Awaitable[None]], *args: Any) -> None:
    """await send(layer, *args) with the configured channel layer, unless the gate says the
    layer rests (LayerResting). Raises what the send raised; the gate learns the outcome, but
    not of a hook that cannot send from where it runs (a thread with a running event loop,
    which async_to_sync refuses): that says nothing of the layer."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop in this thread: async_to_sync can run the send
    else:
        raise RuntimeError("the after-commit send cannot run in a thread with a running loop")
    if not layer_gate.may_send():
        raise LayerResting
    ok = False
    try:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("no channel layer is configured (settings.CHANNEL_LAYERS)")
        async_to_sync(send)(layer, *args)
        ok = True
    finally:
        layer_gate.sent(ok)


async def _group_send_all(layer: BaseChannelLayer, message: dict[str, Any]) -> None:
    async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
        for scope in message["seqs"]:
            await layer.group_send(group_name(scope), message)


def _mark(event_id: int, *, published: bool) -> None:
    try:
        _count_attempt([event_id], published=published)
    except Exception:
        # The event is committed; at worst the relay sends it once more.
        log.warning("could not record the send attempt of outbox event %s", event_id, exc_info=True)


def _count_attempt(ids: Sequence[int], *, published: bool) -> None:
    """One more send attempt on each of the events `ids`; `published`: it reached every group,
    so it is published now. On PostgreSQL the ids go as one array parameter: with `pk__in`
    Django binds each id as a parameter of its own, which psycopg's pure-Python build quotes one
    by one (1,000 events, a bulk batch's: 5-13 ms of CPU against 1.7)."""
    if not ids:
        return
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        changes: dict[str, Any] = {"attempts": F("attempts") + 1}
        if published:
            changes["published_at"] = timezone.now()
        OutboxEvent.objects.filter(pk__in=ids).update(**changes)
        return
    meta, quote = OutboxEvent._meta, connection.ops.quote_name
    attempts, when, pk = (
        quote(column)
        for column in (
            OutboxEvent.attempts.field.column,
            OutboxEvent.published_at.field.column,
            meta.pk.column,
        )
    )
    published_now = f", {when} = %s" if published else ""
    params = [timezone.now()] if published else []
    with connection.cursor() as cursor:
        # Identifiers from the model's metadata; the values are query parameters.
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {attempts} = {attempts} + 1{published_now} "  # noqa: S608
            f"WHERE {pk} = ANY(%s)",
            [*params, list(ids)],
        )


def scope_bounds(scopes: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(last sequence number given out, pruned through) of each scope, (0, 0) where nothing was
    published yet: the one read of the scopes' counters (the feed's replay needs both)."""
    wanted = [check_scope(scope) for scope in scopes]
    found = {
        scope: (last, pruned)
        for scope, last, pruned in ScopeSequence.objects.filter(scope__in=wanted).values_list(
            "scope", "last_seq", "pruned_through"
        )
    }
    return {scope: found.get(scope, (0, 0)) for scope in wanted}


def latest_seqs(scopes: Iterable[str]) -> dict[str, int]:
    """The last sequence number given out in each scope (0 where nothing was published yet):
    what a page's HTTP snapshot reports, so its live feed resumes exactly after it."""
    return {scope: last for scope, (last, _) in scope_bounds(scopes).items()}


def events_after(scope: str, seq: int, limit: int = REPLAY_LIMIT_MAX) -> list[dict[str, Any]]:
    """Events visible to `scope` with a sequence number above `seq`, oldest first, as the same
    messages the live path sends: what a screen that saw up to `seq` missed.

    Because numbers are committed in order, every number up to the newest committed one is in
    the database: a replay never has to wait for a gap to fill.
    """
    check_scope(scope)
    if not 1 <= limit <= REPLAY_LIMIT_MAX:
        raise ValueError(f"limit must be between 1 and {REPLAY_LIMIT_MAX}")
    rows = list(
        OutboxEventScope.objects.filter(scope=scope, seq__gt=seq)
        .select_related("event")
        .order_by("seq")[:limit]
    )
    seqs: dict[int, dict[str, int]] = defaultdict(dict)
    for event_id, other_scope, other_seq in OutboxEventScope.objects.filter(
        event_id__in=[row.event_id for row in rows]
    ).values_list("event_id", "scope", "seq"):
        seqs[event_id][other_scope] = other_seq
    return [
        event_message(
            event_id=row.event_id,
            event_type=row.event.type,
            payload=row.event.payload,
            seqs=dict(sorted(seqs[row.event_id].items())),
            occurred_at=row.event.created_at,
        )
        for row in rows
    ]


@dataclass(slots=True)
class EventBatch:
    """Events checked and encoded for publish_batch, and on PostgreSQL given their ids: work that
    needs no lock, so a caller can do it before taking one (`prepare_batch`). A value the
    caller only learns under its lock (a case's number) can go in afterwards, `fill`."""

    types: list[str]
    scopes: list[list[str]]  # each sorted
    texts: list[str]  # each payload's JSON, stored as it is
    payloads: list[dict[str, Any]]  # each text read back: what is sent live
    ids: list[int] | None  # reserved on PostgreSQL; None: the database assigns them
    created_at: datetime

    def __len__(self) -> int:
        return len(self.types)

    def fill(self, index: int, path: Sequence[str], stand_in: str, value: str) -> None:
        """Put `value` where the payload of the event at `index` has the string `stand_in`, at
        `path`: in the payload and in its JSON text (which must hold it exactly once)."""
        node = self.payloads[index]
        for key in path[:-1]:
            node = node[key]
        if node.get(path[-1]) != stand_in:
            raise ValueError(f"event {index} has no {stand_in!r} at {'/'.join(path)}")
        old, new = _json_string(stand_in), _json_string(value)
        text = self.texts[index]
        if text.count(old) != 1:
            raise ValueError(f"the JSON of event {index} holds {old} {text.count(old)} times")
        self.texts[index] = text.replace(old, new)
        node[path[-1]] = value

    def take(self, indexes: Sequence[int]) -> EventBatch:
        """The events at `indexes`, in that order."""
        return EventBatch(
            types=[self.types[i] for i in indexes],
            scopes=[self.scopes[i] for i in indexes],
            texts=[self.texts[i] for i in indexes],
            payloads=[self.payloads[i] for i in indexes],
            ids=None if self.ids is None else [self.ids[i] for i in indexes],
            created_at=self.created_at,
        )

    def __add__(self, other: EventBatch) -> EventBatch:
        if (self.ids is None) != (other.ids is None):
            raise ValueError("batches with and without reserved ids do not mix")
        return EventBatch(
            types=self.types + other.types,
            scopes=self.scopes + other.scopes,
            texts=self.texts + other.texts,
            payloads=self.payloads + other.payloads,
            ids=None if self.ids is None or other.ids is None else self.ids + other.ids,
            created_at=min(self.created_at, other.created_at),
        )


def _json_string(value: str) -> str:
    """A string as the events' encoder writes it (ensure_ascii=False)."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def prepare_batch(
    events: Iterable[tuple[str, dict[str, Any], Iterable[str]]],
    *,
    now: datetime | None = None,
) -> EventBatch:
    """Check and encode events — (type, payload, scopes) each — for publish_batch, outside or
    inside a transaction; on PostgreSQL their ids are reserved from the table's sequence (ids
    of events never published are skipped, as a rolled-back insert skips them). The same
    checks as publish(): a bad type, payload or scope raises here."""
    batch = EventBatch(
        types=[], scopes=[], texts=[], payloads=[], ids=None, created_at=now or timezone.now()
    )
    for event_type, payload, scopes in events:
        ordered, text, data = _checked(event_type, payload, scopes)
        batch.types.append(event_type)
        batch.scopes.append(ordered)
        batch.texts.append(text)
        batch.payloads.append(data)
    connection = transaction.get_connection()
    if batch.types and connection.vendor == "postgresql":
        meta = OutboxEvent._meta
        batch.ids = reserve_ids(connection, meta.db_table, meta.pk.column, len(batch))
    return batch


def publish_batch(
    events: EventBatch | Iterable[tuple[str, dict[str, Any], Iterable[str]]],
) -> list[int]:
    """Write many events — an EventBatch, or (type, payload, scopes) each — inside the caller's
    transaction.atomic(), with a handful of queries whatever their number, and send them after
    the transaction commits: what bulk intake uses instead of one publish() per case. Returns
    the events' ids.

    The same checks, numbering and guarantees as publish(): every scope's counter is advanced
    once, by its number of events, in the one upsert publish() uses (increment_counters), the
    rows locked in scope order (so the two never wait for each other in a circle), and the
    events take consecutive numbers in each scope in the order given. The events and their
    scope rows are written in bulk (COPY on PostgreSQL, with the events' ids reserved from
    their sequence first). After commit one hook sends them all, each scope's events in
    sequence order, within SEND_TIMEOUT_SECONDS in all; what it could not send stays
    unpublished for the relay. Call it last in the transaction, and once.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise OutsideTransaction(
            "publish_batch() must run inside the transaction.atomic() of the change it "
            "announces, so that the events commit or roll back with it"
        )
    batch = events if isinstance(events, EventBatch) else prepare_batch(events)
    if not batch:
        return []
    if batch.ids is not None:
        # Rows written by COPY with their reserved ids. Every row has the same values but for
        # its id, type and payload, so the others are converted once; the payload goes as its
        # JSON text (jsonb reads text), not encoded again.
        meta = OutboxEvent._meta
        columns = list(meta.concrete_fields)
        template = OutboxEvent(type=batch.types[0], payload={}, created_at=batch.created_at)
        base = [
            field.get_db_prep_save(getattr(template, field.attname), connection)
            for field in columns
        ]
        at = {field.attname: i for i, field in enumerate(columns)}
        values = []
        for pk, event_type, text in zip(batch.ids, batch.types, batch.texts, strict=True):
            value = list(base)
            value[at["id"]], value[at["type"]], value[at["payload"]] = pk, event_type, text
            values.append(value)
        insert_rows(connection, meta.db_table, [field.column for field in columns], values)
        ids = batch.ids
    else:
        rows = OutboxEvent.objects.bulk_create(
            [
                OutboxEvent(type=event_type, payload=data, created_at=batch.created_at)
                for event_type, data in zip(batch.types, batch.payloads, strict=True)
            ],
            batch_size=500,
        )
        if any(row.pk is None for row in rows):  # SQLite >= 3.35 returns the new ids
            raise RuntimeError("the database did not return the ids of the new outbox events")
        ids = [row.pk for row in rows]

    # Each scope's counter advanced by its events in one upsert (created if missing), the rows
    # locked in scope order; `last` is each scope's number before the batch's first.
    counts = Counter(scope for scopes in batch.scopes for scope in scopes)
    wanted = sorted(counts)
    taken = increment_counters(
        connection,
        ScopeSequence,
        "scope",
        "last_seq",
        wanted,
        by=[counts[scope] for scope in wanted],
        defaults={"pruned_through": 0},
    )
    last = {scope: taken[scope] - counts[scope] for scope in wanted}
    scope_rows: list[tuple[int, str, int]] = []
    messages: list[dict[str, Any]] = []
    for pk, event_type, data, scopes in zip(
        ids, batch.types, batch.payloads, batch.scopes, strict=True
    ):
        seqs: dict[str, int] = {}
        for scope in scopes:
            last[scope] += 1
            seqs[scope] = last[scope]
            scope_rows.append((pk, scope, last[scope]))
        messages.append(
            event_message(
                event_id=pk,
                event_type=event_type,
                payload=data,
                seqs=seqs,
                occurred_at=batch.created_at,
            )
        )
    # Thousands of small rows of plain values in one bulk insert (the ORM would compile SQL
    # per value). On PostgreSQL their COPY lines are written here: two integers and a scope
    # name, which check_scope allows only letters, digits, ':', '-' and '_' — nothing COPY
    # escapes (2.8 → 0.5 ms per 4,000 rows, a batch of reports' share, against copy_line; inside
    # the section every writer waits for).
    lines = (
        [f"{pk}\t{scope}\t{seq}" for pk, scope, seq in scope_rows]
        if connection.vendor == "postgresql"
        else None
    )
    insert_rows(
        connection,
        OutboxEventScope._meta.db_table,
        [
            OutboxEventScope.event.field.column,
            OutboxEventScope.scope.field.column,
            OutboxEventScope.seq.field.column,
        ],
        scope_rows,
        lines=lines,
    )
    transaction.on_commit(partial(_send_batch_after_commit, messages), robust=True)
    return ids


def _send_batch_after_commit(messages: list[dict[str, Any]]) -> None:
    """The on-commit hook of publish_batch: send every message, then record which went out.

    Never raises (the caller's transaction has committed). An event counts as published once it
    reached all its scopes' groups; events cut off by a failure or the time limit stay
    unpublished (published_at null) for the relay, which may send some copies a second time —
    clients drop duplicates by (scope, seq). While the layer rests after a failure
    (LayerGate) it leaves them all to the relay without trying.
    """
    sent: set[int] = set()
    try:
        _send_through_gate(group_send_events, messages, sent)
    except LayerResting:
        log.debug("%d outbox events left for the relay: the channel layer rests", len(messages))
        return
    except Exception as exc:
        log.warning(
            "%d of %d outbox events not sent after commit; they stay unpublished for the relay: %s",
            len(messages) - len(sent),
            len(messages),
            describe_failure(exc),
        )
    ids = [message["id"] for message in messages]
    try:
        _count_attempt([i for i in ids if i in sent], published=True)
        _count_attempt([i for i in ids if i not in sent], published=False)
    except Exception:
        log.warning(
            "could not record the send attempts of %d outbox events", len(ids), exc_info=True
        )


def _seq_in(scope: str, message: dict[str, Any]) -> int:
    return int(message["seqs"][scope])


async def group_send_events(
    layer: BaseChannelLayer, messages: list[dict[str, Any]], sent: set[int]
) -> None:
    """Send the events to their scopes' groups: each scope's events in sequence order, up to
    BATCH_MESSAGE_EVENTS of them in one channel-layer message (one event goes as it is), scopes
    side by side. Adds to `sent` the id of every event that reached all of its scopes. Raises
    what the layer raised, or TimeoutError after SEND_TIMEOUT_SECONDS."""
    by_scope: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        for scope in message["seqs"]:
            by_scope[scope].append(message)
    # scope → [(channel-layer message, the events in it)], in sequence order.
    bodies: dict[str, list[tuple[dict[str, Any], list[dict[str, Any]]]]] = {}
    for scope, queue in by_scope.items():
        queue.sort(key=partial(_seq_in, scope))
        chunks = [
            queue[start : start + BATCH_MESSAGE_EVENTS]
            for start in range(0, len(queue), BATCH_MESSAGE_EVENTS)
        ]
        bodies[scope] = [
            (chunk[0] if len(chunk) == 1 else {"type": BATCH_TYPE, "events": chunk}, chunk)
            for chunk in chunks
        ]
    remaining = {message["id"]: len(message["seqs"]) for message in messages}

    def delivered(chunk: list[dict[str, Any]]) -> None:
        for message in chunk:
            remaining[message["id"]] -= 1
            if not remaining[message["id"]]:
                sent.add(message["id"])

    send_many = getattr(layer, "group_send_many", None)
    async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
        if send_many is not None:
            # realtime.layers: all of them in one round trip per Redis host.
            await send_many(
                (group_name(scope), body) for scope, items in bodies.items() for body, _ in items
            )
            for items in bodies.values():
                for _, chunk in items:
                    delivered(chunk)
            return

        async def send_scope(scope: str) -> None:
            for body, chunk in bodies[scope]:
                await layer.group_send(group_name(scope), body)
                delivered(chunk)

        # A TaskGroup: one failing scope cancels the others, and nothing runs on after the
        # limit.
        async with asyncio.TaskGroup() as group:
            for scope in bodies:
                group.create_task(send_scope(scope))


def describe_failure(exc: BaseException) -> str:
    """'Class: message' of what stopped a send; the first cause inside a TaskGroup's group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{exc.__class__.__name__}: {exc}"
