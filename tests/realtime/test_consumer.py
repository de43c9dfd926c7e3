"""The live feed at /ws/ through a real Daphne and a real WebSocket client (the `websockets`
package): who may join what, replay, the seam between replay and live events, heartbeats,
coalescing, and the limits on what a client may send."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.realtime.conftest import FAST
from tests.realtime.live import (
    DISTRICT,
    OTHER_STREET,
    STREET,
    make_user,
    open_feed,
    publish_committed,
    session_of,
)

pytestmark = pytest.mark.django_db(transaction=True)
REPLAY_LIMIT = int(FAST["REALTIME_REPLAY_LIMIT"])


def test_an_anonymous_socket_is_closed_with_4401(feed_server):
    with open_feed(feed_server.url, session=None) as feed:
        assert feed.close_code() == 4401


def test_a_socket_from_a_foreign_origin_is_refused(feed_server):
    from websockets.exceptions import InvalidStatus

    user = make_user("origin", "street_operator", "440309001")
    with (
        pytest.raises(InvalidStatus, match="403"),
        open_feed(feed_server.url, session_of(user), origin="https://evil.example.com"),
    ):
        pass


def test_an_integration_account_has_nothing_to_follow_and_is_closed_with_4403(feed_server):
    machine = make_user("hotline", "integration")
    with open_feed(feed_server.url, session_of(machine)) as feed:
        assert feed.close_code() == 4403


def test_a_street_operator_cannot_join_another_street_nor_see_its_events(feed_server):
    user = make_user("street1", "street_operator", "440309001")
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(scopes=[STREET, OTHER_STREET, DISTRICT])
        feed.wait_for(lambda f: f.of_type("welcome"), what="welcome")

        assert feed.of_type("error") == [
            {"type": "error", "code": "forbidden_scope", "scopes": [DISTRICT, OTHER_STREET]}
        ]
        assert feed.of_type("welcome")[0]["scopes"] == [STREET]
        log = feed_server.log()
        assert f"user {user.pk} asked for scopes it may not join: {DISTRICT}, {OTHER_STREET}" in (
            log
        )

        publish_committed([OTHER_STREET, DISTRICT], n=1)  # not for this street
        mine = publish_committed([STREET, DISTRICT], n=2)
        feed.wait_for(lambda f: f.events(), what="the street's event")
        # The next heartbeat comes after every event it counts: nothing else was on its way.
        beats = len(feed.of_type("heartbeat"))
        feed.wait_for(lambda f: len(f.of_type("heartbeat")) > beats, what="a heartbeat")

    assert [e["id"] for e in feed.events()] == [mine.pk]
    # Only the numbers of the scopes it joined: not the district's.
    assert feed.events()[0]["seqs"] == {STREET: mine.scopes.get(scope=STREET).seq}


def test_without_scopes_in_hello_a_user_joins_all_it_may(feed_server):
    user = make_user("grid1", "grid_worker", "440309001001001")
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello()
        feed.wait_for(lambda f: f.of_type("welcome"), what="welcome")
    assert feed.of_type("welcome")[0]["scopes"] == ["grid:440309001001001", f"user:{user.pk}"]
    assert not feed.of_type("error")


def test_hello_with_only_forbidden_scopes_gets_the_error_and_close_4403(feed_server):
    user = make_user("street2", "street_operator", "440309001")
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(scopes=[OTHER_STREET])
        assert feed.close_code() == 4403
    assert feed.of_type("error")[0]["scopes"] == [OTHER_STREET]


def test_replay_after_the_last_seq_then_live_events(feed_server):
    user = make_user("street3", "street_operator", "440309001")
    events = [publish_committed([STREET], n=n) for n in range(5)]
    seqs = [event.scopes.get().seq for event in events]

    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(last={STREET: seqs[1]}, scopes=[STREET])
        feed.wait_for(lambda f: len(f.events()) == 3, what="the replay")
        live = publish_committed([STREET], n=99)
        feed.wait_for(lambda f: len(f.events()) == 4, what="the live event")

    welcome = feed.of_type("welcome")[0]
    assert welcome["seqs"] == {STREET: seqs[-1]}
    assert welcome["epoch"]
    replayed = [m for m in feed.of_type("events") if m["replay"]]
    assert [e["id"] for m in replayed for e in m["events"]] == [e.pk for e in events[2:]]
    assert feed.events()[-1]["id"] == live.pk
    assert feed.events()[-1]["payload"] == {"n": 99}
    assert feed.events()[-1]["occurred_at"]
    assert feed.seqs(STREET) == [*seqs[2:], seqs[-1] + 1]
    assert feed.messages.index(welcome) < feed.messages.index(replayed[0])


def test_events_written_during_the_replay_arrive_once_and_in_order(feed_server):
    """The seam: events committed while the socket joins and replays come exactly once, with
    no gap, whether they arrive live, from the database, or both."""
    user = make_user("district1", "district_operator", "440309")
    for n in range(30):
        publish_committed([DISTRICT], n=n)
    start = feed_server_latest(DISTRICT) - 30
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:
        try:
            n = 100
            while not stop.is_set() and n < 500:
                written.append(publish_committed([DISTRICT, STREET], n=n).pk)
                n += 1
        finally:
            connection.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        with open_feed(feed_server.url, session_of(user)) as feed:
            feed.hello(last={DISTRICT: start})
            # Writing goes on until events arrive live, i.e. across the seam.
            feed.wait_for(
                lambda f: any(not m["replay"] for m in f.of_type("events")),
                timeout=120,
                what="live events after the replay",
            )
            stop.set()
            writer.join(60)
            total = 30 + len(written)
            feed.wait_for(lambda f: len(f.events()) >= total, what="every event")
            beats = len(feed.of_type("heartbeat"))
            feed.wait_for(lambda f: len(f.of_type("heartbeat")) > beats, what="a heartbeat")
    finally:
        stop.set()
        writer.join(60)

    assert feed.seqs(DISTRICT) == list(range(start + 1, start + 31 + len(written)))
    ids = [e["id"] for e in feed.events()]
    assert len(ids) == len(set(ids))
    assert ids[30:] == written
    assert any(m["replay"] for m in feed.of_type("events"))
    assert any(not m["replay"] for m in feed.of_type("events"))


def feed_server_latest(scope: str) -> int:
    from realtime.outbox import latest_seqs

    return latest_seqs([scope])[scope]


def test_heartbeats_carry_the_latest_seqs_the_epoch_and_the_layer_state(feed_server):
    user = make_user("dept1", "department_handler", department="CGJ")
    publish_committed(["department:CGJ"], n=1)
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(last={"department:CGJ": 0})
        feed.wait_for(lambda f: len(f.of_type("heartbeat")) >= 2, what="two heartbeats")
        publish_committed(["department:CGJ"], n=2)
        feed.wait_for(
            lambda f: any(b["seqs"]["department:CGJ"] == 2 for b in f.of_type("heartbeat")),
            what="a heartbeat counting the new event",
        )
    welcome = feed.of_type("welcome")[0]
    beats = feed.of_type("heartbeat")
    assert all(b["epoch"] == welcome["epoch"] for b in beats)
    assert all(b["layer"] == "up" for b in beats)
    assert all(set(b["seqs"]) == {"department:CGJ", f"user:{user.pk}"} for b in beats)
    assert all(b["at"].endswith("Z") for b in beats)
    # A heartbeat never counts an event the socket has not been sent before it.
    seen = 0
    for message in feed.messages:
        if message["type"] == "events":
            seen = max([seen, *(e["seqs"]["department:CGJ"] for e in message["events"])])
        if message["type"] == "heartbeat":
            assert message["seqs"]["department:CGJ"] <= seen


def test_a_burst_of_events_is_coalesced_into_few_messages(feed_server):
    """Thirty events committed in one transaction: the socket sends them in a few `events`
    messages (one per coalescing window), not thirty."""
    from django.db import transaction

    from realtime.outbox import publish

    user = make_user("community1", "community_staff", "440309001001")
    scope = "community:440309001001"
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(scopes=[scope])
        feed.wait_for(lambda f: f.of_type("welcome"), what="welcome")
        with transaction.atomic():
            for n in range(30):
                publish(type="tests.thing_changed", payload={"n": n}, scopes=[scope])
        feed.wait_for(lambda f: len(f.events()) == 30, what="thirty events")

    batches = feed.of_type("events")
    assert len(batches) < 10, [len(b["events"]) for b in batches]
    assert [e["payload"]["n"] for e in feed.events()] == list(range(30))


def test_resync_resends_everything_after_the_given_seqs(feed_server):
    user = make_user("street4", "street_operator", "440309001")
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(scopes=[STREET])
        feed.wait_for(lambda f: f.of_type("welcome"), what="welcome")
        start = feed.of_type("welcome")[0]["seqs"][STREET]
        for n in range(3):
            publish_committed([STREET], n=n)
        feed.wait_for(lambda f: len(f.events()) == 3, what="three live events")
        feed.send({"type": "resync", "last": {STREET: start + 1}})
        feed.wait_for(lambda f: len(f.events()) == 5, what="the two events after start + 1")
    assert feed.seqs(STREET) == [start + 1, start + 2, start + 3, start + 2, start + 3]
    assert feed.of_type("events")[-1]["replay"] is True


def test_a_last_seq_beyond_the_server_asks_for_a_snapshot(feed_server):
    user = make_user("street5", "street_operator", "440309001")
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(last={STREET: 10**9}, scopes=[STREET])
        feed.wait_for(lambda f: f.of_type("resync_required"), what="resync_required")
    assert feed.of_type("resync_required") == [
        {"type": "resync_required", "scope": STREET, "reason": "ahead_of_server"}
    ]


def test_a_gap_larger_than_the_replay_limit_asks_for_a_snapshot(feed_server, settings):
    from django.db import transaction

    from realtime.outbox import publish

    user = make_user("street6", "street_operator", "440309001")
    start = feed_server_latest(STREET)
    with transaction.atomic():
        for n in range(REPLAY_LIMIT + 5):
            publish(type="tests.thing_changed", payload={"n": n}, scopes=[STREET])
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(last={STREET: start}, scopes=[STREET])
        feed.wait_for(lambda f: f.of_type("resync_required"), what="resync_required")
        publish_committed([STREET], n=2000)
        feed.wait_for(lambda f: f.events(), what="the next live event")
    assert feed.of_type("resync_required")[0] == {
        "type": "resync_required",
        "scope": STREET,
        "reason": "gap_too_large",
    }
    assert feed.seqs(STREET) == [start + REPLAY_LIMIT + 6]


def test_a_replay_of_events_the_retention_deleted_asks_for_a_snapshot(feed_server):
    from datetime import timedelta

    from django.utils import timezone

    from realtime.models import OutboxEvent
    from realtime.retention import outbox_prune

    user = make_user("street7", "street_operator", "440309001")
    start = feed_server_latest(STREET)
    old = [publish_committed([STREET], n=n).pk for n in range(3)]
    OutboxEvent.objects.filter(pk__in=old).update(
        created_at=timezone.now() - timedelta(days=60), published_at=timezone.now()
    )
    outbox_prune(before=timezone.now() - timedelta(days=30))
    kept = publish_committed([STREET], n=3)
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(last={STREET: start + 1}, scopes=[STREET])
        feed.wait_for(lambda f: f.of_type("resync_required"), what="resync_required")
        publish_committed([STREET], n=4)
        feed.wait_for(lambda f: f.events(), what="the next live event")
    assert feed.of_type("resync_required")[0] == {
        "type": "resync_required",
        "scope": STREET,
        "reason": "pruned",
    }
    # Nothing with a hole is replayed: the next event is the first after the snapshot point.
    assert kept.pk not in [e["id"] for e in feed.events()]
    assert feed.seqs(STREET) == [start + 5]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", 4400),
        (json.dumps([1, 2]), 4400),
        (json.dumps({"type": "subscribe", "scopes": [STREET]}), 4400),
        (json.dumps({"type": "resync", "last": {}}), 4400),  # before hello
        (json.dumps({"type": "hello", "last": {STREET: "7"}}), 4400),
        (json.dumps({"type": "hello", "last": {STREET: -1}}), 4400),
        (json.dumps({"type": "hello", "last": {}, "pad": "x" * 20000}), 4413),
    ],
    ids=["not-json", "not-object", "unknown-type", "resync-first", "seq-text", "seq-neg", "big"],
)
def test_bad_or_oversized_messages_close_the_socket_with_a_clear_code(feed_server, message, code):
    user = make_user("street7", "street_operator", "440309001")
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.ws.send(message)
        assert feed.close_code() == code
    if code == 4400:
        assert feed.of_type("error")[0]["code"] == "bad_message"


def test_a_client_flooding_messages_is_closed_with_4429(feed_server):
    user = make_user("street8", "street_operator", "440309001")
    with open_feed(feed_server.url, session_of(user)) as feed:
        feed.hello(scopes=[STREET])
        feed.wait_for(lambda f: f.of_type("welcome"), what="welcome")
        for _ in range(60):  # the burst allowance is 20 messages
            feed.send({"type": "resync", "last": {STREET: 0}})
        assert feed.close_code() == 4429
    assert "too many messages" in feed_server.log()


def test_a_signed_out_user_cannot_open_a_socket(feed_server):
    from django.contrib.sessions.models import Session

    user = make_user("street9", "street_operator", "440309001")
    session = session_of(user)
    Session.objects.filter(session_key=session).delete()
    with open_feed(feed_server.url, session) as feed:
        assert feed.close_code() == 4401


def test_an_open_socket_closes_with_4401_when_its_session_ends_after_its_idle_limit(feed_server):
    from django.contrib.sessions.models import Session

    user = make_user("street10", "street_operator", "440309001")
    session = session_of(user)
    stored = Session.objects.get(session_key=session)
    # Signing in gave the session the desks' idle limit (accounts.sessions).
    assert timedelta(minutes=29) < stored.expire_date - timezone.now() <= timedelta(minutes=30)
    with open_feed(feed_server.url, session) as feed:
        feed.hello(scopes=[STREET])
        feed.wait_for(lambda f: f.of_type("welcome"), what="welcome")
        # The limit passes without use: the stored session has expired (nothing deleted it).
        Session.objects.filter(session_key=session).update(
            expire_date=timezone.now() - timedelta(seconds=1)
        )
        assert feed.close_code() == 4401
