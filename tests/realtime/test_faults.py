"""The live feed when things break, with a Redis each test controls (its own redis-server on a
free port) and real Daphne processes: Redis killed while events are written, Redis flushed, and
two server processes sharing one Redis."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
from channels.layers import channel_layers

from config.settings import channel_layers_for
from realtime import relay
from realtime.models import OutboxEvent
from tests.asgi_server import RedisServer, daphne_server, private_redis
from tests.realtime.conftest import FAST
from tests.realtime.live import (
    DISTRICT,
    STREET,
    Feed,
    make_user,
    open_feed,
    publish_committed,
    session_of,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis(settings: Any) -> Iterator[RedisServer]:
    """A private Redis, used by this process's channel layer too."""
    with private_redis() as server:
        settings.CHANNEL_LAYERS = channel_layers_for(server.url)
        settings.REDIS_URL = server.url
        channel_layers.backends.clear()
        yield server
    channel_layers.backends.clear()


def live_ids(feed: Feed) -> set[int]:
    """The ids of the events that came live (not in a replay from the database)."""
    return {e["id"] for m in feed.of_type("events") if not m["replay"] for e in m["events"]}


def contiguous(feed: Feed, scope: str, start: int, end: int) -> None:
    """Every number start+1 … end arrived exactly once, in order."""
    assert feed.seqs(scope) == list(range(start + 1, end + 1))


def test_redis_killed_while_events_are_written_loses_nothing(redis):
    user = make_user("street-fault", "street_operator", "440309001")
    with (
        daphne_server(redis_url=redis.url, env=FAST) as server,
        open_feed(server.url, session_of(user)) as feed,
    ):
        feed.hello(scopes=[STREET])
        feed.wait_for(lambda f: f.of_type("heartbeat"), what="a first heartbeat")
        start = feed.of_type("welcome")[0]["seqs"][STREET]

        redis.stop()  # SIGKILL: Redis and everything in it are gone
        written = [publish_committed([STREET], n=n) for n in range(5)]
        # Committed and stored, though not sent: the after-commit hook could not reach Redis.
        assert OutboxEvent.objects.filter(
            pk__in=[e.pk for e in written], published_at__isnull=True
        ).count() == len(written)
        feed.wait_for(
            lambda f: any(b["layer"] == "down" for b in f.of_type("heartbeat")),
            what='a heartbeat saying "layer": "down"',
        )
        # While Redis is down the socket catches up from the database.
        feed.wait_for(lambda f: len(f.events()) == 5, what="the five events from the database")

        redis.start()  # empty, on the same port
        down_at = len(feed.messages)
        feed.wait_for(
            lambda f: (
                any(b["layer"] == "up" for b in f.of_type("heartbeat")[1:])
                and any(
                    m["type"] == "heartbeat" and m["layer"] == "up" for m in f.messages[down_at:]
                )
            ),
            what="a heartbeat saying the layer is back",
        )
        # The relay sends the five again: the socket drops them as duplicates.
        assert sorted(relay.relay_once(delay_seconds=0).sent) == sorted(e.pk for e in written)
        # And live events flow again through Redis (not only through the database catch-up).
        # At least three, one at a time, until one has come live: on a busy machine a catch-up
        # poll that started before the layer was back can still deliver the first ones.
        after: list[OutboxEvent] = []
        while len(after) < 3 or not live_ids(feed) & {e.pk for e in after}:
            assert len(after) < 10, "no event came live after Redis was back"
            after.append(publish_committed([STREET], n=10 + len(after)))
            feed.wait_for(
                lambda f: len(f.events()) == 5 + len(after),
                what=f"event {len(after)} after the restart",
            )
        beats = len(feed.of_type("heartbeat"))
        feed.wait_for(lambda f: len(f.of_type("heartbeat")) > beats + 1, what="heartbeats")
        log = server.log()

    assert "channel layer failed" in log
    assert "channel layer is back" in log
    contiguous(feed, STREET, start, start + 5 + len(after))
    assert [e["id"] for e in feed.events()] == [e.pk for e in written + after]
    assert live_ids(feed) & {e.pk for e in after}, "no event came live after Redis was back"
    epochs = {b["epoch"] for b in feed.of_type("heartbeat") if b["layer"] == "up"}
    assert len(epochs) == 2  # the restarted Redis lost the epoch key: a new epoch


