"""The Daphne fixture that browser and socket tests use serves this run's test database."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.asgi_server import asgi_server  # noqa: F401  (pytest fixture)


def get(url: str, session: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if session:
        request.add_header("Cookie", f"sessionid={session}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.django_db(transaction=True)
def test_the_server_reads_the_test_database_of_this_run(asgi_server):  # noqa: F811
    user = get_user_model().objects.create_user(
        username="asgi-district",
        password="pw-123456789",
        role="district_operator",
        place_code="440309",
    )
    client = Client()
    client.force_login(user)  # a session row, committed in the test database
    session = client.cookies["sessionid"].value

    status, body = get(asgi_server + "/api/v1/incidents/", session)
    assert status == 200, body
    assert "results" in json.loads(body)
    # Without the session the same server refuses: the 200 came from the session written here.
    assert get(asgi_server + "/api/v1/incidents/")[0] == 403


def test_the_private_redis_outlives_the_override_of_the_test_it_was_started_in():
    """A session fixture starts inside the first test that asks for it, under that test's own
    overrides (the autouse `settings` fixture's). When those end, this process must still
    publish to the private Redis the server listens on (it published to the in-memory layer,
    and a browser test waiting for an event published here failed when it ran first)."""
    import redis
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.conf import settings
    from django.test.utils import override_settings

    from config.settings import channel_layers_for
    from tests.asgi_server import redis_for_tests

    before = settings.CHANNEL_LAYERS
    the_tests_own = override_settings(REDIS_URL="")  # no REDIS_URL: a private Redis is started
    the_tests_own.enable()
    session = redis_for_tests()
    try:
        url = session.__enter__()
        the_tests_own.disable()  # that test ends; the session goes on
        assert channel_layers_for(url) == settings.CHANNEL_LAYERS

        async def subscribed_there() -> list[bytes]:
            layer = get_channel_layer()
            await layer.group_add("probe", await layer.new_channel())
            return redis.Redis.from_url(url).pubsub_channels()

        assert any(b"probe" in name for name in async_to_sync(subscribed_there)())
    finally:
        session.__exit__(None, None, None)
    assert before == settings.CHANNEL_LAYERS
