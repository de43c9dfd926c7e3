"""在岗响应人员 on the street and community consoles: the responders sharing a position inside
the area, as far as the viewer may see them (dispatch.selectors), by grid code then name, with
role, grid cell and how long ago they reported; stale positions left out; an empty state; no
panel for a role that sees nobody's position. Positions are made by the real service
(dispatch.services.responder_position_report). The live side (rows added, moved away, cleared
without a reload) is tests/e2e/test_console_responders_e2e.py.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import User
from dispatch.models import ResponderPosition
from dispatch.services import responder_position_clear, responder_position_report
from tests.incidents.cases import (
    COMMUNITY,
    GRID,
    OTHER_GRID_SAME_COMMUNITY,
    OTHER_STREET_GRID,
    STREET,
    Cast,
    make_cast,
    point_in,
)

pytestmark = pytest.mark.django_db

STREET_URL = f"/command/street/{STREET}/"
COMMUNITY_URL = f"/command/community/{COMMUNITY}/"
# A grid cell of 华联社区 (440309001002): the same street as 三联社区, another community.
OTHER_COMMUNITY_GRID = "440309001002001"
EMPTY = "当前没有共享位置的响应人员"


@pytest.fixture
def people() -> Cast:
    return make_cast()


def _named(user: User, name: str) -> User:
    user.first_name = name
    user.save(update_fields=["first_name"])
    return user


def _share(user: User, grid: str, minutes_ago: float = 0) -> None:
    """`user` reports a position inside `grid` (through the service), made `minutes_ago` old."""
    lon, lat = point_in(grid)
    responder_position_report(user=user, lon=lon, lat=lat, accuracy_m=10)
    if minutes_ago:
        ResponderPosition.objects.filter(user=user).update(
            received_at=timezone.now() - timedelta(minutes=minutes_ago)
        )


def _page(user: Any, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def _panel(html: str) -> str:
    start = html.index('data-testid="duty-responders"')
    return html[start : html.index("</section>", start)]


def _rows(html: str) -> list[dict[str, str]]:
    """The panel's rows as shown: id, name, role, grid cell, "ago"."""
    pattern = re.compile(
        r'<li class="duty-item" data-responder="(?P<id>\d+)">\s*'
        r'<span class="duty-name">(?P<name>[^<]*)</span>\s*'
        r'<span class="duty-role [^"]*">(?P<role>[^<]*)</span>\s*'
        r'<span class="duty-grid"[^>]*>(?P<grid>[^<]*)</span>\s*'
        r'<time class="duty-ago" datetime="[^"]+">(?P<ago>[^<]*)</time>'
    )
    return [match.groupdict() for match in pattern.finditer(_panel(html))]


def _config(html: str) -> Any:
    match = re.search(r'<script id="duty-config" type="application/json">(.*?)</script>', html)
    assert match, "#duty-config is embedded"
    return json.loads(match.group(1))


def _grid_name(code: str) -> str:
    from gridmap.models import Region

    return Region.objects.get(generation__status="active", code=code).name


def test_the_street_console_lists_its_responders_by_grid_then_name(people: Cast) -> None:
    # Two in the same cell (names ordered unlike their ids), one in a later cell of the same
    # community, one in another community of the street; one in another street.
    zhao = _named(people.grid_worker, "赵六")
    an = _named(people.grid_worker_2, "安七")
    handler = _named(people.handler, "钱八")
    worker = _named(people.other_grid_worker, "孙九")
    elsewhere = _named(people.other_department, "周十")
    _share(zhao, GRID, minutes_ago=3.3)
    _share(an, GRID)
    _share(handler, OTHER_GRID_SAME_COMMUNITY, minutes_ago=12.5)
    _share(worker, OTHER_COMMUNITY_GRID)
    _share(elsewhere, OTHER_STREET_GRID)

    html = _page(people.street, STREET_URL)
    rows = _rows(html)
    assert [int(row["id"]) for row in rows] == [an.pk, zhao.pk, handler.pk, worker.pk]
    assert rows[0] == {
        "id": str(an.pk),
        "name": "安七",
        "role": "网格员",
        "grid": _grid_name(GRID),
        "ago": "刚刚",
    }
    assert rows[1]["ago"] == "3 分钟前"
    assert (rows[2]["role"], rows[2]["grid"], rows[2]["ago"]) == (
        "职能部门处置人员",
        _grid_name(OTHER_GRID_SAME_COMMUNITY),
        "12 分钟前",
    )
    assert rows[3]["grid"] == _grid_name(OTHER_COMMUNITY_GRID)
    panel = _panel(html)
    assert "周十" not in panel
    assert 'data-testid="duty-count">4<' in panel
    assert EMPTY in panel  # present for the script, hidden
    assert re.search(r'class="muted duty-empty" data-testid="duty-empty" hidden', panel)

    # The script starts from the same list and keeps to this street; it reloads from the API.
    config = _config(html)
    assert [r["id"] for r in config["responders"]] == [int(row["id"]) for row in rows]
    assert config["match"] == {"street": STREET}
    assert config["maxAgeMinutes"] == settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES
    assert config["listUrl"] == "/api/v1/responders/positions/"

    # The district's operator sees the same street's list on its console.
    ids = [int(row["id"]) for row in _rows(_page(people.district, STREET_URL))]
    assert ids == [an.pk, zhao.pk, handler.pk, worker.pk]
    # The other street's operator sees only their own on theirs.
    other = _page(people.other_street, "/command/street/440309002/")
    assert [int(row["id"]) for row in _rows(other)] == [elsewhere.pk]


