"""The category catalogue: GB/T 47678.5 events and components, the local emergency class, the
default departments and stage limits, and reloads that keep what the admin edited."""

from __future__ import annotations

import csv
import re
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import translation

from accounts.departments import read_departments
from incidents.catalogue import DATA_DIR, NAMES_EN_FILE
from incidents.models import (
    STAGE_ORDER,
    Category,
    CategoryKind,
    LimitBasis,
    Severity,
    Stage,
    StageLimit,
    TimeUnit,
)
from incidents.services import categories_load, category_save, stage_limit_save

pytestmark = pytest.mark.django_db

EMERGENCY_NAMES = {
    "火灾",
    "内涝积水",
    "山体滑坡、边坡垮塌",
    "燃气泄漏",
    "交通事故",
    "人员聚集、群体性事件",
    "台风灾损（倒伏树木等）",
    "房屋倒塌、结构险情",
    "停电",
    "危险化学品泄漏",
}


def _counts() -> dict[str, int]:
    return {kind: Category.objects.filter(kind=kind).count() for kind in CategoryKind.values} | {
        "limits": StageLimit.objects.count()
    }


def test_loads_97_events_153_components_and_the_local_emergencies(catalogue):
    assert _counts() == {"event": 97, "component": 153, "emergency": 10, "limits": 260 * 5}
    assert catalogue.categories.created == 260
    assert catalogue.limits.created == 1300


def test_loading_twice_changes_nothing(catalogue):
    before = _counts()
    snapshot = list(StageLimit.objects.order_by("id").values())
    again = categories_load()
    assert _counts() == before
    assert list(StageLimit.objects.order_by("id").values()) == snapshot
    assert (again.categories.created, again.categories.updated) == (0, 0)
    assert (again.limits.created, again.limits.updated) == (0, 0)
    assert again.categories.unchanged == 260
    assert again.limits.unchanged == 1300


def test_the_command_can_be_rerun():
    out = StringIO()
    call_command("incidents_load_categories", stdout=out)
    call_command("incidents_load_categories", stdout=out)
    assert Category.objects.count() == 260
    assert "0 created, 0 updated, 260 unchanged" in out.getvalue()


def test_a_component_becomes_the_matter_of_its_abnormality(catalogue):
    cover = Category.objects.get(code="01001")
    assert cover.name == "供水井盖异常"
    assert cover.component_name == "供水井盖"
    assert cover.kind == CategoryKind.COMPONENT
    assert (cover.major_code, cover.major_name) == ("01", "市政公用设施")
    assert "GB/T 47678.5-2026" in cover.source


def test_an_event_keeps_its_code_class_and_source(catalogue):
    rubbish = Category.objects.get(code="06010")
    assert (rubbish.name, rubbish.kind) == ("暴露垃圾", CategoryKind.EVENT)
    assert (rubbish.major_code, rubbish.major_name) == ("06", "市容环境类")
    assert not rubbish.is_local
    assert rubbish.default_severity == ""


def test_emergencies_are_a_local_class_with_a_default_severity(catalogue):
    emergencies = Category.objects.filter(kind=CategoryKind.EMERGENCY)
    assert set(emergencies.values_list("name", flat=True)) == EMERGENCY_NAMES
    for category in emergencies:
        assert category.is_local
        assert category.code.startswith("90") and len(category.code) == 5
        assert category.major_name == "突发事件"
        assert category.default_severity in Severity.values
        assert "本地扩展" in category.source
    assert Category.objects.get(name="火灾").department_code == "XF"
    assert Category.objects.get(name="燃气泄漏").default_severity == Severity.LARGER
    # No code of the standard is marked local.
    assert not Category.objects.exclude(kind=CategoryKind.EMERGENCY).filter(is_local=True).exists()


def test_emergency_categories_run_on_the_calendar_clock_in_minutes(catalogue):
    fire = Category.objects.prefetch_related("limits").get(name="火灾")
    assert fire.limit_for(Stage.REGISTER).unit == TimeUnit.CALENDAR_MINUTES
    assert fire.limit_for(Stage.ACCEPT).amount <= 10
    assert not any(limit.is_working_time for limit in fire.limits.all())


def test_an_emergency_category_needs_a_severity(catalogue):
    with pytest.raises(IntegrityError), transaction.atomic():
        Category.objects.create(
            code="90099",
            name="无级别",
            kind=CategoryKind.EMERGENCY,
            major_code="90",
            major_name="突发事件",
            department_code="YJGLJ",
        )


