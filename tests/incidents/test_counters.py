"""`config.db_backends.bulk.increment_counters` with a key of several fields (the alarm sources
bulk intake locks), on both databases: PostgreSQL takes the rows from arrays, SQLite from a
VALUES list."""

from __future__ import annotations

import pytest
from django.db import DataError, connection, transaction
from django.utils import timezone

from accounts.models import Role
from config.db_backends.bulk import increment_counters
from incidents.models import AlarmSource, Category
from tests.incidents.cases import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

KEY = ("account", "source_ref", "category", "channel")
NOW = timezone.now()


def count(keys: list[tuple[int, str, int, str]], by: list[int]) -> dict[object, int]:
    return increment_counters(
        connection, AlarmSource, KEY, "alarms", keys, by=by, defaults={"first_alarm_at": NOW}
    )


def test_rows_are_made_then_added_to_and_their_counts_returned_by_key():
    account = make_user(Role.INTEGRATION)
    manhole, rubbish = Category.objects.filter(code__in=["01001", "06010"]).order_by("code")
    first = (account.pk, "JG-1", manhole.pk, "sensor")
    second = (account.pk, "CAM-9", rubbish.pk, "video_ai")

    assert count([first, second], [2, 1]) == {first: 2, second: 1}
    assert count([first], [3]) == {first: 5}

    stored = {
        (row.account_id, row.source_ref, row.category_id, row.channel): (
            row.alarms,
            row.first_alarm_at,
        )
        for row in AlarmSource.objects.all()
    }
    assert stored == {first: (5, NOW), second: (1, NOW)}


def test_a_value_too_long_for_its_column_is_refused_not_cut():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not hold text to a column's length")
    account = make_user(Role.INTEGRATION)
    manhole = Category.objects.get(code="01001")

    with pytest.raises(DataError), transaction.atomic():
        count([(account.pk, "X" * 101, manhole.pk, "sensor")], [1])

    assert not AlarmSource.objects.exists()
