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