def test_every_category_has_a_known_department_code_marked_inferred(catalogue):
    known = set(read_departments())
    for category in Category.objects.all():
        assert category.department_code in known, category
        assert category.department_inferred
        assert category.department_text
    # The CSV text is kept beside the code.
    building = Category.objects.get(code="08004")
    assert building.department_code == "ZJJ"
    assert building.department_text.startswith("龙华区住房和建设局")
    assert Category.objects.get(code="09009").department_code == "JJ"  # 公安交警, not 公安
    assert Category.objects.get(code="06001").department_code == "CGJ"
    assert Category.objects.get(code="01005").department_code == "GDJ"  # 电力井盖
    assert Category.objects.get(code="01023").department_code == "JD"  # 不明井盖 → 属地


def test_every_category_has_one_limit_per_stage_each_marked(catalogue):
    for category in Category.objects.prefetch_related("limits"):
        stages = [limit.stage for limit in category.limits.all()]
        assert sorted(stages) == sorted(STAGE_ORDER), category
        for limit in category.limits.all():
            assert limit.amount >= 1
            assert limit.basis in LimitBasis.values
            assert limit.note or limit.source_text


def test_only_the_six_cited_limits_are_sourced_and_they_quote_their_source(catalogue):
    sourced = StageLimit.objects.filter(basis=LimitBasis.SOURCED).select_related("category")
    assert sorted(limit.category.code for limit in sourced) == [
        "06001",
        "06010",
        "06011",
        "06012",
        "06017",
        "06025",
    ]
    for limit in sourced:
        assert limit.stage == Stage.HANDLE
        assert "出处" in limit.source_text
    rubbish = StageLimit.objects.get(category__code="06010", stage=Stage.HANDLE)
    assert (rubbish.amount, rubbish.unit) == (4, TimeUnit.WORKING_HOURS)
    assert "济源" in rubbish.source_text
    illegal_building = StageLimit.objects.get(category__code="06001", stage=Stage.HANDLE)
    assert (illegal_building.amount, illegal_building.unit) == (15, TimeUnit.WORKING_DAYS)


def test_a_missing_manhole_cover_is_handled_on_the_calendar_clock(catalogue):
    cover = Category.objects.prefetch_related("limits").get(code="01002")
    assert cover.limit_for(Stage.HANDLE).unit == TimeUnit.CALENDAR_HOURS
    assert cover.limit_for(Stage.REGISTER).unit == TimeUnit.CALENDAR_MINUTES
    lamp = Category.objects.prefetch_related("limits").get(code="01037")
    assert lamp.limit_for(Stage.HANDLE).unit == TimeUnit.WORKING_DAYS


def test_an_edited_limit_survives_a_reload_and_reset_restores_it(catalogue, admin_user):
    limit = StageLimit.objects.get(category__code="06010", stage=Stage.HANDLE)
    limit.amount, limit.unit, limit.basis = 1, TimeUnit.WORKING_DAYS, LimitBasis.LOCAL
    stage_limit_save(limit=limit, by=admin_user, changed=["amount", "unit", "basis"])

    report = categories_load()
    limit.refresh_from_db()
    assert (limit.amount, limit.unit, limit.basis) == (1, TimeUnit.WORKING_DAYS, "local")
    assert limit.edited_at is not None and limit.edited_by == admin_user
    assert report.limits.kept_edited == 1
    assert report.limits.unchanged == 1299

    call_command("incidents_load_categories", "--reset", verbosity=0)
    limit.refresh_from_db()
    assert (limit.amount, limit.unit, limit.basis) == (4, TimeUnit.WORKING_HOURS, "sourced")
    assert limit.edited_at is None and limit.edited_by is None


def test_an_edited_department_survives_a_reload(catalogue, admin_user):
    category = Category.objects.get(code="06027")
    category.department_code, category.department_inferred = "CGJ", False
    category_save(category=category, by=admin_user, changed=["department_code"])
    categories_load()
    category.refresh_from_db()
    assert (category.department_code, category.department_inferred) == ("CGJ", False)
    categories_load(reset=True)
    category.refresh_from_db()
    assert (category.department_code, category.department_inferred) == ("STHJ", True)


def test_saving_without_changes_does_not_mark_as_edited(catalogue):
    limit = StageLimit.objects.get(category__code="06010", stage=Stage.REGISTER)
    stage_limit_save(limit=limit, changed=[])
    limit.refresh_from_db()
    assert limit.edited_at is None


def test_a_sourced_limit_must_quote_its_source(catalogue):
    from django.core.exceptions import ValidationError

    limit = StageLimit.objects.get(category__code="06002", stage=Stage.HANDLE)
    limit.basis = LimitBasis.SOURCED
    with pytest.raises(ValidationError):
        stage_limit_save(limit=limit, changed=["basis"])


