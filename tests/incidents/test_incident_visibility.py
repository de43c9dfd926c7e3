"""Who sees which case: the selector every list, detail, count and export starts from."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.models import Role
from incidents.models import Incident
from incidents.selectors import incident_for_user, incident_timeline, incidents_visible_to
from incidents.services import incident_dispatch, incident_register
from tests.incidents.cases import (
    GRID,
    OTHER_GRID_SAME_COMMUNITY,
    OTHER_STREET,
    OTHER_STREET_GRID,
    Cast,
    make_user,
    report,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]


@pytest.fixture
def cases(cast: Cast) -> dict[str, Incident]:
    """Four cases: in the cast's grid (dispatched to CGJ), in another grid of the same community,
    in another street, and one more in that street dispatched to SWJ."""
    here = incident_register(incident=report(grid=GRID), by=cast.community)
    here = incident_dispatch(incident=here, by=cast.community, department_code="CGJ")
    neighbour = report(grid=OTHER_GRID_SAME_COMMUNITY)
    far = report(grid=OTHER_STREET_GRID)
    far_swj = incident_register(incident=report(grid=OTHER_STREET_GRID), by=make_street_op())
    far_swj = incident_dispatch(incident=far_swj, by=make_street_op(), department_code="SWJ")
    return {"here": here, "neighbour": neighbour, "far": far, "far_swj": far_swj}


def make_street_op():
    return make_user(Role.STREET_OPERATOR, OTHER_STREET)


def visible(user: object) -> set[str]:
    return set(incidents_visible_to(user).values_list("number", flat=True))


def names(cases: dict[str, Incident], *keys: str) -> set[str]:
    return {cases[key].number for key in keys}


ALL = ("here", "neighbour", "far", "far_swj")


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("district", ALL),
        ("auditor", ALL),
        ("admin", ALL),
        ("street", ("here", "neighbour")),
        ("other_street", ("far", "far_swj")),
        ("community", ("here", "neighbour")),
        ("other_community", ()),
        ("grid_worker", ("here",)),
        ("other_grid_worker", ("neighbour",)),
        ("handler", ("here",)),
        ("other_department", ("far_swj",)),
        ("no_role", ()),
    ],
)
def test_each_role_sees_its_part(cast: Cast, cases: dict[str, Incident], who: str, sees):
    assert visible(getattr(cast, who)) == names(cases, *sees)


def test_a_street_operator_never_sees_another_streets_case(cast: Cast, cases):
    far = cases["far"]
    assert far.street_code == "440309002"
    assert not incidents_visible_to(cast.street).filter(pk=far.pk).exists()
    with pytest.raises(Incident.DoesNotExist):
        incident_for_user(cast.street, far.number)
    assert incident_for_user(cast.other_street, far.number) == far


def test_an_unknown_number_and_a_hidden_one_look_the_same(cast: Cast, cases):
    for number in (cases["far"].number, "LH-20000101-000001"):
        with pytest.raises(Incident.DoesNotExist):
            incident_for_user(cast.street, number)


def test_a_grid_worker_sees_what_they_reported_anywhere(cast: Cast):
    worker = make_user(Role.GRID_WORKER, OTHER_STREET_GRID)
    own = report(grid=OTHER_STREET_GRID, reporter=worker)
    assert incident_for_user(worker, own.number) == own
    colleague = make_user(Role.GRID_WORKER, GRID)
    assert not incidents_visible_to(colleague).filter(pk=own.pk).exists()


def test_a_user_sees_the_cases_assigned_to_them(cast: Cast):
    case = incident_register(incident=report(grid=OTHER_GRID_SAME_COMMUNITY), by=cast.community)
    assert not incidents_visible_to(cast.grid_worker).filter(pk=case.pk).exists()
    worker = make_user(Role.GRID_WORKER, OTHER_GRID_SAME_COMMUNITY)
    case = incident_dispatch(incident=case, by=cast.community, assignee=worker)
    assert incident_for_user(worker, case.number) == case


def test_anonymous_and_inactive_users_see_nothing(cast: Cast, cases):
    assert visible(AnonymousUser()) == set()
    assert visible(None) == set()
    cast.district.is_active = False
    cast.district.save()
    assert visible(cast.district) == set()


def test_a_department_handler_without_a_department_sees_nothing(cases):
    assert visible(make_user(Role.DEPARTMENT_HANDLER)) == set()


def test_the_timeline_of_a_visible_case(cast: Cast, cases):
    case = incident_for_user(cast.handler, cases["here"].number)
    assert [step.action for step in incident_timeline(case)] == ["report", "register", "dispatch"]
