"""static/realtime/live.js in Debian's Chromium against a real Daphne and a Redis the test
controls: events arrive once and in order; the status goes "interrupted" while the server is
gone or its Redis is down, and the client catches up when they are back; a new epoch (FLUSHALL)
makes it resync."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import channel_layers

from config.settings import channel_layers_for
from tests.asgi_server import RedisServer, daphne_server, private_redis
from tests.e2e.conftest import _async_unsafe_allowed, browser  # noqa: F401  (fixtures)
from tests.realtime.conftest import FAST
from tests.realtime.live import STREET, make_user, publish_committed, session_of
from tests.threads import in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONNECT = """([storageKey]) => {
  window.feedLog = {events: [], statuses: [], batches: []};
  window.feed = CityOpsLive.connect({
    storageKey,
    scopes: ["street:440309001"],
    onEvents(events, {replay}) {
      window.feedLog.batches.push({count: events.length, replay});
      for (const e of events) window.feedLog.events.push(e);
    },
    onStatus(state) { window.feedLog.statuses.push(state); },
  });
}"""


def publish_in_thread(n: int) -> int:
    return in_thread(lambda: publish_committed([STREET], n=n).pk)  # type: ignore[no-any-return]


@pytest.fixture
def redis(settings: Any) -> Iterator[RedisServer]:
    with private_redis() as server:
        settings.CHANNEL_LAYERS = channel_layers_for(server.url)
        settings.REDIS_URL = server.url
        channel_layers.backends.clear()
        yield server
    channel_layers.backends.clear()


def feed_state(page: Any) -> dict[str, Any]:
    return page.evaluate("() => window.feedLog")  # type: ignore[no-any-return]


def wait_for(page: Any, expression: str, timeout: int = 60_000) -> None:
    page.wait_for_function(f"() => {expression}", timeout=timeout)


def test_the_browser_client_survives_a_server_restart_redis_down_and_a_flush(
    browser,  # noqa: F811
    redis,
):
    user = make_user("js-street", "street_operator", "440309001")
    session = session_of(user)
    with daphne_server(redis_url=redis.url, env=FAST) as server:
        context = browser.new_context(locale="zh-CN")
        context.add_cookies([{"name": "sessionid", "value": session, "url": server.url}])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/accounts/login/")
        page.add_script_tag(url="/static/realtime/live.js")
        page.evaluate(CONNECT, ["wall"])
        wait_for(page, "window.feedLog.statuses.includes('live')")

        first = [publish_in_thread(n) for n in range(3)]
        wait_for(page, "window.feedLog.events.length === 3")

        # The server goes away; events are written meanwhile; it comes back on the same port.
        server.stop()
        wait_for(page, "window.feedLog.statuses.at(-1) === 'interrupted'")
        missed = [publish_in_thread(10 + n) for n in range(2)]
        server.start(server.port)
        wait_for(
            page, "window.feedLog.events.length === 5 && window.feedLog.statuses.at(-1) === 'live'"
        )

        # Redis dies: the socket stays open, the page says "interrupted", events still come
        # (from the database); Redis comes back: "live" again.
        redis.stop()
        wait_for(page, "window.feedLog.statuses.at(-1) === 'interrupted'")
        during = publish_in_thread(20)
        wait_for(page, "window.feedLog.events.length === 6")
        redis.start()
        wait_for(page, "window.feedLog.statuses.at(-1) === 'live'")

        # FLUSHALL: a new epoch; the client resyncs and stays complete, without duplicates.
        statuses_before = len(feed_state(page)["statuses"])
        redis.flushall()
        wait_for(
            page,
            f"window.feedLog.statuses.slice({statuses_before}).includes('resyncing')"
            " && window.feedLog.statuses.at(-1) === 'live'",
        )
        after = publish_in_thread(30)
        wait_for(page, "window.feedLog.events.length === 7")
        state = feed_state(page)
        stored = page.evaluate("() => JSON.parse(sessionStorage.getItem('cityops.live.wall'))")
        page.evaluate("() => window.feed.close()")
        context.close()

    ids = [event["id"] for event in state["events"]]
    assert ids == [*first, *missed, during, after]
    seqs = [event["seqs"][STREET] for event in state["events"]]
    assert seqs == list(range(seqs[0], seqs[0] + 7))
    assert any(batch["replay"] for batch in state["batches"])  # the missed ones, replayed
    assert state["statuses"][:2] == ["connecting", "live"]
    assert "interrupted" in state["statuses"] and "resyncing" in state["statuses"]
    assert stored["last"][STREET] == seqs[-1]
    assert errors == []
