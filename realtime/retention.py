"""Outbox retention: delete events old enough that no screen will ask for them again.

The outbox is the record screens replay from after a reconnect, a gap or a flushed Redis
(docs/realtime.md). A replay is bounded (REALTIME_REPLAY_LIMIT events per scope; beyond it the
client reloads its snapshot), so an event weeks old is only ever read by a screen that was away
for weeks, which reloads anyway. `outbox_prune` deletes events written before a cut-off that
have been handed to the channel layer (an event still unsent stays for the relay, however old),
and raises each scope's `ScopeSequence.pruned_through` to the highest number it deleted, in the
same transaction: a replay from below that number answers `resync_required` instead of
returning a list with a hole in it (realtime.feed.catch_up).

Run it daily: `manage.py realtime_prune` (REALTIME_OUTBOX_RETENTION_DAYS, 30 by default).
Several copies at once are harmless (each deletes what it finds; the marks only rise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Greatest

from realtime.models import OutboxEvent, OutboxEventScope, ScopeSequence

PRUNE_BATCH = 2000


@dataclass
class PruneResult:
    events: int = 0
    scopes: int = 0


def outbox_prune(*, before: datetime, batch: int = PRUNE_BATCH) -> PruneResult:
    """Delete published events written before `before`, oldest first, `batch` per transaction."""
    result = PruneResult()
    touched: set[str] = set()
    while True:
        with transaction.atomic():
            ids = list(
                OutboxEvent.objects.filter(created_at__lt=before, published_at__isnull=False)
                .order_by("id")
                .values_list("id", flat=True)[:batch]
            )
            if not ids:
                break
            marks = (
                OutboxEventScope.objects.filter(event_id__in=ids)
                .values("scope")
                .annotate(top=Max("seq"))
                .order_by("scope")  # the order publish() locks scope counters in
            )
            for mark in marks:
                ScopeSequence.objects.filter(scope=mark["scope"]).update(
                    pruned_through=Greatest("pruned_through", mark["top"])
                )
                touched.add(mark["scope"])
            OutboxEventScope.objects.filter(event_id__in=ids).delete()
            OutboxEvent.objects.filter(id__in=ids).delete()
            result.events += len(ids)
    result.scopes = len(touched)
    return result
