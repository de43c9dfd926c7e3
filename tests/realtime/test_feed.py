"""A socket's bookkeeping (realtime.feed): which event is next, and the catch-up from the
database that keeps every scope's numbers consecutive, also when events span several scopes."""

from __future__ import annotations

import pytest
from django.db import transaction

from realtime.consumers import encoded_event
from realtime.feed import Cursor, catch_up, latest_seqs
from realtime.outbox import events_after, publish

A, B, C = "street:440309001", "user:7", "department:CGJ"


def event(seqs: dict[str, int], event_id: int = 1) -> dict:
    return {"id": event_id, "event_type": "tests.x", "payload": {}, "seqs": seqs}


def test_verdicts_look_only_at_the_joined_scopes():
    cursor = Cursor({A: 5, B: 2})

    assert cursor.verdict({A: 6}) == "next"
    assert cursor.verdict({A: 6, B: 3, C: 99}) == "next"  # C is not joined: ignored
    assert cursor.verdict({A: 5, B: 3}) == "next"  # already sent in A, next in B
    assert cursor.verdict({A: 4, B: 2}) == "duplicate"
    assert cursor.verdict({A: 7}) == "gap"
    assert cursor.verdict({A: 6, B: 4}) == "gap"  # next in A but B:3 is missing
    assert cursor.verdict({C: 1}) == "foreign"

    cursor.advance({A: 6, B: 3, C: 99})
    assert cursor.delivered == {A: 6, B: 3}


def publish_to(*scopes: str, n: int = 0) -> int:
    with transaction.atomic():
        return publish(type="tests.thing_changed", payload={"n": n}, scopes=scopes).pk


@pytest.mark.django_db
def test_catch_up_across_scopes_keeps_each_scopes_numbers_consecutive():
    start = latest_seqs([A, B], fresh=True)
    # Interleaved events: some in A only, some in B only, some in both.
    ids = [
        publish_to(A, n=1),
        publish_to(A, B, n=2),
        publish_to(B, n=3),
        publish_to(B, A, n=4),
        publish_to(A, n=5),
        publish_to(B, n=6),
    ]
    cursor = Cursor(dict(start))

    result = catch_up(cursor, limit=100)

    # Each once; events that share no scope may come in either order.
    assert sorted(m["id"] for m in result.events) == ids
    assert cursor.delivered == {A: start[A] + 4, B: start[B] + 4}
    for scope in (A, B):
        numbers = [m["seqs"][scope] for m in result.events if scope in m["seqs"]]
        assert numbers == list(range(start[scope] + 1, start[scope] + 5))
    assert result.too_far == {}
    # Nothing left: a second catch-up sends nothing.
    assert catch_up(cursor, limit=100).events == []


@pytest.mark.django_db
def test_catch_up_from_different_points_in_two_scopes_sends_each_event_once():
    start = latest_seqs([A, B], fresh=True)
    both = [publish_to(A, B, n=n) for n in range(4)]
    # The client has seen 3 of A but only 1 of B (it joined B later, say).
    cursor = Cursor({A: start[A] + 3, B: start[B] + 1})

    result = catch_up(cursor, limit=3)

    # B's second and third are duplicates in A but new in B: sent; the fourth is new in both.
    assert [m["id"] for m in result.events] == both[1:]
    assert cursor.delivered == {A: start[A] + 4, B: start[B] + 4}


@pytest.mark.django_db
def test_a_gap_beyond_the_limit_is_skipped_and_reported():
    start = latest_seqs([A], fresh=True)
    for n in range(5):
        publish_to(A, n=n)
    cursor = Cursor({A: start[A]})

    result = catch_up(cursor, limit=3)

    assert result.too_far == {A: "gap_too_large"}
    assert result.events == []
    assert cursor.delivered == {A: start[A] + 5}


@pytest.mark.django_db
def test_each_event_is_serialized_once_per_process_for_sockets_that_see_it_alike():
    start = latest_seqs([A], fresh=True)[A]
    publish_to(A, B, n=1)
    (message,) = events_after(A, start)

    first = encoded_event(message, [A, B])
    again = encoded_event(dict(message), [A, B, "user:99"])  # another socket, same view
    other_view = encoded_event(message, [A])

    assert again is first  # the same string object: serialized once, shared
    assert other_view is not first
    assert '"seqs":{"street:440309001":' in other_view and B not in other_view
