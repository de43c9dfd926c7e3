"""台账导出: a console's queue as a CSV file (?export=csv on the console's URL).

Every case of the queue with its filters (not only the page shown), never a case the reader may
not open, phones masked as on the case page, formulas neutralised, an audit entry per export,
and a clear refusal when more cases match than one file may hold.

审计日志导出: the audit page's entries as a CSV file (?export=csv on /command/audit/), each
field whole, what changed in words as the page says it (in either language), and as many queries
for thirty entries as for five.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from accounts.models import Role, User
from accounts.services import sign_in_failed, user_save
from audit.models import AuditEntry
from audit.services import audit_record
from incidents.models import Incident
from incidents.services import incident_dispatch, incident_register
from tests.incidents.cases import (
    COMMUNITY,
    OTHER_STREET_GRID,
    STREET,
    Cast,
    make_cast,
    report,
)
from tests.incidents.conftest import (  # noqa: F401  (fixtures)
    _fresh_calendar_cache,
    catalogue,
    holidays,
    reference_data,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

STREET_URL = f"/command/street/{STREET}/"
COMMUNITY_URL = f"/command/community/{COMMUNITY}/"
DEPARTMENT_URL = "/command/department/"
PHONE = "13812345678"


@pytest.fixture
def people() -> Cast:
    return make_cast()


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _export(user: Any, url: str, query: str = "") -> Any:
    return _client(user).get(f"{url}?{query}{'&' if query else ''}export=csv")


def _table(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads UTF-8 by its byte-order mark
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_a_street_exports_every_case_of_its_queue_and_no_other_street(people: Cast) -> None:
    ours = [report(reporter_phone=PHONE) for _ in range(23)]  # more than a page (20)
    theirs = report(grid=OTHER_STREET_GRID, description="大浪街道的案件")

    response = _export(people.street, STREET_URL)
    rows = _table(response)

    assert {row["案件编号"] for row in rows} == {case.number for case in ours}
    assert theirs.number not in response.content.decode()
    assert "大浪街道的案件" not in response.content.decode()
    assert f"cityops-street-{STREET}-" in response["Content-Disposition"]
    first = rows[0]
    assert first["街道"] == "龙华街道" and first["社区"] == "三联社区"
    assert first["办理状态"] == "已上报（待立案）"
    assert first["上报人电话"] == PHONE  # the street calls reporters back
    assert first["事项代码"] == ours[0].category.code


def test_the_export_keeps_the_queues_filters(people: Cast) -> None:
    plain = report()
    registered = report()
    incident_register(incident=registered, by=people.street)

    rows = _table(_export(people.street, STREET_URL, "status=registered"))
    assert [row["案件编号"] for row in rows] == [registered.number]
    everything = _table(_export(people.street, STREET_URL, "status=all"))
    assert {row["案件编号"] for row in everything} == {plain.number, registered.number}

    # The queue's page links its export with the same filters.
    page = _client(people.street).get(f"{STREET_URL}?status=registered").content.decode()
    assert 'href="?status=registered&amp;export=csv"' in page


def test_a_bad_filter_is_refused_and_nothing_is_exported(people: Cast) -> None:
    report()
    response = _export(people.street, STREET_URL, "status=nonsense")
    assert response.status_code == 400
    assert 'data-error-for="status"' in response.content.decode()
    assert not AuditEntry.objects.filter(action="command.queue_export").exists()


def test_a_department_exports_its_cases_with_the_phones_masked(people: Cast) -> None:
    dispatched = report(reporter_phone=PHONE)
    incident_register(incident=dispatched, by=people.street)
    incident_dispatch(incident=dispatched, by=people.street, department_code="CGJ")
    report()  # not dispatched: no department's yet

    rows = _table(_export(people.handler, DEPARTMENT_URL))
    assert [row["案件编号"] for row in rows] == [dispatched.number]
    assert rows[0]["上报人电话"] == "138****5678"
    assert rows[0]["处置部门"].startswith("CGJ ")
    assert _table(_export(people.other_department, DEPARTMENT_URL)) == []


def test_who_may_not_open_a_console_may_not_export_it(people: Cast) -> None:
    report()
    assert _export(people.other_street, STREET_URL).status_code == 404
    assert _export(people.grid_worker, COMMUNITY_URL).status_code == 404
    assert _export(people.auditor, STREET_URL).status_code == 404
    assert not AuditEntry.objects.filter(action="command.queue_export").exists()


def test_a_formula_in_a_cell_is_written_as_text(people: Cast) -> None:
    report(description='=HYPERLINK("http://example.test","点我")', address="+86 三联路")
    row = _table(_export(people.street, STREET_URL))[0]
    assert row["问题描述"] == '\'=HYPERLINK("http://example.test","点我")'
    assert row["地址"] == "'+86 三联路"


def test_each_export_is_audited(people: Cast) -> None:
    report()
    report()
    _table(_export(people.street, STREET_URL, "order=newest"))

    entry = AuditEntry.objects.get(action="command.queue_export")
    assert entry.actor_id == people.street.pk and entry.actor_role == "street_operator"
    assert entry.object_type == "command.console"
    assert entry.object_id == f"street:{STREET}"
    assert entry.after == {"filters": {"order": "newest"}, "rows": 2}


@override_settings(CITYOPS_EXPORT_MAX_ROWS=2)
def test_more_cases_than_one_file_holds_are_refused(people: Cast) -> None:
    for _ in range(3):
        report()

    response = _export(people.street, STREET_URL)
    assert response.status_code == 400
    message = response.content.decode()
    assert message.startswith("export") and "3" in message and "2" in message
    assert not AuditEntry.objects.filter(action="command.queue_export").exists()
    # The page says so instead of offering the link; narrowed, it offers it again.
    page = _client(people.street).get(STREET_URL).content.decode()
    assert 'data-testid="queue-export-too-many"' in page
    assert 'data-testid="queue-export"' not in page
    one = Incident.objects.order_by("id").first()
    assert one is not None
    narrowed = _client(people.street).get(f"{STREET_URL}?q={one.number}").content.decode()
    assert 'data-testid="queue-export"' in narrowed


def test_the_export_speaks_english_when_the_user_does(people: Cast) -> None:
    report()
    client = _client(people.street)
    client.post("/i18n/setlang/", {"language": "en", "next": STREET_URL})
    rows = _table(client.get(f"{STREET_URL}?export=csv"))
    assert set(rows[0]) >= {"Case number", "Status", "Street", "Reporter's phone", "Overdue"}
    assert [name for name in rows[0] if re.search(r"[\u4e00-\u9fff]", name)] == []
    assert rows[0]["Status"] == "Reported (to register)"


# --- 审计日志导出 --------------------------------------------------------------------------------

AUDIT_URL = "/command/audit/"


def test_an_auditor_exports_the_entries_the_audit_page_filters(people: Cast) -> None:
    case = report()
    incident_register(incident=case, by=people.street, ip="192.0.2.10")
    rows = _table(_export(people.auditor, AUDIT_URL, f"object={case.number}"))
    entries = AuditEntry.objects.filter(object_type="incidents.incident", object_id=str(case.pk))
    assert [int(row["序号"]) for row in rows] == sorted(
        entries.values_list("sequence", flat=True), reverse=True
    )
    registered = rows[0]
    entry = entries.get(action="incidents.incident_register")
    assert registered["操作人"] == people.street.username
    assert registered["角色"] == "街道分中心操作员"
    assert (registered["操作"], registered["操作标识"]) == ("立案", "incidents.incident_register")
    assert registered["对象"] == f"案件 {case.number} #{case.pk}"
    assert registered["IP 地址"] == "192.0.2.10"
    assert json.loads(registered["变更后"]) == entry.after
    assert (registered["哈希"], registered["前一条哈希"]) == (entry.hash, entry.prev_hash)
    # The export is itself in the trail, with the filters and the count.
    export = AuditEntry.objects.get(action="command.audit_export")
    assert export.actor == people.auditor
    assert export.after == {"filters": {"object": case.number}, "rows": len(rows)}
    # The page offers it.
    page = _client(people.auditor).get(AUDIT_URL).content.decode()
    assert 'data-testid="audit-export"' in page and "export=csv" in page


def test_only_auditors_and_admins_export_the_trail(people: Cast) -> None:
    for user in (people.district, people.street, people.grid_worker, people.handler):
        assert _export(user, AUDIT_URL).status_code == 404
    assert _table(_export(people.admin, AUDIT_URL))
    assert not AuditEntry.objects.filter(
        action="command.audit_export", actor=people.district
    ).exists()


def test_a_bad_filter_exports_nothing(people: Cast) -> None:
    response = _export(people.auditor, AUDIT_URL, "since=2026-13-45")
    assert response.status_code == 400 and "text/html" in response["Content-Type"]
    assert not AuditEntry.objects.filter(action="command.audit_export").exists()


@override_settings(CITYOPS_EXPORT_MAX_ROWS=2)
def test_more_entries_than_one_file_holds_are_refused(people: Cast) -> None:
    response = _export(people.auditor, AUDIT_URL)
    assert response.status_code == 400
    assert response.content.decode().startswith("export")
    assert not AuditEntry.objects.filter(action="command.audit_export").exists()
    page = _client(people.auditor).get(AUDIT_URL).content.decode()
    assert 'data-testid="audit-export-too-many"' in page


def test_a_value_a_spreadsheet_would_run_is_written_as_text(people: Cast) -> None:
    sign_in_failed(username="=HYPERLINK(1)", ip="192.0.2.8")
    rows = _table(_export(people.auditor, AUDIT_URL, "action=accounts.sign_in_failed"))
    assert rows[0]["对象标识"] == "'=hyperlink(1)"


def _audit_export(user: Any, query: str = "", language: str = "") -> list[dict[str, str]]:
    client = _client(user)
    if language:
        client.post("/i18n/setlang/", {"language": language, "next": AUDIT_URL})
    return _table(client.get(f"{AUDIT_URL}?{query}{'&' if query else ''}export=csv"))


def _dispatched_case(people: Cast) -> tuple[Incident, AuditEntry]:
    case = report()
    incident_register(incident=case, by=people.street)
    incident_dispatch(incident=case, by=people.street, department_code="CGJ")
    entry = AuditEntry.objects.get(action="incidents.incident_dispatch", object_id=str(case.pk))
    return case, entry


def test_the_audit_export_says_what_changed_in_words_as_the_page_does(people: Cast) -> None:
    case, entry = _dispatched_case(people)

    rows = _audit_export(people.auditor, f"object={case.number}")
    dispatched = next(row for row in rows if row["操作标识"] == "incidents.incident_dispatch")

    # One line a key that changed, named and valued in words, not codes.
    lines = dispatched["变更"].split("\n")
    assert "状态：已立案（待派遣） → 已派遣（待签收）" in lines
    assert "处置部门：（空） → 龙华区城市管理和综合执法局" in lines
    assert "当前环节：派遣 → 签收" in lines
    assert not any(line.startswith(("案件编号", "责任单位", "处置人")) for line in lines)
    assert "dispatched" not in dispatched["变更"] and "CGJ" not in dispatched["变更"]
    # The evidence beside it, whole and as stored.
    assert json.loads(dispatched["变更前"]) == entry.before
    assert json.loads(dispatched["变更后"]) == entry.after
    assert (dispatched["哈希"], dispatched["前一条哈希"]) == (entry.hash, entry.prev_hash)
    # A new case's entry has no before: every key it records, from —.
    reported = next(row for row in rows if row["操作标识"] == "incidents.incident_report")
    assert "状态：— → 已上报（待立案）" in reported["变更"].split("\n")


def test_the_audit_exports_words_are_english_when_the_user_reads_english(people: Cast) -> None:
    case, entry = _dispatched_case(people)

    rows = _audit_export(people.auditor, f"object={case.number}", language="en")
    assert list(rows[0])[9:14] == ["IP address", "Changes", "Before", "After", "Hash"]
    assert [name for name in rows[0] if re.search(r"[\u4e00-\u9fff]", name)] == []
    dispatched = next(row for row in rows if row["Action identifier"] == entry.action)
    lines = dispatched["Changes"].split("\n")
    assert "Status: Registered (to dispatch) → Dispatched (to accept)" in lines
    # The department's name is its English one (accounts/data/departments.csv).
    assert (
        "Department: (empty) → "
        "Longhua District Urban Management and Comprehensive Law Enforcement Bureau"
    ) in lines
    assert "Current stage: Dispatch → Accept" in lines
    assert json.loads(dispatched["Before"]) == entry.before


@pytest.fixture
def fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.usefixtures("fast_hasher")
@pytest.mark.parametrize(
    ("language", "column", "changed", "created"),
    [
        ("", "变更", ["密码：已设置 → 已更改", "有效：是 → 否"], "角色：— → 街道分中心操作员"),
        (
            "en",
            "Changes",
            ["Active: Yes → No", "Password: Set → Changed"],
            "Role: — → Street sub-centre operator",
        ),
    ],
)
def test_a_users_change_reads_in_words_in_the_audit_export(
    people: Cast, language: str, column: str, changed: list[str], created: str
) -> None:
    account = User(username="zhao-lei", role=Role.STREET_OPERATOR, place_code=STREET)
    account.set_password("street-Operator-2026")
    user_save(user=account, by=people.admin)
    account.is_active = False
    account.set_password("street-Operator-2027")
    user_save(user=account, by=people.admin)

    rows = _audit_export(
        people.auditor, "object_type=accounts.user&object=zhao-lei", language=language
    )
    # Newest first: the change (active, a yes/no; the password, never its hash), then the
    # account's creation.
    assert sorted(rows[0][column].split("\n")) == changed
    assert created in rows[1][column].split("\n")


def _queries_for_an_export(user: Any, query: str) -> tuple[int, list[dict[str, str]]]:
    """(queries, rows) of one request for the audit trail's export."""
    client = _client(user)
    client.get(AUDIT_URL)  # the session and the user's row are read the same way every time
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{AUDIT_URL}?{query}&export=csv")
    return len(queries.captured_queries), _table(response)


