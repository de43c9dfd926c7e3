"""The path a grid worker takes: sign in on the site's own login page (not the admin's, which
admits staff only), then report through the API with the session and its CSRF token."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Role
from incidents.models import Incident
from tests.incidents.api import LIST, report_body
from tests.incidents.cases import COMMUNITY, DISTRICT, GRID, STREET, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

PASSWORD = "grid-Worker-2026"


def test_a_grid_worker_signs_in_and_reports_with_the_session_and_csrf_token():
    worker = make_user(Role.GRID_WORKER, GRID)
    worker.set_password(PASSWORD)
    worker.save()
    browser = Client(enforce_csrf_checks=True)

    page = browser.get("/accounts/login/")
    assert page.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    signed_in = browser.post(
        "/accounts/login/",
        {
            "username": worker.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": page.cookies["csrftoken"].value,
        },
    )
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/m/"  # the phone's report page, where a grid worker works

    token = browser.cookies["csrftoken"].value
    without_token = browser.post(LIST, report_body(), content_type="application/json")
    assert without_token.status_code == 403
    assert Incident.objects.count() == 0

    created = browser.post(
        LIST, report_body(), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert created.status_code == 201, created.content
    assert created.json()["grid_code"] == GRID
    listed = browser.get(LIST).json()
    assert [case["number"] for case in listed["results"]] == [created.json()["number"]]


def test_a_wrong_password_is_refused_on_the_login_page():
    worker = make_user(Role.GRID_WORKER, GRID)
    worker.set_password(PASSWORD)
    worker.save()
    browser = Client()
    answer = browser.post("/accounts/login/", {"username": worker.username, "password": "nope"})
    assert answer.status_code == 200
    assert 'class="form-error"' in answer.content.decode()
    assert "_auth_user_id" not in browser.session


def _sign_in(user: Any, path: str = "/accounts/login/") -> Any:
    user.set_password(PASSWORD)
    user.save()
    return Client().post(path, {"username": user.username, "password": PASSWORD})


@pytest.mark.parametrize(
    ("role", "place", "department", "lands_on"),
    [
        (Role.GRID_WORKER, GRID, "", "/m/"),
        (Role.COMMUNITY_STAFF, COMMUNITY, "", f"/command/community/{COMMUNITY}/"),
        (Role.STREET_OPERATOR, STREET, "", f"/command/street/{STREET}/"),
        (Role.DISTRICT_OPERATOR, DISTRICT, "", "/command/"),
        (Role.DEPARTMENT_HANDLER, "", "CG", "/command/department/"),
        (Role.ADMIN, "", "", "/command/"),
        (Role.AUDITOR, DISTRICT, "", "/command/audit/"),  # the audit trail (审计日志)
    ],
)
def test_each_role_lands_where_it_works(role, place, department, lands_on):
    answer = _sign_in(make_user(role, place, department))
    assert answer.status_code == 302
    assert answer["Location"] == lands_on


def test_a_page_asked_for_before_signing_in_wins_over_the_workplace():
    worker = make_user(Role.GRID_WORKER, GRID)
    answer = _sign_in(worker, "/accounts/login/?next=/m/tasks/")
    assert answer["Location"] == "/m/tasks/"
    # Another site is never a destination.
    answer = _sign_in(worker, "/accounts/login/?next=https://example.com/")
    assert answer["Location"] == "/m/"
