"""A NUL in a query-string parameter is a 400 naming the parameter, on every surface (PostgreSQL
cannot hold NUL in text: a search for it used to fail inside the database)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from tests.incidents.cases import STREET, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def street() -> Client:
    client = Client()
    client.force_login(make_user(Role.STREET_OPERATOR, STREET))
    return client


def test_a_queue_search_for_nul_is_refused_naming_the_parameter(street: Client) -> None:
    response = street.get(f"/command/street/{STREET}/?q=%00")
    assert response.status_code == 400
    assert response.content.decode() == "参数 q 含有空字符（\\0），无法使用。"
    assert street.get(f"/command/street/{STREET}/?q=%E5%9E%83%E5%9C%BE").status_code == 200


def test_the_api_answers_json_in_the_readers_language(street: Client) -> None:
    response = street.get("/api/v1/incidents/?status=%00", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert response.json() == {
        "status": ["The parameter status holds a NUL character (\\0) and cannot be used."]
    }


def test_a_nul_in_a_parameters_name_is_refused_too() -> None:
    response = Client().get("/open311/v2/requests.json?a%00b=1")
    assert response.status_code == 400
    assert response.json() == {"a\\0b": ["参数 a\\0b 含有空字符（\\0），无法使用。"]}