def test_the_audit_export_runs_as_many_queries_for_thirty_entries_as_for_five(
    people: Cast,
) -> None:
    actors = [people.street, people.district, people.admin, None]

    def add(count: int) -> None:
        # Entries about cases (their numbers: one query) by several users, each with codes that
        # have words: a status, a department's name, yes or no.
        for n in range(count):
            case = report()
            with transaction.atomic():
                audit_record(
                    actor=actors[n % len(actors)],
                    action="tests.case_touch",
                    obj_type="incidents.incident",
                    obj_id=case.pk,
                    before={"status": "registered", "department": "", "overdue": False},
                    after={"status": "dispatched", "department": "SWJ", "overdue": True},
                )

    add(5)
    five, rows = _queries_for_an_export(people.auditor, "action=tests.case_touch")
    assert len(rows) == 5
    add(25)
    thirty, rows = _queries_for_an_export(people.auditor, "action=tests.case_touch")
    assert len(rows) == 30

    assert five == thirty
    for row in rows:
        # In the order the entry's JSON keeps its keys: as written on SQLite, by length then
        # name in PostgreSQL's jsonb.
        lines = sorted(row["变更"].split("\n"))
        assert lines == [
            "overdue：否 → 是",
            "处置部门：（空） → 龙华区水务局",
            "状态：已立案（待派遣） → 已派遣（待签收）",
        ]
        assert row["对象"].startswith("案件 LH-")
