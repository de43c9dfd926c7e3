"""Two first reports of one responder at the same moment (a phone retrying, two tabs): one row,
one "sharing started" audit entry, both answered."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from dispatch.models import ResponderPosition
from dispatch.services import responder_position_report
from tests.incidents.cases import GRID, make_cast, point_in
from tests.threads import require_concurrent_writers, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _geography(request: Any) -> None:
    require_concurrent_writers()
    request.getfixturevalue("committed_demo_geography")


def test_simultaneous_first_reports_store_one_position_and_one_start():
    worker = make_cast().grid_worker
    lon, lat = point_in(GRID)
    run_in_threads(lambda n: responder_position_report(user=worker, lon=lon + n * 1e-5, lat=lat), 4)
    assert ResponderPosition.objects.filter(user=worker).count() == 1
    starts = AuditEntry.objects.filter(object_type="responder", action="responder.sharing_started")
    assert starts.count() == 1
