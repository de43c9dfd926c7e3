"""Not found, refused, failed (command.views.errors): a page in the site's look and the reader's
language that says why and where to go; the phone's look under /m/; JSON under /api/."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.utils import translation

from command.views import errors
from tests.incidents.cases import OTHER_STREET_GRID, Cast, make_cast, report
from tests.incidents.conftest import (  # noqa: F401  (fixtures)
    _fresh_calendar_cache,
    catalogue,
    holidays,
    reference_data,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]


@pytest.fixture
def people() -> Cast:
    return make_cast()


def _client(user: Any | None, language: str = "zh-hans") -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    client.post("/i18n/setlang/", {"language": language, "next": "/"})
    return client


def _text(html: str, css_class: str) -> str:
    match = re.search(rf'<p class="{css_class}">(.*?)</p>', html, re.S)
    assert match, f"the page has a {css_class}"
    return match.group(1).strip()


def test_a_case_out_of_sight_is_a_page_saying_so_with_the_way_back(people: Cast) -> None:
    theirs = report(grid=OTHER_STREET_GRID)
    url = f"/command/cases/{theirs.number}/"

    response = _client(people.street).get(url)

    assert response.status_code == 404
    html = response.content.decode()
    assert 'data-testid="error-page"' in html and 'class="topbar"' in html
    assert _text(html, "error-message") == f"没有编号为 {theirs.number} 的案件，或您无权查看。"
    assert f'href="/command/street/{people.street.place_code}/"' in html  # their console
    english = _client(people.street, "en").get(url).content.decode()
    assert _text(english, "error-message") == (
        f"There is no case {theirs.number}, or you may not see it."
    )
    assert "Back to my workplace" in english


def test_an_unknown_address_says_so_and_offers_sign_in_to_a_visitor() -> None:
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert _text(html, "error-message") == "没有这个页面，或您无权查看。"
    assert 'href="/accounts/login/?next=/no-such-page/"' in html


def test_the_phone_says_it_in_the_phones_look(people: Cast) -> None:
    theirs = report(grid=OTHER_STREET_GRID)

    response = _client(people.grid_worker).get(f"/m/tasks/{theirs.number}/")

    assert response.status_code == 404
    html = response.content.decode()
    assert 'class="m-body' in html and 'data-testid="error-page"' in html
    assert "没有这个案件，或您无权查看。" in html
    assert 'href="/m/tasks/"' in html
    # The frame knows the boundaries are there (it does not say reports cannot be made).
    assert 'data-testid="no-generation-banner"' not in html
    refused = _client(people.street).get("/m/").content.decode()
    assert 'data-testid="no-generation-banner"' not in refused


def test_an_unknown_api_address_is_answered_in_json() -> None:
    for url in ("/api/v1/no-such-thing/", "/open311/v2/nothing.json"):
        response = Client().get(url, headers={"accept-language": "en"})
        assert response.status_code == 404
        assert response.json() == {"detail": "There is no such page, or you may not see it."}


def test_a_refusal_and_a_failure_are_pages_too() -> None:
    factory = RequestFactory()
    with translation.override("zh-hans"):
        refused = errors.refused(factory.get("/command/"), PermissionDenied())
        failed = errors.server_error(factory.get("/command/"))
        failed_api = errors.server_error(factory.get("/api/v1/incidents/"))
    assert refused.status_code == 403
    assert "您的账号无权打开这个页面。" in refused.content.decode()
    assert failed.status_code == 500
    assert "服务器出错，操作可能没有完成" in failed.content.decode()
    assert failed_api.status_code == 500
    assert failed_api["Content-Type"] == "application/json"


def test_a_form_posted_without_its_csrf_token_says_what_to_do() -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post("/accounts/login/", {"username": "x", "password": "y"})

    assert response.status_code == 403
    assert "请刷新页面后重试" in _text(response.content.decode(), "error-message")


def test_a_body_too_large_for_a_signed_in_form_is_answered_in_words(people: Cast) -> None:
    """A console form's JSON over DATA_UPLOAD_MAX_MEMORY_SIZE: 413 in the API's JSON, in the
    reader's language (Django's own 400 page is English HTML, which the page showed raw)."""
    case = report()
    client = Client(enforce_csrf_checks=True)  # as in the browser: the CSRF check reads the body
    client.force_login(people.street)
    client.get(f"/command/cases/{case.number}/")
    token = client.cookies["csrftoken"].value
    huge = '{"reason": "' + "x" * 3_000_000 + '"}'

    response = client.post(
        f"/api/v1/incidents/{case.number}/park/",
        huge,
        content_type="application/json",
        headers={"x-csrftoken": token},
    )

    assert response.status_code == 413
    assert response.json()["detail"].startswith("请求体过大，最多 ")


def test_a_body_that_is_not_json_is_refused_in_words(people: Cast) -> None:
    client = _client(people.street)

    response = client.post("/api/v1/incidents/", '{"category": ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("无法解析请求体（")
