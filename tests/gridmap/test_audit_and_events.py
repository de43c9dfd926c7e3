"""Changes to the geography are audited, and an activation is announced to the district.

Generation numbers 940+ keep clear of the demo generation 1 and the validation tests' 900s.
"""

from __future__ import annotations

from typing import Any

import pytest
import shapely

from accounts.models import Role, User
from audit.models import AuditEntry
from audit.selectors import chain_verify
from gridmap.models import LEVEL_ORDER, Generation, Level, Region
from gridmap.services import (
    GenerationInvalid,
    RegionInput,
    generation_activate,
    generation_create_draft,
    region_update_boundary,
    regions_add,
)
from realtime.models import OutboxEvent
from tests.gridmap.layouts import cells, clean_layout
from tests.realtime.test_outbox import with_subscriber

pytestmark = pytest.mark.django_db


def store(
    number: int, layout: dict[str, dict[str, Any]] | None = None, by: Any = None
) -> Generation:
    layout = clean_layout() if layout is None else layout
    generation = generation_create_draft(number=number, label=f"test {number}")
    for level in LEVEL_ORDER:
        regions_add(
            generation=generation,
            level=level,
            regions=[
                RegionInput(code, f"{level}-{code}", geom) for code, geom in layout[level].items()
            ],
            by=by,
        )
    return generation


def operator() -> User:
    return User.objects.create_user(
        "district-op", role=Role.DISTRICT_OPERATOR, place_code="440309", password="x" * 12
    )


def entries(action: str, obj: Generation | Region) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(action=action, object_id=str(obj.pk)).order_by("sequence")
    )


def activation_events() -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(type="gridmap.generation_activated").order_by("id"))


def test_activation_writes_one_audit_entry_and_one_event_to_the_district():
    user = operator()
    draft = store(940)
    previous = Generation.objects.active().get()
    events_before = activation_events()

    activated = generation_activate(generation=draft, by=user)

    (entry,) = entries("gridmap.generation_activate", draft)
    assert entry.object_type == "gridmap.generation"
    assert entry.actor_id == user.pk and entry.actor_role == "district_operator"
    assert entry.before == {"number": 940, "status": "draft", "active": [previous.number]}
    assert entry.after == {"number": 940, "status": "active", "retired": [previous.number]}
    (event,) = activation_events()[len(events_before) :]
    assert event.payload == {
        "number": 940,
        "label": "test 940",
        "synthetic": False,
        "activated_at": event.payload["activated_at"],
        "retired": [previous.number],
    }
    assert event.payload["activated_at"].startswith(
        activated.activated_at.strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert list(event.scopes.values_list("scope", flat=True)) == ["district:440309"]
    assert chain_verify().ok


def test_a_refused_activation_is_neither_audited_nor_announced():
    layout = clean_layout()
    del layout[Level.GRID]["440309001001002"]  # a gap
    draft = store(941, layout)
    events_before = activation_events()

    with pytest.raises(GenerationInvalid):
        generation_activate(generation=draft)

    assert entries("gridmap.generation_activate", draft) == []
    assert activation_events() == events_before


def test_each_imported_level_is_audited_with_its_count():
    user = operator()
    draft = store(942, by=user)

    added = entries("gridmap.regions_add", draft)

    assert [e.after for e in added] == [
        {"generation": 942, "level": "district", "count": 1},
        {"generation": 942, "level": "street", "count": 2},
        {"generation": 942, "level": "community", "count": 4},
        {"generation": 942, "level": "grid", "count": 8},
    ]
    assert all(e.before["count"] == 0 and e.actor_username == "district-op" for e in added)
    regions_add(
        generation=draft,
        level=Level.GRID,
        regions=[RegionInput("440309001001001", "only one", cells(0, 0, 1, 1))],
        replace=True,
    )
    replaced = entries("gridmap.regions_add", draft)[-1]
    assert replaced.before == {"generation": 942, "level": "grid", "count": 8}
    assert replaced.after == {"generation": 942, "level": "grid", "count": 1}
    assert replaced.actor_id is None  # the import command acts as the system


def test_a_corrected_outline_is_audited_with_the_stored_before_state():
    user = operator()
    draft = store(943)
    region = Region.objects.get(generation=draft, code="440309001001001")
    region.name = "renamed in the form"  # the admin form edits the instance before saving

    region_update_boundary(region=region, geom=shapely.box(114.0, 22.7, 114.0005, 22.701), by=user)

    (entry,) = entries("gridmap.region_update_boundary", region)
    assert entry.object_type == "gridmap.region" and entry.actor_id == user.pk
    assert entry.before["name"] == "grid-440309001001001"
    assert entry.after["name"] == "renamed in the form"
    assert entry.before["vertex_count"] == entry.after["vertex_count"] == 5
    assert entry.after["area_m2"] == pytest.approx(entry.before["area_m2"] / 2, rel=1e-3)
    assert entry.before["extent"] == [114.0, 22.7, 114.001, 22.701]
    assert entry.after["extent"] == [114.0, 22.7, 114.0005, 22.701]


def test_after_commit_the_activation_reaches_the_district_group(django_capture_on_commit_callbacks):
    draft = store(944)

    def activate() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            generation_activate(generation=draft)

    # Subscribe, activate and receive on one event loop (the Redis pub/sub layer is per loop).
    _, message = with_subscriber("district:440309", activate)
    assert message is not None, "the activation event never reached the district group"

    (event,) = activation_events()[-1:]
    assert message["id"] == event.pk and message["event_type"] == "gridmap.generation_activated"
    assert message["payload"]["number"] == 944
    assert message["seqs"] == dict(event.scopes.values_list("scope", "seq"))
    event.refresh_from_db()
    assert event.published_at is not None
