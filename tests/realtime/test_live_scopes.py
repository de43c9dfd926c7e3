"""Which scopes each kind of user may follow live (command.live, the function the consumer
calls through settings.REALTIME_SCOPES_FUNCTION)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils.module_loading import import_string

from command.live import scopes_for_connection
from tests.realtime.live import make_user

pytestmark = pytest.mark.django_db


def test_the_setting_names_this_function(settings):
    assert import_string(settings.REALTIME_SCOPES_FUNCTION) is scopes_for_connection


@pytest.mark.parametrize(
    ("role", "place", "department", "expected"),
    [
        ("district_operator", "440309", "", ["district:440309"]),
        ("street_operator", "440309001", "", ["street:440309001"]),
        ("community_staff", "440309001001", "", ["community:440309001001"]),
        ("grid_worker", "440309001001001", "", ["grid:440309001001001"]),
        ("department_handler", "", "CGJ", ["department:CGJ"]),
        ("department_handler", "", "", []),  # no department yet: their own tasks only
    ],
)
def test_each_role_follows_its_place_and_its_own_tasks(role, place, department, expected):
    user = make_user(f"u-{role}-{department}", role, place, department)

    assert scopes_for_connection(user, None) == [*expected, f"user:{user.pk}"]


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditors_and_admins_without_a_place_follow_the_active_district(role):
    user = make_user(f"u-{role}", role)  # the demo geography is active (tests/conftest.py)

    assert scopes_for_connection(user, None) == ["district:440309", f"user:{user.pk}"]


def test_integrations_users_without_a_role_inactive_and_anonymous_users_follow_nothing():
    machine = make_user("u-machine", "integration")
    nobody = make_user("u-nobody", "")
    gone = make_user("u-gone", "street_operator", "440309001")
    gone.is_active = False
    gone.save()

    for user in (machine, nobody, gone, AnonymousUser(), None):
        assert scopes_for_connection(user, None) == []
