"""Outbox retention (realtime.retention): old published events go, unsent ones stay for the
relay, and a replay that would need a deleted event asks the client for a snapshot instead of
returning a list with a hole in it."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from realtime.feed import Cursor, catch_up
from realtime.models import OutboxEvent, OutboxEventScope, ScopeSequence
from realtime.outbox import publish
from realtime.retention import outbox_prune

pytestmark = pytest.mark.django_db

A, B = "street:440309001", "community:440309001001"


def publish_to(*scopes: str, age_days: float = 0, sent: bool = True) -> OutboxEvent:
    with transaction.atomic():
        event = publish(type="tests.thing_changed", payload={}, scopes=scopes)
    OutboxEvent.objects.filter(pk=event.pk).update(
        created_at=timezone.now() - timedelta(days=age_days),
        published_at=timezone.now() if sent else None,
    )
    return event


def mine():  # the database may hold events of the test geography's set-up
    return OutboxEvent.objects.filter(type="tests.thing_changed")


def test_old_published_events_are_deleted_and_each_scope_marks_how_far(settings):
    old = [publish_to(A, age_days=40), publish_to(A, B, age_days=35)]
    unsent = publish_to(B, age_days=45, sent=False)
    recent = publish_to(A, B, age_days=1)

    result = outbox_prune(before=timezone.now() - timedelta(days=30), batch=1)

    assert result.events == 2 and result.scopes == 2
    assert set(mine().values_list("pk", flat=True)) == {unsent.pk, recent.pk}
    assert not OutboxEventScope.objects.filter(event_id__in=[e.pk for e in old]).exists()
    marks = dict(
        ScopeSequence.objects.filter(scope__in=[A, B]).values_list("scope", "pruned_through")
    )
    assert marks == {A: 2, B: 1}
    # Running again changes nothing; the marks never go down.
    assert outbox_prune(before=timezone.now() - timedelta(days=30)).events == 0
    assert (
        dict(ScopeSequence.objects.filter(scope__in=[A, B]).values_list("scope", "pruned_through"))
        == marks
    )


def test_a_replay_from_below_the_pruned_mark_asks_for_a_snapshot():
    publish_to(A, age_days=40)
    publish_to(A, age_days=40)
    kept = publish_to(A, age_days=1)
    outbox_prune(before=timezone.now() - timedelta(days=30))

    behind = Cursor({A: 1})  # saw #1, #2 is gone
    result = catch_up(behind, limit=100)
    assert result.too_far == {A: "pruned"}
    assert result.events == [] and behind.delivered == {A: 3}

    caught_up = Cursor({A: 2})  # saw everything that was deleted: #3 is still there
    result = catch_up(caught_up, limit=100)
    assert result.too_far == {}
    assert [m["id"] for m in result.events] == [kept.pk]


def test_the_command_uses_the_retention_setting(settings):
    settings.REALTIME_OUTBOX_RETENTION_DAYS = 10
    publish_to(A, age_days=11)
    publish_to(A, age_days=9)
    out = StringIO()
    call_command("realtime_prune", stdout=out)
    assert mine().count() == 1
    assert "deleted 1 event" in out.getvalue()
    call_command("realtime_prune", "--days", "5", stdout=out)
    assert mine().count() == 0
