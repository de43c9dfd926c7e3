"""The admin of categories, stage limits and the working calendar, driven over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from audit.models import AuditEntry
from incidents import calendar
from incidents.models import CalendarDay, CalendarDayKind, Category, Stage, StageLimit, TimeUnit
from tests.incidents.clock import at

pytestmark = pytest.mark.django_db

CATEGORIES = "/admin/incidents/category/"
CALENDAR = "/admin/incidents/calendarday/"


def _post_data(response: Any) -> dict[str, Any]:
    """The change form as the browser would submit it unchanged (main form and inlines)."""
    data: dict[str, Any] = {}

    def add(form: Any, name: str) -> None:
        value = form[name].value()
        key = form.add_prefix(name)
        if value is True:
            data[key] = "on"
        elif value in (False, None):
            if value is None:
                data[key] = ""
        else:
            data[key] = value

    form = response.context["adminform"].form
    for name in form.fields:
        add(form, name)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[f"{formset.prefix}-{name}"] = formset.management_form[name].value()
        for limit_form in formset.forms:
            for name in limit_form.fields:
                add(limit_form, name)
    return data


def _stage_prefix(response: Any, stage: str) -> str:
    formset = response.context["inline_admin_formsets"][0].formset
    for limit_form in formset.forms:
        if limit_form.instance.stage == stage:
            return limit_form.prefix
    raise AssertionError(f"no {stage} form")


def test_category_list_shows_codes_departments_and_limits(admin_client, catalogue):
    html = admin_client.get(CATEGORIES + "?kind__exact=emergency").content.decode()
    assert "90001" in html and "火灾" in html
    assert "XF" in html
    assert "4 小时（自然时间）" in html
    assert "delete_selected" not in html


def test_a_limit_edited_in_the_admin_survives_reloading_the_catalogue(admin_client, catalogue):
    category = Category.objects.get(code="06036")  # 乱堆杂物
    url = f"{CATEGORIES}{category.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    data = _post_data(page)
    prefix = _stage_prefix(page, Stage.HANDLE)
    data[f"{prefix}-amount"] = "6"
    data[f"{prefix}-unit"] = TimeUnit.WORKING_HOURS
    data[f"{prefix}-note"] = "区城管局2026年考核办法"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context and response.context.get("errors")

    handle = StageLimit.objects.get(category=category, stage=Stage.HANDLE)
    assert (handle.amount, handle.unit) == (6, TimeUnit.WORKING_HOURS)
    assert handle.edited_at is not None
    # Untouched stages and the category itself are not marked as edited.
    register = StageLimit.objects.get(category=category, stage=Stage.REGISTER)
    assert register.edited_at is None
    category.refresh_from_db()
    assert category.edited_at is None

    call_command("incidents_load_categories", verbosity=0)
    handle.refresh_from_db()
    assert (handle.amount, handle.note) == (6, "区城管局2026年考核办法")

    call_command("incidents_load_categories", "--reset", verbosity=0)
    handle.refresh_from_db()
    assert (handle.amount, handle.unit) == (4, TimeUnit.WORKING_HOURS)


def test_the_admin_refuses_a_zero_limit(admin_client, catalogue):
    category = Category.objects.get(code="06036")
    url = f"{CATEGORIES}{category.pk}/change/"
    page = admin_client.get(url)
    data = _post_data(page)
    data[f"{_stage_prefix(page, Stage.ACCEPT)}-amount"] = "0"
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert StageLimit.objects.get(category=category, stage=Stage.ACCEPT).amount == 2


def test_the_admin_edits_the_department_of_a_category(admin_client, catalogue):
    category = Category.objects.get(code="06028")
    url = f"{CATEGORIES}{category.pk}/change/"
    data = _post_data(admin_client.get(url))
    data["department_code"] = "GA"
    assert admin_client.post(url, data).status_code == 302
    category.refresh_from_db()
    assert category.department_code == "GA"
    assert category.edited_at is not None


def test_the_admin_refuses_a_department_code_no_department_answers_to(admin_client, catalogue):
    category = Category.objects.get(code="06028")
    url = f"{CATEGORIES}{category.pk}/change/"
    data = _post_data(admin_client.get(url))
    data["department_code"] = "GAA"
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert "“GAA”不是已知的部门代码。" in response.content.decode()
    category.refresh_from_db()
    assert category.department_code != "GAA" and category.edited_at is None


def test_a_holiday_added_in_the_admin_moves_deadlines_at_once(admin_client, holidays):
    friday = at(2026, 3, 6, 10, 0)
    assert calendar.deadline(friday, 1, TimeUnit.WORKING_DAYS) == at(2026, 3, 9, 18, 0)
    response = admin_client.post(
        CALENDAR + "add/",
        {"date": "2026-03-09", "kind": CalendarDayKind.HOLIDAY, "name": "台风停工", "note": ""},
    )
    assert response.status_code == 302
    day = CalendarDay.objects.get(date="2026-03-09")
    assert not day.from_data and day.edited_at is not None
    assert calendar.deadline(friday, 1, TimeUnit.WORKING_DAYS) == at(2026, 3, 10, 18, 0)

    # A reload of the shipped file keeps the admin's day.
    call_command("incidents_load_calendar", verbosity=0)
    assert CalendarDay.objects.filter(date="2026-03-09").exists()

    admin_client.post(f"{CALENDAR}{day.pk}/delete/", {"post": "yes"})
    assert not CalendarDay.objects.filter(date="2026-03-09").exists()
    assert calendar.deadline(friday, 1, TimeUnit.WORKING_DAYS) == at(2026, 3, 9, 18, 0)


def test_the_admin_refuses_a_make_up_day_on_a_weekday(admin_client, holidays):
    response = admin_client.post(
        CALENDAR + "add/",
        {"date": "2026-03-10", "kind": CalendarDayKind.MAKEUP_WORKDAY, "name": "错误"},
    )
    assert response.status_code == 200
    assert "调休上班日须为周六或周日" in response.content.decode()
    assert not CalendarDay.objects.filter(date="2026-03-10").exists()


def test_provisional_days_are_listed_and_can_be_confirmed(admin_client, holidays):
    html = admin_client.get(CALENDAR + "?provisional__exact=1").content.decode()
    assert "2027-02-05" in html or "2027年2月5日" in html
    provisional = list(
        CalendarDay.objects.filter(provisional=True, date__year=2027).values_list("pk", flat=True)
    )
    response = admin_client.post(
        CALENDAR,
        {"action": "confirm", "_selected_action": provisional[:3]},
        follow=True,
    )
    assert response.status_code == 200
    assert CalendarDay.objects.filter(provisional=True).count() == len(provisional) - 3


# --- the audit of reference-data edits ----------------------------------------------------------


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("sequence"))


def test_category_and_stage_limit_edits_are_audited_with_before_and_after(
    admin_client, admin_user, catalogue
):
    category = Category.objects.get(code="06036")
    url = f"{CATEGORIES}{category.pk}/change/"
    page = admin_client.get(url)
    data = _post_data(page)
    data["department_code"] = "SWJ" if category.department_code != "SWJ" else "CGJ"
    prefix = _stage_prefix(page, Stage.HANDLE)
    handle = StageLimit.objects.get(category=category, stage=Stage.HANDLE)
    data[f"{prefix}-amount"] = str(handle.amount + 2)
    response = admin_client.post(url, data, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302, response.context and response.context.get("errors")

    (saved,) = _entries("incidents.category_save")
    assert (saved.actor, saved.object_id, saved.ip) == (admin_user, str(category.pk), "10.1.2.3")
    assert saved.before == {"code": "06036", "department_code": category.department_code}
    assert saved.after == {"code": "06036", "department_code": data["department_code"]}
    (limit,) = _entries("incidents.stage_limit_save")
    assert limit.object_id == str(handle.pk)
    assert limit.before == {"category": "06036", "stage": "handle", "amount": handle.amount}
    assert limit.after == {
        "category": "06036",
        "stage": "handle",
        "amount": handle.amount + 2,
    }

    # Saved again unchanged: no entry.
    assert admin_client.post(url, _post_data(admin_client.get(url))).status_code == 302
    assert len(_entries("incidents.category_save")) == 1
    assert len(_entries("incidents.stage_limit_save")) == 1


def test_calendar_days_added_confirmed_and_deleted_are_audited(admin_client, admin_user, holidays):
    response = admin_client.post(
        f"{CALENDAR}add/",
        {
            "date": "2027-06-15",
            "kind": CalendarDayKind.HOLIDAY,
            "name": "测试假日",
            "provisional": "on",
        },
    )
    assert response.status_code == 302, response.context and response.context.get("errors")
    day = CalendarDay.objects.get(date="2027-06-15")
    (added,) = _entries("incidents.calendar_day_save")
    assert added.actor == admin_user and added.before is None
    assert added.after["date"] == "2027-06-15" and added.after["provisional"] is True

    confirm = admin_client.post(CALENDAR, {"action": "confirm", "_selected_action": [day.pk]})
    assert confirm.status_code == 302
    confirmed = _entries("incidents.calendar_day_save")[-1]
    assert (confirmed.before, confirmed.after) == (
        {"date": "2027-06-15", "provisional": True},
        {"date": "2027-06-15", "provisional": False},
    )

    admin_client.post(f"{CALENDAR}{day.pk}/delete/", {"post": "yes"})
    assert not CalendarDay.objects.filter(pk=day.pk).exists()
    (deleted,) = _entries("incidents.calendar_day_delete")
    assert (deleted.actor, deleted.object_id, deleted.after) == (admin_user, str(day.pk), None)
    assert deleted.before["date"] == "2027-06-15" and deleted.before["name"] == "测试假日"


def test_a_loader_run_that_changes_something_is_one_entry_and_a_rerun_none(catalogue, holidays):
    # The fixtures' first loads created everything: one entry each, with the counts.
    (first,) = _entries("incidents.categories_load")
    assert first.actor is None and first.after["reset"] is False
    assert first.after["categories"]["created"] == Category.objects.count()
    assert len(_entries("incidents.calendar_load")) == 1
    # A re-run changes nothing and writes nothing.
    call_command("incidents_load_categories", verbosity=0)
    call_command("incidents_load_calendar", verbosity=0)
    assert len(_entries("incidents.categories_load")) == 1
    assert len(_entries("incidents.calendar_load")) == 1
    # An administrator's edit replaced by a reset: the entry names the category.
    category = Category.objects.get(code="06036")
    original = category.department_code
    changed = "SWJ" if original != "SWJ" else "CGJ"
    Category.objects.filter(pk=category.pk).update(department_code=changed)
    call_command("incidents_load_categories", "--reset", verbosity=0)
    entry = _entries("incidents.categories_load")[-1]
    assert entry.after["reset"] is True
    assert entry.after["updated"] == ["06036"]
    assert entry.after["categories"]["updated"] == 1
    assert Category.objects.get(pk=category.pk).department_code == original
