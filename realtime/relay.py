"""The outbox relay: sends again the events that the after-commit hook did not send.

`publish` sends an event after its transaction commits and sets `published_at`. When that send
fails (Redis down or slow) or never happens (the process died between COMMIT and the hook), the
event stays unpublished. The relay (`manage.py realtime_relay`, any number of copies) finds such
events a few seconds old (REALTIME_RELAY_DELAY_SECONDS, so it does not race the hook), claims a
batch, sends each to its scopes' groups and marks it published. Delivery is at least once: an
event may go out twice (the hook was slow but not dead; a relay died after sending and before
marking); clients drop what they already have by (scope, seq).

Claiming is a short transaction that sets `claimed_until` (a lease) on the batch:
`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so copies take disjoint batches without
waiting for each other; on SQLite the transaction is a write transaction from its first
statement (`transaction_mode = IMMEDIATE`, config/settings.py), so copies claim one after the
other. Sending happens outside any transaction, so a slow Redis never holds a database lock. A
relay that dies mid-batch leaves its lease to expire (RELAY_LEASE_SECONDS) and another copy takes
the events over. A failed send records the error and backs off (2, 4, 8 … 60 s) before the event
is tried again.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from realtime.models import OutboxEvent, OutboxEventScope
from realtime.outbox import describe_failure, event_message, group_send_events

log = logging.getLogger(__name__)

# How long a claimed batch is reserved for the relay that claimed it.
RELAY_LEASE_SECONDS = 60
BACKOFF_MAX_SECONDS = 60


@dataclass
class RelayPass:
    claimed: int = 0
    sent: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def claim(*, delay_seconds: float, batch: int) -> list[int]:
    """Reserve up to `batch` unpublished events older than `delay_seconds`, oldest first,
    that no other relay holds; returns their ids."""
    now = timezone.now()
    with transaction.atomic():
        due = (
            OutboxEvent.objects.filter(
                published_at__isnull=True, created_at__lte=now - timedelta(seconds=delay_seconds)
            )
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .order_by("created_at", "id")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("id", flat=True)[:batch])
        if ids:
            OutboxEvent.objects.filter(pk__in=ids).update(
                claimed_until=now + timedelta(seconds=RELAY_LEASE_SECONDS)
            )
    return ids


def messages_for(ids: list[int]) -> list[dict[str, Any]]:
    """The channel-layer messages of these events, exactly as publish sent (or would have sent)
    them, oldest first."""
    seqs: dict[int, dict[str, int]] = defaultdict(dict)
    for event_id, scope, seq in OutboxEventScope.objects.filter(event_id__in=ids).values_list(
        "event_id", "scope", "seq"
    ):
        seqs[event_id][scope] = seq
    return [
        event_message(
            event_id=event.pk,
            event_type=event.type,
            payload=event.payload,
            seqs=dict(sorted(seqs[event.pk].items())),
            occurred_at=event.created_at,
        )
        for event in OutboxEvent.objects.filter(pk__in=ids).order_by("created_at", "id")
    ]


async def _send(messages: list[dict[str, Any]], result: RelayPass) -> None:
    """Send the claimed events the way the after-commit hook does (each scope's events in
    order, batched per scope); what did not reach all its scopes is recorded as failed."""
    sent: set[int] = set()
    error = ""
    try:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("no channel layer is configured (settings.CHANNEL_LAYERS)")
        await group_send_events(layer, messages, sent)
    except Exception as exc:
        error = describe_failure(exc)[:1000]
    for message in messages:
        if message["id"] in sent:
            result.sent.append(message["id"])
        else:
            result.failed[message["id"]] = error


def relay_once(*, delay_seconds: float | None = None, batch: int | None = None) -> RelayPass:
    """One batch: claim, send, record. Returns what happened."""
    delay = settings.REALTIME_RELAY_DELAY_SECONDS if delay_seconds is None else delay_seconds
    size = settings.REALTIME_RELAY_BATCH if batch is None else batch
    result = RelayPass()
    ids = claim(delay_seconds=delay, batch=size)
    result.claimed = len(ids)
    if not ids:
        return result
    messages = messages_for(ids)
    async_to_sync(_send)(messages, result)
    now = timezone.now()
    if result.sent:
        OutboxEvent.objects.filter(pk__in=result.sent).update(
            published_at=now, attempts=F("attempts") + 1, claimed_until=None, last_error=""
        )
        log.info("relay sent %d outbox event(s): %s", len(result.sent), result.sent[:20])
    if result.failed:
        error = next(iter(result.failed.values()))
        for event in OutboxEvent.objects.filter(pk__in=list(result.failed)).only("attempts"):
            backoff = min(BACKOFF_MAX_SECONDS, 2 ** min(event.attempts + 1, 6))
            OutboxEvent.objects.filter(pk=event.pk).update(
                attempts=F("attempts") + 1,
                claimed_until=now + timedelta(seconds=backoff),
                last_error=result.failed[event.pk],
            )
        log.warning(
            "relay could not send %d outbox event(s), retrying with backoff: %s",
            len(result.failed),
            error,
        )
    return result


def run(
    *,
    stop: threading.Event,
    once: bool = False,
    interval: float | None = None,
    delay_seconds: float | None = None,
    batch: int | None = None,
) -> tuple[int, int]:
    """Relay until `stop` is set (a signal), or — with `once` — until nothing is due. Finishes
    the batch in hand before stopping. Returns (sent, failed) over the run."""
    pause = settings.REALTIME_RELAY_INTERVAL_SECONDS if interval is None else interval
    size = settings.REALTIME_RELAY_BATCH if batch is None else batch
    sent = failed = 0
    while not stop.is_set():
        close_old_connections()
        try:
            result = relay_once(delay_seconds=delay_seconds, batch=size)
        except Exception:
            if once:
                raise
            log.exception("relay pass failed; trying again in %.0f s", max(pause, 5.0))
            stop.wait(max(pause, 5.0))
            continue
        sent += len(result.sent)
        failed += len(result.failed)
        if once and (result.claimed < size or result.failed):
            break
        if result.claimed < size or result.failed:
            stop.wait(pause)
    close_old_connections()
    return sent, failed
