"""An audit entry's keys read in one order on every database (command.audit_labels): the
model's fields in the model's order, then the table's keys, then any other alphabetically —
not as the database keeps them (PostgreSQL's jsonb keeps an object's keys by their length)."""

from __future__ import annotations

import pytest

from command.audit_labels import audit_changes

pytestmark = pytest.mark.django_db


def _keys(object_type: str, before: dict | None, after: dict | None) -> list[str]:
    return [change.key for change in audit_changes(object_type, before, after)]


def test_a_cases_keys_follow_the_model_then_the_table_then_the_alphabet() -> None:
    written = {"status": "registered", "number": "LH-1", "zzz": 1, "department": "CGJ", "aaa": 2}
    by_length = dict(sorted(written.items(), key=lambda item: (len(item[0]), item[0])))
    expected = ["number", "status", "department", "aaa", "zzz"]
    assert _keys("incidents.incident", None, written) == expected
    assert _keys("incidents.incident", by_length, None) == expected
    # Keys only one side has are read in the same order as the others.
    assert _keys("incidents.incident", {"status": "a"}, {"number": "LH-1", "status": "b"}) == [
        "number",
        "status",
    ]


def test_an_unknown_kind_of_object_reads_alphabetically() -> None:
    assert _keys("tests.thing", {"b": 1, "a": 2}, {"c": 3}) == ["a", "b", "c"]
