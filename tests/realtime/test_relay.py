"""The outbox relay: events the after-commit hook could not send (Redis down, or the process
died between COMMIT and the hook) are sent later, once, by any number of relay copies."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from realtime import relay
from realtime.models import OutboxEvent
from realtime.outbox import BATCH_TYPE, MESSAGE_TYPE, group_name, publish
from tests.asgi_server import PROJECT, server_env
from tests.threads import require_concurrent_writers, run_in_threads

DISTRICT = "district:440309"
STREET = "street:440309001"

pytestmark = pytest.mark.django_db(transaction=True)


def dead_layer(settings: Any) -> None:
    """Point this process's channel layer at a port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": django_settings.CHANNEL_LAYERS["default"]["BACKEND"]
            if "redis" in django_settings.CHANNEL_LAYERS["default"]["BACKEND"]
            else "realtime.layers.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
        }
    }
    channel_layers.backends.clear()


def restore_layer(settings: Any, layers: dict[str, Any]) -> None:
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()


def receive_while(scope: str, action: Any, count: int, wait: float = 10.0) -> list[dict]:
    """Join `scope`'s group, run `action` (sync), collect up to `count` messages."""
    layer = get_channel_layer()

    async def scenario() -> list[dict]:
        import asyncio

        from asgiref.sync import sync_to_async

        channel = await layer.new_channel()
        await layer.group_add(group_name(scope), channel)
        try:
            await sync_to_async(action)()
            got: list[dict] = []
            while len(got) < count:
                try:
                    message = await asyncio.wait_for(layer.receive(channel), timeout=wait)
                except TimeoutError:
                    break
                # The relay sends a scope's events together (outbox.events) when it has several.
                got.extend(message["events"] if message["type"] == BATCH_TYPE else [message])
            return got
        finally:
            await layer.group_discard(group_name(scope), channel)

    return async_to_sync(scenario)()


def publish_while_redis_is_down(settings: Any, n: int = 1) -> list[OutboxEvent]:
    layers = settings.CHANNEL_LAYERS
    dead_layer(settings)
    try:
        events = []
        for i in range(n):
            with transaction.atomic():
                events.append(
                    publish(type="tests.thing_changed", payload={"n": i}, scopes=[STREET])
                )
    finally:
        restore_layer(settings, layers)
    return events


def test_the_relay_sends_an_event_whose_after_commit_send_failed(settings):
    (event,) = publish_while_redis_is_down(settings)
    event.refresh_from_db()
    assert event.published_at is None and event.attempts == 1

    messages = receive_while(STREET, lambda: relay.relay_once(delay_seconds=0), count=1)

    seq = event.scopes.get().seq
    assert messages == [
        {
            "type": MESSAGE_TYPE,
            "id": event.pk,
            "event_type": "tests.thing_changed",
            "payload": {"n": 0},
            "seqs": {STREET: seq},
            "occurred_at": event.created_at.isoformat(),
        }
    ]
    event.refresh_from_db()
    assert event.published_at is not None
    assert event.attempts == 2
    assert event.claimed_until is None and event.last_error == ""
    # Published events are not sent again.
    assert relay.relay_once(delay_seconds=0).claimed == 0


def test_the_relay_leaves_events_younger_than_the_delay_to_the_after_commit_hook(settings):
    (event,) = publish_while_redis_is_down(settings)

    assert relay.relay_once(delay_seconds=3600).claimed == 0
    event.refresh_from_db()
    assert event.published_at is None


def test_a_failed_relay_send_records_the_error_and_backs_off(settings):
    (event,) = publish_while_redis_is_down(settings)
    layers = settings.CHANNEL_LAYERS
    dead_layer(settings)
    try:
        result = relay.relay_once(delay_seconds=0)
    finally:
        restore_layer(settings, layers)

    assert result.failed and event.pk in result.failed
    event.refresh_from_db()
    assert event.published_at is None
    assert event.attempts == 2
    assert "Error" in event.last_error  # e.g. "ConnectionError: Error 111 connecting to …"
    assert event.claimed_until is not None and event.claimed_until > timezone.now()
    # Backing off: not claimed again until claimed_until.
    assert relay.relay_once(delay_seconds=0).claimed == 0
    OutboxEvent.objects.filter(pk=event.pk).update(claimed_until=timezone.now())
    assert relay.relay_once(delay_seconds=0).sent == [event.pk]


def test_an_event_claimed_by_a_relay_that_died_is_taken_over_when_its_lease_expires(settings):
    (event,) = publish_while_redis_is_down(settings)
    assert relay.claim(delay_seconds=0, batch=10) == [event.pk]  # and then the relay "died"

    assert relay.relay_once(delay_seconds=0).claimed == 0
    OutboxEvent.objects.filter(pk=event.pk).update(claimed_until=timezone.now())
    assert relay.relay_once(delay_seconds=0).sent == [event.pk]


def test_several_relays_at_once_send_every_event_exactly_once(settings):
    require_concurrent_writers()
    events = publish_while_redis_is_down(settings, n=40)
    results: list[relay.RelayPass] = []
    lock = threading.Lock()

    def relay_until_done(worker: int) -> None:
        while True:
            result = relay.relay_once(delay_seconds=0, batch=3)
            with lock:
                results.append(result)
            if not result.claimed:
                return

    run_in_threads(relay_until_done, threads=4)

    sent = [event_id for result in results for event_id in result.sent]
    assert sorted(sent) == sorted(event.pk for event in events)
    assert not any(result.failed for result in results)
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


CRASH_AFTER_COMMIT = """
import os
from django.db import transaction
from realtime.outbox import publish
with transaction.atomic():
    # Registered before publish's own hook: runs first after COMMIT and kills the process, so
    # the event is committed and never sent, as when a server dies at that moment.
    transaction.on_commit(lambda: os._exit(0))
    event = publish(
        type="tests.thing_changed", payload={"crash": True}, scopes=["street:440309001"]
    )
    print(event.pk, flush=True)
"""


def test_a_crash_between_commit_and_publish_loses_nothing():
    env = server_env(redis_url=django_settings.REDIS_URL)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CRASH_AFTER_COMMIT],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    event = OutboxEvent.objects.get(pk=int(done.stdout.split()[-1]))
    assert event.published_at is None and event.attempts == 0  # the hook never ran

    messages = receive_while(
        STREET,
        lambda: call_command("realtime_relay", "--once", "--delay", "0", verbosity=0),
        count=1,
    )

    assert [m["id"] for m in messages] == [event.pk]
    assert messages[0]["payload"] == {"crash": True}
    event.refresh_from_db()
    assert event.published_at is not None


def test_the_relay_command_stops_gracefully_on_sigterm(settings):
    (event,) = publish_while_redis_is_down(settings)
    env = server_env(redis_url=django_settings.REDIS_URL)
    command = [sys.executable, "manage.py", "realtime_relay", "--delay", "0", "--interval", "0.2"]
    process = subprocess.Popen(
        command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # running: it sends the event that is due
            event.refresh_from_db()
            if event.published_at is not None or process.poll() is not None:
                break
            time.sleep(0.2)
        assert event.published_at is not None, "the relay did not send the due event"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    assert process.returncode == 0, err
    assert "SIGTERM, stopping" in err
    assert "realtime_relay: sent 1, failed 0" in out
