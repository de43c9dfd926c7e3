"""The auditor's page of the audit trail (/command/audit/, 审计日志): who may open it, the rows
(actor, action and object in words, the case link, the before/after table), the filters and
their refusals, paging, the chain check of the entries shown (passing, and naming an entry
tampered with by raw SQL), English, a flat number of queries, and that every action the code
records has its words.
"""

from __future__ import annotations

import ast
import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role, User
from accounts.services import sign_in_failed, user_save
from audit.models import AuditEntry
from audit.services import audit_record
from command.audit_labels import (
    AUDIT_ACTION_LABELS,
    WORKFLOW_ACTION_PREFIX,
    audit_action_label,
)
from command.views.audit import PAGE_SIZE
from command.views.consoles import workplace_url
from incidents.services import incident_register
from incidents.workflow import SYSTEM_STEPS, TRANSITIONS
from tests.incidents.cases import STREET, Cast, make_cast, report
from tests.incidents.conftest import (  # noqa: F401  (fixtures)
    _fresh_calendar_cache,
    catalogue,
    holidays,
    reference_data,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reference_data")]

URL = "/command/audit/"


@pytest.fixture
def people() -> Cast:
    return make_cast()


def _client(user: Any | None, language: str = "") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language) if language else Client()
    if user is not None:
        client.force_login(user)
    return client


def _page(user: Any, query: str = "", language: str = "") -> str:
    response = _client(user, language).get(URL + query)
    assert response.status_code == 200, response.content.decode()[:2000]
    return response.content.decode()