def test_after_flushall_the_epoch_changes_and_a_resync_returns_everything(redis):
    user = make_user("district-flush", "district_operator", "440309")
    with (
        daphne_server(redis_url=redis.url, env=FAST) as server,
        open_feed(server.url, session_of(user)) as feed,
    ):
        feed.hello(scopes=[DISTRICT])
        feed.wait_for(lambda f: f.of_type("welcome"), what="welcome")
        welcome = feed.of_type("welcome")[0]
        start = welcome["seqs"][DISTRICT]
        written = [publish_committed([DISTRICT], n=n) for n in range(3)]
        feed.wait_for(lambda f: len(f.events()) == 3, what="three live events")

        redis.flushall()
        feed.wait_for(
            lambda f: any(b["epoch"] != welcome["epoch"] for b in f.of_type("heartbeat")),
            what="a heartbeat with a new epoch",
        )
        # What a client does on a new epoch: ask for everything after what it trusts. This one
        # pretends it lost the three events (as a core-layer client could have).
        feed.send({"type": "resync", "last": {DISTRICT: start}})
        resync_at = len(feed.messages)
        more = [publish_committed([DISTRICT], n=10 + n) for n in range(2)]
        feed.wait_for(
            lambda f: {e["id"] for e in f.events()[3:]} >= {e.pk for e in written + more},
            what="the replay and the two new events",
        )

    after = [m for m in feed.messages[resync_at:] if m["type"] == "events"]
    replayed = [e["id"] for m in after if m["replay"] for e in m["events"]]
    # The replay holds everything after the given number, in order, each once (a new event
    # may also have come live just before the server read the resync).
    assert replayed[:3] == [e.pk for e in written]
    assert len(replayed) == len(set(replayed))
    seen = {e["seqs"][DISTRICT] for m in after for e in m["events"]}
    assert seen == set(range(start + 1, start + 6))


def test_an_event_written_through_server_a_reaches_a_socket_on_server_b(
    redis, committed_demo_geography
):
    from incidents.services import calendar_load, categories_load
    from tests.incidents.api import LIST, report_body
    from tests.incidents.cases import GRID

    categories_load()
    calendar_load()
    reporter = make_user("grid-a", "grid_worker", GRID)
    watcher = make_user("district-b", "district_operator", "440309")
    body = json.dumps(report_body()).encode()

    with (
        daphne_server(redis_url=redis.url, env=FAST) as server_a,
        daphne_server(redis_url=redis.url, env=FAST) as server_b,
        open_feed(server_b.url, session_of(watcher)) as feed,
    ):
        feed.hello(scopes=[DISTRICT])
        feed.wait_for(lambda f: f.of_type("welcome"), what="welcome on server B")
        # A grid worker reports a case through server A's API (session + CSRF, as a browser).
        session = session_of(reporter)
        with urllib.request.urlopen(server_a.url + "/accounts/login/", timeout=30) as page:
            cookie = SimpleCookie(page.headers.get("Set-Cookie"))
        csrf = cookie["csrftoken"].value
        request = urllib.request.Request(
            server_a.url + LIST,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Cookie": f"sessionid={session}; csrftoken={csrf}",
                "X-CSRFToken": csrf,
            },
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 201
            number = json.loads(response.read())["number"]
        feed.wait_for(lambda f: f.events(), what="the report's event on server B")

    (event,) = feed.events()
    assert event["event_type"] == "incidents.incident_reported"
    assert event["payload"]["incident"]["number"] == number
    assert not any(m["replay"] for m in feed.of_type("events"))  # live, through Redis
