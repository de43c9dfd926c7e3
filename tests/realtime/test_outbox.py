"""The outbox: events written in the caller's transaction, numbered per scope, sent after commit.

Sending goes through the configured channel layer (Redis under `make test`, in-process
otherwise). Tests that need a real commit are transactional; they subscribe a channel to a
scope's group and run the committing code through sync_to_async, so that the on-commit hook
sends on the same event loop that receives.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import BaseChannelLayer, channel_layers, get_channel_layer
from django.db import transaction

from audit.models import AuditEntry
from audit.services import audit_record
from config.settings import channel_layers_for
from realtime import outbox
from realtime.models import SCOPE_MAX_LENGTH, OutboxEvent, OutboxEventScope, ScopeSequence
from realtime.outbox import (
    MESSAGE_TYPE,
    OutsideTransaction,
    events_after,
    group_name,
    prepare_batch,
    publish,
    publish_batch,
)
from realtime.relay import relay_once
from tests.threads import require_concurrent_writers, run_in_threads

DISTRICT = "district:440309"
STREET = "street:440309001"
OTHER_STREET = "street:440309002"


def publish_committed(
    scopes: tuple[str, ...] = (DISTRICT,), payload: dict[str, Any] | None = None
) -> OutboxEvent:
    with transaction.atomic():
        return publish(type="tests.thing_changed", payload=payload or {"n": 1}, scopes=scopes)


def counters() -> dict[str, int]:
    return dict(ScopeSequence.objects.values_list("scope", "last_seq"))


def with_subscriber(
    scope: str, committing: Callable[[], Any], *, wait: float = 5.0
) -> tuple[Any, dict[str, Any] | None]:
    """Join `scope`'s group, run `committing` (sync, real transactions), then wait for one
    message: (what committing returned, the message or None if none came in time)."""
    layer = get_channel_layer()

    async def scenario() -> tuple[Any, dict[str, Any] | None]:
        channel = await layer.new_channel()
        await layer.group_add(group_name(scope), channel)
        try:
            result = await sync_to_async(committing)()
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=wait)
            except TimeoutError:
                message = None
            return result, message
        finally:
            await layer.group_discard(group_name(scope), channel)

    return async_to_sync(scenario)()


# --- writing -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_event_gets_the_next_number_in_each_of_its_scopes():
    start = counters()

    first = publish_committed((STREET, DISTRICT, DISTRICT))
    second = publish_committed((DISTRICT,))
    third = publish_committed((STREET,))

    def seqs(event: OutboxEvent) -> dict[str, int]:
        return dict(event.scopes.values_list("scope", "seq"))

    base_d, base_s = start.get(DISTRICT, 0), start.get(STREET, 0)
    assert seqs(first) == {DISTRICT: base_d + 1, STREET: base_s + 1}
    assert seqs(second) == {DISTRICT: base_d + 2}
    assert seqs(third) == {STREET: base_s + 2}
    assert counters()[DISTRICT] == base_d + 2 and counters()[STREET] == base_s + 2
    assert first.published_at is None and first.attempts == 0


@pytest.mark.django_db
def test_the_payload_is_serialized_once_into_plain_json():
    event = publish_committed(
        payload={
            "when": datetime(2025, 10, 1, 0, 0, tzinfo=UTC),
            "amount": Decimal("3.50"),
            "street": "观湖街道",
        }
    )

    stored = OutboxEvent.objects.get(pk=event.pk)
    assert stored.payload == {
        "when": "2025-10-01T00:00:00Z",
        "amount": "3.50",
        "street": "观湖街道",
    }
    assert stored.type == "tests.thing_changed"


@pytest.mark.django_db
def test_a_batch_stores_each_payload_exactly_with_its_numbers():
    # Written in bulk (COPY's text format on PostgreSQL): every character it escapes, its NULL
    # marker as text, nested values, a float, null.
    awkward = 'a\\b\tc\nd\re \\N "q" 井盖😀'
    start = counters()
    payloads = [
        {"text": awkward, "n": i, "x": 0.1 + i, "none": None, "list": [awkward, {"k": True}]}
        for i in range(3)
    ]

    with transaction.atomic():
        ids = publish_batch(
            [("tests.thing_changed", payload, [DISTRICT, STREET]) for payload in payloads]
        )

    stored = {event.pk: event for event in OutboxEvent.objects.filter(pk__in=ids)}
    assert [stored[pk].payload for pk in ids] == payloads
    first = start.get(DISTRICT, 0) + 1
    assert [
        dict(OutboxEventScope.objects.filter(event_id=pk).values_list("scope", "seq"))[DISTRICT]
        for pk in ids
    ] == [first, first + 1, first + 2]


@pytest.mark.django_db
def test_a_value_filled_in_after_prepare_is_stored_and_sent(django_capture_on_commit_callbacks):
    # A batch prepared before its writer's lock gets a value only known under it (bulk intake:
    # the case numbers); one that JSON has to escape goes in escaped.
    stand_in, value = "c0ffee:0", 'LH-"1"\\井'
    batch = prepare_batch(
        [("tests.thing_changed", {"thing": {"number": stand_in, "note": "积水"}}, [DISTRICT])]
    )
    batch.fill(0, ("thing", "number"), stand_in, value)

    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        (pk,) = publish_batch(batch)

    expected = {"thing": {"number": value, "note": "积水"}}
    assert OutboxEvent.objects.get(pk=pk).payload == expected
    (hook,) = callbacks
    (messages,) = hook.args  # type: ignore[attr-defined]
    assert [message["payload"] for message in messages] == [expected]


@pytest.mark.django_db
def test_fill_refuses_a_stand_in_not_at_its_path_or_not_once_in_the_text():
    batch = prepare_batch([("tests.thing_changed", {"a": "s", "b": "s", "c": "t"}, [DISTRICT])])
    with pytest.raises(ValueError, match="2 times"):
        batch.fill(0, ("a",), "s", "v")
    with pytest.raises(ValueError, match="has no 's' at c"):
        batch.fill(0, ("c",), "s", "v")
    assert batch.payloads == [{"a": "s", "b": "s", "c": "t"}]


@pytest.mark.django_db
def test_a_payload_that_is_not_json_fails_inside_the_transaction_and_stores_nothing():
    before = (OutboxEvent.objects.count(), counters())

    with pytest.raises(TypeError, match="not JSON serializable"):
        publish_committed(payload={"oops": object()})
    with pytest.raises(TypeError, match="must be a dict"), transaction.atomic():
        publish(type="tests.thing_changed", payload=[1, 2], scopes=[DISTRICT])  # type: ignore[arg-type]

    assert (OutboxEvent.objects.count(), counters()) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "scopes",
    [
        [],
        ["street"],
        ["region:440309"],
        ["district:44 03 09"],
        ["street:440309001", "street:"],
        ["district:" + "9" * SCOPE_MAX_LENGTH],
    ],
)
def test_bad_scopes_are_refused(scopes):
    with pytest.raises(ValueError, match="scope"), transaction.atomic():
        publish(type="tests.thing_changed", payload={}, scopes=scopes)


@pytest.mark.django_db
@pytest.mark.parametrize("event_type", ["", "changed", "Tests.Changed", "tests.thing changed"])
def test_bad_event_types_are_refused(event_type):
    with pytest.raises(ValueError, match="bad event type"), transaction.atomic():
        publish(type=event_type, payload={}, scopes=[DISTRICT])


def test_scopes_map_to_valid_channel_layer_group_names():
    # Channels' own rule (the core and in-process layers enforce it; pub/sub accepts anything).
    layer = BaseChannelLayer()
    longest = "department:" + "A" * (SCOPE_MAX_LENGTH - len("department:"))

    assert group_name("street:440309001") == "scope.street.440309001"
    assert group_name("user:42") == "scope.user.42"
    for scope in (DISTRICT, "community:440309001001", "department:CGJ", "user:42", longest):
        assert layer.require_valid_group_name(group_name(scope))


@pytest.mark.django_db(transaction=True)
def test_publishing_outside_a_transaction_is_refused():
    before = OutboxEvent.objects.count()

    with pytest.raises(OutsideTransaction, match=r"inside the transaction\.atomic"):
        publish(type="tests.thing_changed", payload={}, scopes=[DISTRICT])

    assert OutboxEvent.objects.count() == before


# --- replay ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_events_after_replays_a_scope_in_order_as_live_messages():
    start = counters().get(DISTRICT, 0)
    events = [
        publish_committed((DISTRICT, STREET) if n % 2 else (DISTRICT,), payload={"n": n})
        for n in range(5)
    ]

    replay = events_after(DISTRICT, start + 2, limit=2)

    assert [m["id"] for m in replay] == [events[2].pk, events[3].pk]
    assert replay[1] == {
        "type": MESSAGE_TYPE,
        "id": events[3].pk,
        "event_type": "tests.thing_changed",
        "payload": {"n": 3},
        "seqs": dict(events[3].scopes.values_list("scope", "seq")),
        "occurred_at": events[3].created_at.isoformat(),
    }
    assert set(replay[1]["seqs"]) == {DISTRICT, STREET}
    assert [m["seqs"][DISTRICT] for m in events_after(DISTRICT, start)] == [
        start + n for n in range(1, 6)
    ]
    assert events_after(DISTRICT, start + 5) == []
    with pytest.raises(ValueError, match="limit"):
        events_after(DISTRICT, 0, limit=0)


# --- after commit ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_after_commit_the_event_reaches_a_channel_in_each_scope_group():
    start = counters()
    event, message = with_subscriber(STREET, lambda: publish_committed((DISTRICT, STREET)))

    assert message == {
        "type": MESSAGE_TYPE,
        "id": event.pk,
        "event_type": "tests.thing_changed",
        "payload": {"n": 1},
        "seqs": {DISTRICT: start.get(DISTRICT, 0) + 1, STREET: start.get(STREET, 0) + 1},
        "occurred_at": event.created_at.isoformat(),
    }
    event.refresh_from_db()
    assert event.published_at is not None and event.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_channel_in_another_scope_group_gets_nothing():
    _, message = with_subscriber(OTHER_STREET, lambda: publish_committed((STREET,)), wait=0.5)

    assert message is None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_event_no_numbers_no_audit_and_sends_nothing():
    before = (OutboxEvent.objects.count(), OutboxEventScope.objects.count(), counters())
    audited = AuditEntry.objects.count()

    def failing_change() -> None:
        with pytest.raises(RuntimeError, match="the change failed"), transaction.atomic():
            audit_record(
                actor=None,
                action="tests.thing_change",
                obj_type="tests.thing",
                obj_id=1,
                before=None,
                after={"n": 1},
            )
            publish(type="tests.thing_changed", payload={"n": 1}, scopes=[DISTRICT])
            raise RuntimeError("the change failed")

    _, message = with_subscriber(DISTRICT, failing_change, wait=0.5)

    assert message is None
    assert (OutboxEvent.objects.count(), OutboxEventScope.objects.count(), counters()) == before
    assert AuditEntry.objects.count() == audited


def unreachable_redis(settings: Any) -> None:
    """The channel layer from here on: Redis on a port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{dead_port}/0"]},
        }
    }
    channel_layers.backends.clear()  # the settings signal does this too; be explicit
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"