def _text(page: str) -> str:
    """The page's words without tags, whitespace squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _sequences(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-sequence="(\d+)"', page)]


def record(
    count: int, *, actor: Any = None, action: str = "tests.thing_change"
) -> list[AuditEntry]:
    with transaction.atomic():
        return [
            audit_record(
                actor=actor,
                action=action,
                obj_type="tests.thing",
                obj_id=n,
                before={"n": n},
                after={"n": n + 1},
                ip="10.0.0.7",
            )
            for n in range(count)
        ]


def tamper(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- who may open it ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("auditor", 200),
        ("admin", 200),
        ("district", 404),
        ("street", 404),
        ("community", 404),
        ("grid_worker", 404),
        ("handler", 404),
        ("no_role", 404),
    ],
)
def test_only_auditors_and_admins_may_open_the_audit_trail(people: Cast, who: str, status: int):
    response = _client(getattr(people, who)).get(URL)

    assert response.status_code == status
    if status == 404:
        # The site's page for a page that is not theirs, with the reason in words.
        assert "审计日志只供审计员和系统管理员查看。" in response.content.decode()


def test_a_visitor_is_sent_to_sign_in():
    response = Client().get(URL)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={URL}"


def test_an_auditor_works_on_the_audit_trail_and_the_home_page_says_so(people: Cast):
    assert workplace_url(people.auditor) == URL
    assert workplace_url(people.admin) == "/command/"  # the admin keeps the list of consoles

    home = _client(people.auditor).get("/").content.decode()
    card = re.search(
        r'<a class="([^"]*)" href="/command/audit/" data-testid="role-card-audit"', home
    )
    assert card is not None and "is-mine" in card.group(1)
    assert f'href="{URL}"' in home.split('class="nav"')[1].split("</nav>")[0]

    admin_home = _client(people.admin).get("/").content.decode()
    card = re.search(r'<a class="([^"]*)" href="/command/audit/"', admin_home)
    assert card is not None and "is-mine" not in card.group(1)

    for user in (people.district, people.street, None):
        assert "/command/audit/" not in _client(user).get("/").content.decode()


# --- the rows ----------------------------------------------------------------------------------


def test_entries_are_listed_newest_first_with_actor_action_and_object_in_words(people: Cast):
    case = report()  # reported by the system: no user
    incident_register(incident=case, by=people.street, ip="192.0.2.10")

    page = _page(people.auditor)
    text = _text(page)

    shown = _sequences(page)
    assert shown == sorted(shown, reverse=True)
    assert shown[0] == AuditEntry.objects.order_by("-sequence")[0].sequence
    newest = AuditEntry.objects.filter(action="incidents.incident_register").latest("sequence")
    reported = AuditEntry.objects.filter(action="incidents.incident_report").latest("sequence")
    row = page.split(f'data-sequence="{newest.sequence}"')[1].split("</tr>")[0]
    row_text = _text(row)
    assert people.street.username in row_text and "街道分中心操作员" in row_text
    assert "立案" in row_text and "incidents.<wbr>incident_register" in row
    assert f'href="/command/cases/{case.number}/"' in row
    assert "192.0.2.10" in row_text
    timestamp = timezone.localtime(newest.occurred_at).strftime("%Y-%m-%d %H:%M:%S")
    assert timestamp in row_text  # Asia/Shanghai

    row = _text(page.split(f'data-sequence="{reported.sequence}"')[1].split("</tr>")[0])
    assert "系统" in row and "上报" in row
    assert "本页" in text and "条记录校验通过" in text


def test_a_user_is_named_by_the_username_the_entry_recorded(people: Cast):
    account = User(
        username="zhao-lei", role=Role.GRID_WORKER, place_code=people.grid_worker.place_code
    )
    account.set_unusable_password()
    user_save(user=account, by=people.admin)
    sign_in_failed(username="no-such-user", ip="192.0.2.7")

    page = _page(people.auditor)
    created = AuditEntry.objects.get(action="accounts.user_create", object_id=str(account.pk))
    row = _text(page.split(f'data-sequence="{created.sequence}"')[1].split("</tr>")[0])
    assert f"用户 zhao-lei #{account.pk}" in row
    failed = AuditEntry.objects.get(action="accounts.sign_in_failed", object_id="no-such-user")
    row = _text(page.split(f'data-sequence="{failed.sequence}"')[1].split("</tr>")[0])
    assert "用户 no-such-user" in row and "#no-such-user" not in row


def test_each_row_opens_to_a_table_of_before_and_after(people: Cast):
    case = report()
    incident_register(incident=case, by=people.street)
    entry = AuditEntry.objects.filter(action="incidents.incident_register").latest("sequence")

    page = _page(people.auditor)
    row = page.split(f'data-sequence="{entry.sequence}"')[1].split("</tr>\n      \n")[0]

    assert "<details" in row
    # A key in words with the key as stored under it; a code in words with the code under it.
    status = _diff_row(row, "status")
    assert status["label"] == "状态" and status["changed"]
    assert status["values"] == [
        ("已上报（待立案）", "reported"),
        ("已立案（待派遣）", "registered"),
    ]
    # An unchanged value is a row too, not marked; a list is compact JSON; an empty text is
    # （空） over "" (JSON null is （空） alone).
    owner = _diff_row(row, "owner")
    assert owner["label"] == "责任单位" and not owner["changed"]
    assert owner["values"] == [("社区工作站 440309001001", '["community", "440309001001"]')] * 2
    department = _diff_row(row, "department")
    assert department["values"] == [("（空）", '""')] * 2
    assert _diff_row(row, "assignee")["values"] == [("", "null")] * 2
    # The summary names what changed, in words.
    summary = re.search(r"<summary>(.*?)</summary>", row, re.S)
    assert summary is not None and "状态" in summary.group(1) and "项变更" in summary.group(1)


def _diff_row(row: str, key: str) -> dict[str, Any]:
    """The before/after table's row of `key`: its label, whether it is marked changed, and each
    side as (words, value as stored)."""
    match = re.search(
        rf'<tr( class="is-changed")?>\s*<th scope="row">([^<]*)<code class="audit-key">{key}</code>'
        r"</th>(.*?)</tr>",
        row,
        re.S,
    )
    assert match is not None, key
    sides = re.findall(r"<td>(.*?)</td>", match.group(3), re.S)
    values = []
    for side in sides:
        words = re.search(r'<span class="audit-words">(.*?)</span>', side)
        value = re.search(r'<code class="audit-value[^"]*">(.*?)</code>', side)
        empty = "audit-empty" in side
        values.append(
            (
                words.group(1) if words else "",
                html.unescape(value.group(1)) if value else ("null" if empty else "—"),
            )
        )
    return {"label": match.group(2), "changed": bool(match.group(1)), "values": values}


def test_a_users_entry_reads_in_words_in_either_language(people: Cast):
    user = User(username="zhao-lei", role=Role.STREET_OPERATOR, place_code=STREET)
    user.set_unusable_password()
    user_save(user=user, by=people.admin)
    entry = AuditEntry.objects.filter(action="accounts.user_create").latest("sequence")

    row = _page(people.auditor).split(f'data-sequence="{entry.sequence}"')[1].split("</details>")[0]
    assert _diff_row(row, "role")["values"] == [("", "—"), ("街道分中心操作员", "street_operator")]
    assert _diff_row(row, "is_active")["values"] == [("", "—"), ("是", "true")]
    assert _diff_row(row, "password")["values"] == [("", "—"), ("未设置（不能登录）", "none")]
    assert _diff_row(row, "place_code")["label"] == "所属区域代码"

    english = _page(people.auditor, language="en")
    row = english.split(f'data-sequence="{entry.sequence}"')[1].split("</details>")[0]
    role = _diff_row(row, "role")
    assert role["label"] == "Role" and role["values"][1] == (
        "Street sub-centre operator",
        "street_operator",
    )
    assert _diff_row(row, "is_active")["values"][1] == ("Yes", "true")
    assert _diff_row(row, "password")["values"][1] == ("Not set (cannot sign in)", "none")


def test_an_action_or_object_the_tables_do_not_know_is_shown_as_it_is(people: Cast):
    (entry,) = record(1, actor=people.admin, action="tests.thing_change")

    page = _page(people.auditor)
    row = _text(page.split(f'data-sequence="{entry.sequence}"')[1].split("</tr>")[0])

    assert "tests.thing_change" in row and "tests.thing" in row
    assert audit_action_label("tests.thing_change") == "tests.thing_change"


def test_a_case_entry_whose_id_is_not_a_number_is_shown_as_it_is(people: Cast):
    # Not written by the services; the page must still show it, not fail, when the data is odd.
    with transaction.atomic():
        entry = audit_record(
            actor=None,
            action="incidents.incident_register",
            obj_type="incidents.incident",
            obj_id="LH-x",
            before=None,
            after=None,
        )
    row = _text(
        _page(people.auditor).split(f'data-sequence="{entry.sequence}"')[1].split("</tr>")[0]
    )
    assert "案件 LH-x" in row


def test_a_long_value_is_cut_on_the_page_and_says_how_long_it_is(people: Cast):
    with transaction.atomic():
        entry = audit_record(
            actor=None,
            action="tests.thing_change",
            obj_type="tests.thing",
            obj_id=1,
            before=None,
            after={"rows": ["x" * 50] * 200},
        )

    page = _page(people.auditor)
    row = _text(page.split(f'data-sequence="{entry.sequence}"')[1].split("</tr>\n      \n")[0])

    assert "此处只显示前 2000 个" in row
    assert "x" * 50 in row


# --- filters -----------------------------------------------------------------------------------


def test_filters_by_user_action_case_number_object_and_days(people: Cast):
    mine = report()
    other = report(description="另一处垃圾")
    incident_register(incident=mine, by=people.street)
    incident_register(incident=other, by=people.district)
    record(2, actor=people.admin)

    by_street = _sequences(_page(people.auditor, f"?actor={people.street.username.upper()}"))
    assert by_street and all(
        AuditEntry.objects.get(sequence=s).actor_username == people.street.username
        for s in by_street
    )

    registered = _sequences(_page(people.auditor, "?action=incidents.incident_register"))
    assert len(registered) == 2

    case_page = _page(people.auditor, f"?object={mine.number.lower()}")
    rows = _sequences(case_page)
    assert {AuditEntry.objects.get(sequence=s).object_id for s in rows} == {str(mine.pk)}
    assert len(rows) == 2  # reported, registered
    assert f'value="{mine.number}"' in case_page

    things = _sequences(_page(people.auditor, "?object_type=tests.thing&object=1"))
    assert len(things) == 1

    # A user by username (any case), and a username no account has: its failed sign-ins.
    user = User(username="zhao-lei", role=Role.STREET_OPERATOR, place_code=STREET)
    user.set_unusable_password()
    user_save(user=user, by=people.admin)
    sign_in_failed(username="zhao-lei", ip="10.0.0.9")
    sign_in_failed(username="nobody-here", ip="10.0.0.9")
    about_user = _sequences(_page(people.auditor, "?object_type=accounts.user&object=ZHAO-LEI"))
    assert {AuditEntry.objects.get(sequence=s).action for s in about_user} == {
        "accounts.user_create",
        "accounts.sign_in_failed",
    }
    nobody = _sequences(_page(people.auditor, "?object_type=accounts.user&object=nobody-here"))
    assert [AuditEntry.objects.get(sequence=s).action for s in nobody] == [
        "accounts.sign_in_failed"
    ]

    today = timezone.localdate()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert len(_sequences(_page(people.auditor, f"?since={today}&action=tests.thing_change"))) == 2
    assert _sequences(_page(people.auditor, f"?since={tomorrow}")) == []
    assert "没有符合条件的审计记录。" in _page(people.auditor, f"?since={tomorrow}")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?since=2026-13-01", "时间从：日期格式为 年-月-日，例如 2026-11-24"),
        ("?since=2026-11-02&until=2026-11-01", "时间至：结束日期早于开始日期"),
        ("?until=0001-01-01", "时间至：日期须在"),
        ("?action=DROP%20TABLE", "操作：未知的操作"),
        ("?object_type=%3Cscript%3E", "对象类型：未知的对象类型"),
        ("?object=LH-20990101-000001", "对象：没有编号为 LH-20990101-000001 的案件"),
        ("?actor=" + "a" * 151, "操作人：用户名最长 150 个字符"),
        ("?object=" + "9" * 101, "对象：对象标识最长 100 个字符"),
    ],
)
def test_a_bad_filter_is_named_above_the_list_in_words(people: Cast, query: str, words: str):
    response = _client(people.auditor).get(URL + query)

    assert response.status_code == 400
    page = response.content.decode()
    errors = re.search(r'data-testid="audit-filter-errors">(.*?)</div>', page, re.S)
    assert errors is not None and words in html.unescape(errors.group(1))
    assert 'data-testid="audit-chain"' in page  # the list is still there, unfiltered by it


def test_a_bad_page_number_shows_a_page_not_an_error(people: Cast):
    assert _client(people.auditor).get(URL + "?page=abc").status_code == 200
    assert _client(people.auditor).get(URL + "?page=99999").status_code == 200


# --- paging and the chain check ----------------------------------------------------------------


def test_pages_hold_fifty_entries_and_the_second_checks_its_link_to_the_third(people: Cast):
    record(PAGE_SIZE + 10)
    client = _client(people.auditor)

    first = client.get(URL).content.decode()
    second = client.get(URL + "?page=2").content.decode()
    total = AuditEntry.objects.count()

    assert len(_sequences(first)) == PAGE_SIZE
    assert _sequences(second)[0] == _sequences(first)[-1] - 1
    assert 'href="?page=2"' in first and 'rel="prev"' in second
    assert f"共 {total} 条" in _text(first)
    assert f"本页 {PAGE_SIZE} 条记录校验通过。" in _text(first)
    assert "manage.py audit_verify" in _text(first)


def test_a_changed_entry_is_named_by_the_page(people: Cast):
    entries = record(5)
    changed = entries[2]
    tamper(
        "UPDATE audit_auditentry SET after = %s WHERE sequence = %s",
        ['{"n": 1000}', changed.sequence],
    )

    response = _client(people.auditor).get(URL)
    page = response.content.decode()
    chain = _text(page.split('data-testid="audit-chain"')[1].split("</section>")[0])

    assert response.status_code == 200
    assert "本页" in chain and "有 1 条未通过校验" in chain
    assert f"最早的一条是 #{changed.sequence}" in chain
    assert "内容与其哈希不符" in chain
    row = page.split(f'data-sequence="{changed.sequence}"')[0].rsplit("<tr", 1)[1]
    assert "is-broken" in row


def test_a_rewritten_hash_breaks_the_next_entrys_link_also_on_a_filtered_page(people: Cast):
    entries = record(3)
    others = record(3, action="tests.other_change")
    rewritten = entries[-1]  # followed by the first of `others`
    tamper(
        "UPDATE audit_auditentry SET hash = %s WHERE sequence = %s",
        ["f" * 64, rewritten.sequence],
    )

    chain = _text(
        _page(people.auditor).split('data-testid="audit-chain"')[1].split("</section>")[0]
    )
    # The rewritten entry's own hash no longer matches its content; the next one's link fails.
    assert f"最早的一条是 #{rewritten.sequence}" in chain
    assert "有 2 条未通过校验" in chain

    # Only `others` shown: the first of them is checked against its real predecessor, which the
    # page does not show.
    filtered = _page(people.auditor, "?action=tests.other_change")
    chain = _text(filtered.split('data-testid="audit-chain"')[1].split("</section>")[0])
    assert f"最早的一条是 #{others[0].sequence}" in chain
    assert f"与前一条记录 #{rewritten.sequence} 的哈希不衔接" in chain
    assert "已筛选" in chain


def test_an_entry_whose_predecessor_was_deleted_is_named(people: Cast):
    entries = record(3)
    tamper("DELETE FROM audit_auditentry WHERE sequence = %s", [entries[1].sequence])

    chain = _text(
        _page(people.auditor).split('data-testid="audit-chain"')[1].split("</section>")[0]
    )

    assert f"最早的一条是 #{entries[2].sequence}" in chain
    assert f"前一条记录 #{entries[1].sequence} 不存在" in chain


def test_a_filtered_page_of_intact_entries_verifies(people: Cast):
    record(4)
    record(4, action="tests.other_change")
    record(4)

    page = _page(people.auditor, "?action=tests.thing_change")

    assert len(_sequences(page)) == 8
    assert "本页 8 条记录校验通过。" in _text(page)


# --- English -------------------------------------------------------------------------------------


def test_the_page_reads_in_english(people: Cast):
    case = report()
    incident_register(incident=case, by=people.street)

    response = _client(people.auditor, "en").get(URL)
    page = response.content.decode()
    text = _text(page)

    assert response.status_code == 200
    for words in ("Audit trail", "Register", "Street sub-centre operator", "Case", "System"):
        assert words in text, words
    assert "entries on this page verify" in text
    assert not re.search(r"[\u4e00-\u9fff]", text.split("CityOps", 2)[-1].replace("中文", ""))

    bad = _client(people.auditor, "en").get(URL + "?action=DROP%20TABLE")
    assert bad.status_code == 400
    assert "Action: unknown action" in _text(bad.content.decode())


# --- queries -------------------------------------------------------------------------------------


def _queries_for_a_page(user: Any, query: str) -> tuple[int, int]:
    """(queries, rows) of one request for the page."""
    client = _client(user)
    client.get(URL)  # the session and the user's row are read the same way every time
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL + query)
    assert response.status_code == 200
    return len(queries.captured_queries), len(_sequences(response.content.decode()))


def test_the_page_runs_as_many_queries_for_thirty_entries_as_for_five(people: Cast):
    actors = [people.street, people.district, people.community, people.admin, None]

    def add(count: int) -> None:
        for n in range(count):
            case = report()
            with transaction.atomic():
                audit_record(
                    actor=actors[n % len(actors)],
                    action="tests.case_touch",
                    obj_type="incidents.incident",
                    obj_id=case.pk,
                    before=None,
                    after={"n": n},
                )

    # Filtered to these entries, so that the page shows exactly 5, then 30 (every one's
    # predecessor is another entry, not shown: all of them are read, in one query), each about
    # a case (the numbers: one query) by one of several users (select_related).
    add(5)
    five, shown = _queries_for_a_page(people.auditor, "?action=tests.case_touch")
    assert shown == 5
    add(25)
    thirty, shown = _queries_for_a_page(people.auditor, "?action=tests.case_touch")
    assert shown == 30

    assert five == thirty
    # The session, the user, the count, the page of entries with their actors, the predecessors
    # not shown, the case numbers.
    # Unfiltered, a full page of 50 entries about no case: the one entry below the page is read
    # (and no case numbers).
    record(PAGE_SIZE)
    full, shown = _queries_for_a_page(people.auditor, "")
    assert shown == PAGE_SIZE
    assert full == thirty - 1


# --- every action the code records has its words -------------------------------------------------

APPS = ("accounts", "audit", "command", "dispatch", "gridmap", "incidents", "realtime")
# An action as the code spells it: "<app>.<what>".
_ACTION = re.compile(r"[a-z]+\.[a-z0-9_]+")


class _Module:
    """One source file: its module-level string constants, its functions' parameters and the
    calls in each function, to follow an audit_record(action=…) back to the literals that
    reach it within the module (a helper that passes its `action` parameter on)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.constants: dict[str, str] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        self.constants[target.id] = node.value.value
        self.functions: dict[str, ast.FunctionDef] = {
            node.name: node for node in ast.walk(self.tree) if isinstance(node, ast.FunctionDef)
        }
        self.unresolved: list[str] = []

    def enclosing(self, target: ast.AST) -> ast.FunctionDef | None:
        for function in self.functions.values():
            if any(node is target for node in ast.walk(function)):
                return function
        return None

    def values(self, node: ast.expr, scope: ast.FunctionDef | None, depth: int = 0) -> set[str]:
        """The strings `node` may be, following parameters to the calls of their function."""
        if depth > 4:
            self.unresolved.append(f"{self.path}:{node.lineno}: too deep")
            return set()
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return self.values(node.body, scope, depth) | self.values(node.orelse, scope, depth)
        if isinstance(node, ast.JoinedStr):
            parts: set[str] = {""}
            for piece in node.values:
                if isinstance(piece, ast.Constant):
                    options = {str(piece.value)}
                else:
                    assert isinstance(piece, ast.FormattedValue)
                    options = self.values(piece.value, scope, depth)
                parts = {a + b for a in parts for b in options}
            return parts
        if isinstance(node, ast.Name):
            if scope is not None and node.id in _parameters(scope):
                return self.arguments(scope, node.id, depth + 1)
            assigned = _assignments(scope, node.id) if scope is not None else []
            if assigned:
                return set().union(*(self.values(value, scope, depth) for value in assigned))
            if node.id in self.constants:
                return {self.constants[node.id]}
        self.unresolved.append(f"{self.path}:{node.lineno}: {ast.unparse(node)}")
        return set()

    def arguments(self, function: ast.FunctionDef, name: str, depth: int) -> set[str]:
        """What the calls of `function` in this module pass as its parameter `name`."""
        positional = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        found: set[str] = set()
        calls = 0
        for call in ast.walk(self.tree):
            if not isinstance(call, ast.Call) or _called(call) != function.name:
                continue
            calls += 1
            scope = self.enclosing(call)
            argument = next((k.value for k in call.keywords if k.arg == name), None)
            if argument is None and name in positional:
                at = positional.index(name)
                argument = call.args[at] if at < len(call.args) else None
            if argument is not None:
                found |= self.values(argument, scope, depth)
        if not calls:
            self.unresolved.append(f"{self.path}: {function.name}({name}) is never called here")
        return found