def test_a_category_gone_from_the_data_is_deactivated_not_deleted(catalogue, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    events = data / "event_categories.csv"
    with events.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    with events.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(row for row in rows if row[0] != "10002")

    report = categories_load(data_dir=data)
    assert report.categories.removed == 1
    assert not Category.objects.get(code="10002").active
    assert Category.objects.count() == 260
    categories_load()
    assert Category.objects.get(code="10002").active


def test_bad_catalogue_data_is_refused_with_the_reason(tmp_path: Path):
    from django.core.management.base import CommandError

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    emergencies = data / "emergency_categories.csv"
    emergencies.write_text(
        emergencies.read_text(encoding="utf-8").replace("90001,火灾,IV,XF", "90001,火灾,V,XF"),
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="90001 has severity 'V'"):
        call_command("incidents_load_categories", "--data-dir", str(data), verbosity=0)
    assert not Category.objects.exists()


# --- English names (category_names_en.csv, ADR 0016) --------------------------------------------

CHINESE = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def test_every_category_and_class_is_stored_with_its_english_name(catalogue):
    for category in Category.objects.all():
        assert category.name_en and category.major_name_en, category
        assert not CHINESE.search(category.name_en + category.major_name_en), category
        if category.kind == CategoryKind.COMPONENT:
            # "<部件名>异常" is "<component> problem".
            assert category.name_en == f"{category.component_name_en} problem", category
        else:
            assert category.component_name_en == "", category
    rubbish = Category.objects.get(code="06010")
    assert (rubbish.name_en, rubbish.major_name_en) == (
        "Exposed garbage",
        "City appearance and environment",
    )
    cover = Category.objects.get(code="01001")
    assert (cover.name_en, cover.component_name_en, cover.major_name_en) == (
        "Water supply manhole cover problem",
        "Water supply manhole cover",
        "Municipal utilities",
    )
    fire = Category.objects.get(code="90001")
    assert (fire.name_en, fire.major_name_en) == ("Fire", "Emergencies")


def test_a_category_is_named_in_the_readers_language(catalogue):
    rubbish = Category.objects.get(code="06010")
    with translation.override("en"):
        assert (rubbish.label, rubbish.major_label) == (
            "Exposed garbage",
            "City appearance and environment",
        )
        # An English search still finds it by its Chinese names.
        assert rubbish.search_aliases == "暴露垃圾 市容环境类"
        assert Category.objects.get(code="01001").component_label == "Water supply manhole cover"
    with translation.override("zh-hans"):
        assert (rubbish.label, rubbish.major_label) == ("暴露垃圾", "市容环境类")
        assert rubbish.search_aliases == ""
    assert rubbish.label == "暴露垃圾"  # outside a request: LANGUAGE_CODE


def test_a_category_without_an_english_name_reads_in_chinese():
    category = Category(code="06010", name="暴露垃圾", major_name="市容环境类")
    with translation.override("en"):
        assert (category.label, category.major_label) == ("暴露垃圾", "市容环境类")
        assert category.search_aliases == ""


def test_a_reload_stores_the_english_names_of_rows_loaded_without_them(catalogue, admin_user):
    # Rows as the migration that added the English names left them (blank), one of them edited
    # in the admin: the names are reference data and follow the file all the same.
    Category.objects.update(name_en="", major_name_en="", component_name_en="")
    edited = Category.objects.get(code="06027")
    edited.department_code = "CGJ"
    category_save(category=edited, by=admin_user, changed=["department_code"])

    report = categories_load()
    assert (report.categories.updated, report.categories.unchanged) == (260, 0)
    assert report.categories.kept_edited == 1  # its department, not its names
    edited.refresh_from_db()
    assert (edited.name_en, edited.department_code) == ("Cooking fume pollution", "CGJ")
    assert not Category.objects.filter(name_en="").exists()

    again = categories_load()
    assert (again.categories.created, again.categories.updated) == (0, 0)
    assert again.categories.unchanged + again.categories.kept_edited == 260


def test_a_category_the_english_file_leaves_out_reads_in_chinese(catalogue, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    names = data / NAMES_EN_FILE
    lines = names.read_text(encoding="utf-8").splitlines(keepends=True)
    names.write_text("".join(line for line in lines if not line.startswith("06010,")), "utf-8")

    categories_load(data_dir=data)
    rubbish = Category.objects.get(code="06010")
    assert rubbish.name_en == "" and rubbish.major_name_en == "City appearance and environment"
    with translation.override("en"):
        assert rubbish.label == "暴露垃圾"
    assert Category.objects.filter(name_en="").count() == 1


def test_an_english_name_of_a_renamed_category_is_refused(tmp_path: Path):
    from django.core.management.base import CommandError

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    names = data / NAMES_EN_FILE
    names.write_text(
        names.read_text(encoding="utf-8").replace("06010,暴露垃圾,", "06010,裸露垃圾,"), "utf-8"
    )
    with pytest.raises(CommandError, match="06010 translates '裸露垃圾'"):
        call_command("incidents_load_categories", "--data-dir", str(data), verbosity=0)
    assert not Category.objects.exists()
