"""The authorization matrix of the incidents API: role × endpoint × whose case. A case outside a
user's scope does not exist for them — not in the list, not in the count, 404 on detail and on
every action; a visible case the user may not act on is 403; anonymous callers get 403."""

from __future__ import annotations

import pytest

from incidents.models import Incident, IncidentTransition
from incidents.services import incident_dispatch, incident_register
from tests.incidents.api import LIST, action_url, client_for, detail_url
from tests.incidents.cases import OTHER_STREET_GRID, report

pytestmark = pytest.mark.usefixtures("reference_data")

# Whose cases each role sees: "ours" is in 龙华街道 grid 440309001001001, dispatched to 城管
# (CGJ); "theirs" is a new report in street 440309002.
SEES = {
    "district": {"ours", "theirs"},
    "auditor": {"ours", "theirs"},
    "street": {"ours"},
    "community": {"ours"},
    "grid_worker": {"ours"},
    "handler": {"ours"},
    "other_street": {"theirs"},
    "other_department": set(),
    "other_community": set(),
}


@pytest.fixture
def cases(cast):
    ours = incident_dispatch(
        incident=incident_register(incident=report(), by=cast.community),
        by=cast.street,
        department_code="CGJ",
    )
    theirs = report(grid=OTHER_STREET_GRID)
    return {"ours": ours, "theirs": theirs}


@pytest.mark.parametrize("role", sorted(SEES))
def test_list_and_count_show_exactly_the_cases_in_scope(cast, cases, role):
    body = client_for(getattr(cast, role)).get(LIST).json()

    expected = {cases[name].number for name in SEES[role]}
    assert {row["number"] for row in body["results"]} == expected
    assert body["count"] == len(expected)
    # A filter naming another street shows nothing more.
    street = client_for(getattr(cast, role)).get(LIST, {"street": "440309002"}).json()
    assert street["count"] == len(expected & {cases["theirs"].number})


@pytest.mark.parametrize("role", sorted(SEES))
@pytest.mark.parametrize("whose", ["ours", "theirs"])
def test_detail_is_404_outside_the_scope(cast, cases, role, whose):
    response = client_for(getattr(cast, role)).get(detail_url(cases[whose].number))

    if whose in SEES[role]:
        assert response.status_code == 200
        assert response.json()["number"] == cases[whose].number
    else:
        assert response.status_code == 404
        assert response.json() == {"detail": f"没有编号为 {cases[whose].number} 的案件。"}


def test_a_case_out_of_sight_is_refused_in_the_readers_language(cast, cases):
    client = client_for(cast.other_street)
    url = detail_url(cases["ours"].number)

    chinese = client.get(url)
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en")

    assert (chinese.status_code, english.status_code) == (404, 404)
    assert chinese.json() == {"detail": f"没有编号为 {cases['ours'].number} 的案件。"}
    assert english.json() == {"detail": f"No case {cases['ours'].number}."}


# (role, action on "ours" — dispatched to CGJ — and the expected answer)
ACTIONS = [
    ("handler", "accept", 200),
    ("other_department", "accept", 404),
    ("other_street", "accept", 404),
    ("auditor", "accept", 403),
    ("grid_worker", "accept", 403),
    ("street", "accept", 403),  # a centre dispatches; the department accepts
    ("community", "park", 200),
    ("other_community", "park", 404),
    ("auditor", "park", 403),
    ("handler", "park", 403),
    ("district", "register", 409),  # visible and commanding, but the case is dispatched
]


BODIES = {"park": {"reason": "需立项"}}


@pytest.mark.parametrize(("role", "action", "expected"), ACTIONS)
def test_actions_by_role(cast, cases, role, action, expected):
    case = cases["ours"]
    steps = IncidentTransition.objects.filter(incident=case).count()

    response = client_for(getattr(cast, role)).post(
        action_url(case.number, action), BODIES.get(action, {}), format="json"
    )

    assert response.status_code == expected, response.json()
    after = IncidentTransition.objects.filter(incident=case).count()
    assert after == steps + (1 if expected == 200 else 0)
    if expected == 409:
        assert response.json()["allowed_actions"] == ["accept", "send_back", "call_out", "park"]


def test_another_streets_operator_cannot_touch_our_cases(cast, cases):
    client = client_for(cast.other_street)
    for action in ("register", "dispatch", "park", "close", "reopen"):
        response = client.post(action_url(cases["ours"].number, action), {}, format="json")
        assert response.status_code == 404
    assert Incident.objects.get(pk=cases["ours"].pk).status == "dispatched"


def test_anonymous_callers_get_nothing(cases):
    client = client_for(None)
    assert client.get(LIST).status_code == 403
    assert client.get(detail_url(cases["ours"].number)).status_code == 403
    response = client.post(action_url(cases["theirs"].number, "register"), {}, format="json")
    assert response.status_code == 403
    assert Incident.objects.get(pk=cases["theirs"].pk).status == "reported"


def test_a_user_without_a_role_sees_nothing(cast, cases):
    client = client_for(cast.no_role)
    assert client.get(LIST).json()["count"] == 0
    assert client.get(detail_url(cases["ours"].number)).status_code == 404


@pytest.mark.parametrize(
    ("role", "phone"),
    [
        ("district", "13812341234"),
        ("street", "13812341234"),
        ("community", "13812341234"),
        ("handler", "138****1234"),
        ("grid_worker_2", "138****1234"),
        ("auditor", "138****1234"),
        ("admin", "138****1234"),
    ],
)
def test_the_reporters_phone_is_masked_for_those_who_do_not_call_back(cast, role, phone):
    case = incident_dispatch(
        incident=incident_register(
            incident=report(reporter_phone="13812341234"), by=cast.community
        ),
        by=cast.street,
        department_code="CGJ",
    )
    body = client_for(getattr(cast, role)).get(detail_url(case.number)).json()
    assert body["reporter_phone"] == phone