def test_the_community_console_lists_only_its_community(people: Cast) -> None:
    inside = _named(people.grid_worker, "赵六")
    neighbour = _named(people.other_grid_worker, "孙九")
    _share(inside, GRID)
    _share(neighbour, OTHER_COMMUNITY_GRID)

    for viewer in (people.community, people.street, people.district):
        html = _page(viewer, COMMUNITY_URL)
        assert [int(row["id"]) for row in _rows(html)] == [inside.pk], viewer.role
        assert _config(html)["match"] == {"community": COMMUNITY}
    # 华联社区's own console lists the other one.
    html = _page(people.street, "/command/community/440309001002/")
    assert [int(row["id"]) for row in _rows(html)] == [neighbour.pk]
    # The community's staff see only their community (and so on their console only it).
    html = _page(people.other_community, "/command/community/440309001002/")
    assert [int(row["id"]) for row in _rows(html)] == [neighbour.pk]


def test_stale_and_cleared_positions_are_not_listed(people: Cast) -> None:
    limit = settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES
    stale = _named(people.grid_worker, "赵六")
    fresh = _named(people.grid_worker_2, "安七")
    stopped = _named(people.handler, "钱八")
    _share(stale, GRID, minutes_ago=limit + 1)
    _share(fresh, GRID, minutes_ago=limit - 1)
    _share(stopped, GRID)
    responder_position_clear(user=stopped)

    html = _page(people.street, STREET_URL)
    assert [int(row["id"]) for row in _rows(html)] == [fresh.pk]
    assert _rows(html)[0]["ago"] == f"{limit - 1} 分钟前"
    assert "赵六" not in _panel(html) and "钱八" not in _panel(html)


def test_the_panel_says_when_nobody_shares_a_position(people: Cast) -> None:
    _share(_named(people.other_department, "周十"), OTHER_STREET_GRID)  # another street only
    for url in (STREET_URL, COMMUNITY_URL):
        html = _page(people.street, url)
        panel = _panel(html)
        assert _rows(html) == []
        assert "在岗响应人员" in panel and EMPTY in panel
        assert re.search(r'class="muted duty-empty" data-testid="duty-empty">', panel)
        assert re.search(r'<ul class="duty-list" hidden>', panel)
        assert 'data-testid="duty-count">0<' in panel
        assert _config(html)["responders"] == []


@pytest.mark.parametrize("who", ["grid_worker", "handler", "auditor", "no_role", "other_street"])
def test_who_may_not_open_a_console_does_not_see_its_responders(people: Cast, who: str) -> None:
    _share(people.grid_worker, GRID)
    client = Client()
    client.force_login(getattr(people, who))
    for url in (STREET_URL, COMMUNITY_URL):
        response = client.get(url)
        assert response.status_code == 404
        assert b"duty-responders" not in response.content


def test_an_admin_without_a_place_sees_no_panel(people: Cast) -> None:
    """An admin may open every console but sees nobody's position (no place): no panel, rather
    than an empty state that would say nobody is out."""
    _share(people.grid_worker, GRID)
    html = _page(people.admin, STREET_URL)
    assert "duty-responders" not in html and "duty-config" not in html
    assert 'data-testid="queue' in html


def test_the_queue_fragment_leaves_the_panel_alone(people: Cast) -> None:
    _share(people.grid_worker, GRID)
    html = _page(people.street, STREET_URL + "?fragment=queue")
    assert "duty-responders" not in html and "duty-config" not in html


def test_the_english_panel_is_translated(people: Cast) -> None:
    _share(_named(people.grid_worker, "赵六"), GRID, minutes_ago=5.5)
    client = Client()
    client.force_login(people.street)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    panel = _panel(client.get(STREET_URL).content.decode())
    assert "Responders on duty" in panel and "5 min ago" in panel and "Grid worker" in panel
    assert "在岗响应人员" not in panel and "分钟" not in panel