def _parameters(function: ast.FunctionDef) -> set[str]:
    args = function.args
    return {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}


def _assignments(function: ast.FunctionDef, name: str) -> list[ast.expr]:
    """The values a local variable `name` of `function` is given (name = value)."""
    return [
        node.value
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    ]


def _called(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _recorded_actions() -> tuple[set[str], list[str]]:
    """Every action an audit_record call in the apps may write, and the calls not followed."""
    base = Path(settings.BASE_DIR)
    actions: set[str] = set()
    unresolved: list[str] = []
    for app in APPS:
        for path in (base / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            module = _Module(path)
            for call in ast.walk(module.tree):
                if not isinstance(call, ast.Call) or _called(call) != "audit_record":
                    continue
                action = next((k.value for k in call.keywords if k.arg == "action"), None)
                if action is None:  # audit_record's arguments are keyword-only
                    unresolved.append(f"{path}:{call.lineno}: action not passed by name")
                    continue
                actions |= module.values(action, module.enclosing(call))
            unresolved += module.unresolved
    return actions, unresolved


def test_every_action_the_code_records_has_its_words():
    """An action recorded by the code but missing from command.audit_labels would show as its
    identifier: the scan follows each audit_record(action=…) to its literals (through helpers
    that pass `action` on, and the workflow's f"incidents.incident_{action}"), and the workflow's
    own steps are added, so the table cannot fall behind the code."""
    recorded, unresolved = _recorded_actions()
    workflow = {f"{WORKFLOW_ACTION_PREFIX}{step}" for step in (*TRANSITIONS, *SYSTEM_STEPS)}

    # Canaries: the scan reaches a plain literal, a module constant, a workflow step through
    # _move's f-string, and the escalation worker's steps.
    assert {
        "gridmap.generation_activate",
        "command.queue_export",
        "incidents.incident_register",
        "incidents.incident_escalate",
        "incidents.incident_report",
    } <= recorded
    assert unresolved == []
    assert all(_ACTION.fullmatch(action) for action in recorded), recorded
    missing = sorted((recorded | workflow) - AUDIT_ACTION_LABELS.keys())
    assert missing == []
    # Every label is words, not the identifier again.
    for action in recorded | workflow:
        assert audit_action_label(action) != action


def test_entries_name_their_objects_and_show_moments_in_local_time(people: Cast):
    _client(people.street)  # a sign-in: the user acted on themselves
    signed_in = AuditEntry.objects.filter(action="accounts.sign_in").latest("sequence")
    with transaction.atomic():
        limit = audit_record(
            actor=people.admin,
            action="incidents.stage_limit_save",
            obj_type="incidents.stagelimit",
            obj_id=4,
            before={"category": "06036", "stage": "handle", "amount": 24},
            after={"category": "06036", "stage": "handle", "amount": 12},
        )
        locked = audit_record(
            actor=None,
            action="accounts.sign_in_locked",
            obj_type="accounts.user",
            obj_id="nobody",
            before=None,
            after={"username": "nobody", "known": False, "until": "2026-11-26T04:11:58.820Z"},
        )
    page = _page(people.auditor)

    def row(entry: AuditEntry) -> str:  # the row with its opened before/after table
        return _text(page.split(f'data-sequence="{entry.sequence}"')[1].split("data-sequence=")[0])

    assert f"用户 {people.street.username} #{people.street.pk}" in row(signed_in)
    assert "环节时限 06036 处置 #4" in row(limit)
    # Stored in UTC, shown as the rows' times are: Asia/Shanghai.
    assert "2026-11-26 12:11:58" in row(locked) and "04:11:58" not in row(locked)


def test_an_empty_result_makes_no_claim_about_the_chain(people: Cast):
    page = _page(people.auditor, "?actor=nobody-at-all")
    assert 'data-testid="audit-empty"' in page and 'data-testid="audit-chain"' not in page