@pytest.mark.django_db(transaction=True)
def test_with_redis_unreachable_the_change_commits_and_the_event_waits_for_the_relay(
    settings, caplog
):
    unreachable_redis(settings)
    audited = AuditEntry.objects.count()
    seq = counters().get(DISTRICT, 0) + 1

    with caplog.at_level(logging.WARNING, logger="realtime.outbox"), transaction.atomic():
        audit_record(
            actor=None,
            action="tests.thing_change",
            obj_type="tests.thing",
            obj_id=1,
            before=None,
            after={"n": 1},
        )
        event = publish(type="tests.thing_changed", payload={"n": 1}, scopes=[DISTRICT])

    event.refresh_from_db()
    assert event.published_at is None and event.attempts == 1
    assert AuditEntry.objects.count() == audited + 1
    assert OutboxEventScope.objects.filter(event=event, scope=DISTRICT, seq=seq).exists()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"outbox event {event.pk} (tests.thing_changed) not sent after commit" in (
        warnings[0].getMessage()
    )
    assert "relay" in warnings[0].getMessage()


@pytest.mark.django_db(transaction=True)
def test_a_batch_sent_after_commit_is_published_and_an_unsent_one_waits_for_the_relay(settings):
    """The after-commit hook of publish_batch counts one attempt on every event and marks
    published only what reached its groups."""
    with transaction.atomic():
        sent = publish_batch(
            [("tests.thing_changed", {"n": n}, [DISTRICT]) for n in range(3)],
        )
    unreachable_redis(settings)
    with transaction.atomic():
        unsent = publish_batch(
            [("tests.thing_changed", {"n": n}, [DISTRICT]) for n in range(2)],
        )

    rows = {
        pk: (published is not None, attempts)
        for pk, published, attempts in OutboxEvent.objects.filter(pk__in=sent + unsent).values_list(
            "pk", "published_at", "attempts"
        )
    }
    assert rows == {**{pk: (True, 1) for pk in sent}, **{pk: (False, 1) for pk in unsent}}


@contextmanager
def hung_redis(settings: Any) -> Iterator[list[socket.socket]]:
    """The channel layer from here on: a "Redis" that accepts connections and never answers (a
    stalled host). Yields the connections it accepted."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    working = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = channel_layers_for(f"redis://127.0.0.1:{server.getsockname()[1]}/0")
    channel_layers.backends.clear()
    try:
        yield accepted
    finally:
        settings.CHANNEL_LAYERS = working
        channel_layers.backends.clear()
        server.close()
        for connection in accepted:
            connection.close()


@pytest.mark.django_db(transaction=True)
def test_after_a_failed_send_the_hooks_leave_a_hung_layer_to_the_relay_then_try_again(
    settings, caplog, monkeypatch
):
    """A hung Redis holds the first after-commit send for SEND_TIMEOUT_SECONDS; the hooks after
    it do not try it (no attempt counted, no wait) until LAYER_REST_SECONDS have passed; the
    relay sends what they left; then one hook tries again and live sending resumes."""
    monkeypatch.setattr(outbox, "LAYER_REST_SECONDS", 1.0)
    with hung_redis(settings), caplog.at_level(logging.WARNING, logger="realtime.outbox"):
        first = publish_committed()
        second = publish_committed()
        with transaction.atomic():
            batch = publish_batch([("tests.thing_changed", {"n": n}, [DISTRICT]) for n in range(3)])

    ours = OutboxEvent.objects.filter(pk__in=[first.pk, second.pk, *batch])
    rows = dict(ours.values_list("pk", "attempts"))
    assert rows == {first.pk: 1, second.pk: 0, **{pk: 0 for pk in batch}}
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert not ours.filter(published_at__isnull=False).exists()

    # Redis is back: the relay sends what was left; after the rest one hook tries, and gets
    # through.
    assert sorted(relay_once(delay_seconds=0).sent) == sorted(rows)
    time.sleep(1.1)
    _, message = with_subscriber(DISTRICT, publish_committed)
    assert message is not None and message["payload"] == {"n": 1}
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    assert outbox.layer_gate.may_send()


def test_a_hook_that_cannot_send_from_its_thread_does_not_make_the_layer_rest():
    """Inside a running event loop async_to_sync refuses to run: that is where the hook ran,
    not the layer failing, so the other hooks of the process keep sending."""

    async def send(layer: BaseChannelLayer) -> None:
        raise AssertionError("not reached")

    async def inside_a_loop() -> None:
        with pytest.raises(RuntimeError, match="running loop"):
            outbox._send_through_gate(send)

    asyncio.run(inside_a_loop())
    assert outbox.layer_gate.may_send() and outbox.layer_gate.may_send()


def test_one_hook_tries_the_layer_after_a_rest_while_the_others_skip(monkeypatch):
    monkeypatch.setattr(outbox, "LAYER_REST_SECONDS", 0.0)
    gate = outbox.LayerGate()
    assert gate.may_send() and gate.may_send()  # the layer works: everyone sends
    gate.sent(False)
    assert gate.may_send()  # the rest is over: this hook tries …
    assert not gate.may_send()  # … the others skip while it does
    gate.sent(True)
    assert gate.may_send() and gate.may_send()


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_publishers_get_gapless_unique_numbers_in_every_scope():
    require_concurrent_writers()
    threads, per_thread = 8, 20
    start, events = counters(), OutboxEvent.objects.count()

    def publish_many(worker: int) -> None:
        # Every thread shares the district, pairs of threads share a street, and each has its
        # own user scope: counters are created and contended at the same moment.
        scopes = (DISTRICT, f"street:44030900{worker % 4}", f"user:{worker}")
        for n in range(per_thread):
            with transaction.atomic():
                publish(type="tests.thing_changed", payload={"w": worker, "n": n}, scopes=scopes)

    run_in_threads(publish_many, threads)

    expected = {DISTRICT: threads * per_thread}
    expected |= {f"street:44030900{s}": 2 * per_thread for s in range(4)}
    expected |= {f"user:{w}": per_thread for w in range(threads)}
    expected = {scope: start.get(scope, 0) + count for scope, count in expected.items()}
    assert counters() == start | expected
    for scope, last in expected.items():
        seqs = sorted(OutboxEventScope.objects.filter(scope=scope).values_list("seq", flat=True))
        assert seqs == list(range(1, last + 1)), scope
    assert OutboxEvent.objects.count() == events + threads * per_thread
