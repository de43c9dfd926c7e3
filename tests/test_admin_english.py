"""The admin in English: every label the project's own models and admin screens give it reads in
English (source strings are Chinese; locale/en/LC_MESSAGES/django.po translates them)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib import admin
from django.db import models
from django.utils import translation

CJK = re.compile(r"[\u4e00-\u9fff]")

# Translations that keep the Chinese word on purpose, beside the English one.
BILINGUAL_ON_PURPOSE = {"Validate (校验)", "Activate (启用)"}


def _project_apps() -> list:
    """The apps of this repository (top-level packages beside manage.py): not Django's own, not
    third-party packages, wherever the virtualenv lives."""
    base = Path(django_settings.BASE_DIR).resolve()
    found = [config for config in apps.get_app_configs() if Path(config.path).parent == base]
    assert {config.label for config in found} >= {"gridmap", "incidents", "audit", "realtime"}
    return found


def _project_models() -> list[type[models.Model]]:
    return [model for config in _project_apps() for model in config.get_models()]


def _model_labels() -> Iterator[tuple[str, object]]:
    """(where, text) for everything of a model the admin may print."""
    for model in _project_models():
        meta = model._meta
        yield f"{meta.label} verbose_name", meta.verbose_name
        yield f"{meta.label} verbose_name_plural", meta.verbose_name_plural
        for field in meta.get_fields():
            if field.auto_created and not field.concrete:
                continue  # reverse relations: the admin names them after the other model
            where = f"{meta.label}.{field.name}"
            yield f"{where} verbose_name", field.verbose_name
            yield f"{where} help_text", field.help_text
            for value, label in field.flatchoices or ():
                yield f"{where} choice {value!r}", label
            for validator in field.validators:
                yield f"{where} validator", getattr(validator, "message", "")


def _admin_labels() -> Iterator[tuple[str, object]]:
    """(where, text) for the titles the project's admin classes set: columns and read-only fields
    they compute, fieldset names, actions, list filters."""
    for model in _project_models():
        if not admin.site.is_registered(model):
            continue
        model_admin = admin.site.get_model_admin(model)
        screens = [model_admin] + [inline(model, admin.site) for inline in model_admin.inlines]
        for screen in screens:
            where = type(screen).__name__
            names = [*getattr(screen, "list_display", ()), *screen.readonly_fields]
            for name in names:
                method = getattr(screen, name, None) if isinstance(name, str) else name
                if callable(method) and hasattr(method, "short_description"):
                    yield f"{where}.{getattr(method, '__name__', name)}", method.short_description
            for title, _options in screen.fieldsets or ():
                yield f"{where} fieldset", title or ""
            for action in getattr(screen, "actions", None) or ():
                _function, name, description = screen.get_action(action)
                yield f"{where} action {name}", description
            for list_filter in getattr(screen, "list_filter", ()):
                if isinstance(list_filter, type) and issubclass(list_filter, admin.ListFilter):
                    yield f"{where} filter {list_filter.__name__}", list_filter.title


def _chinese(labels: Iterator[tuple[str, object]]) -> list[str]:
    with translation.override("en"):
        shown = [(where, str(text)) for where, text in labels]
    return [
        f"{where}: {text}"
        for where, text in shown
        if CJK.search(text) and text not in BILINGUAL_ON_PURPOSE
    ]


def test_project_models_read_in_english():
    assert _chinese(_model_labels()) == []


def test_project_admin_screens_read_in_english():
    assert _chinese(_admin_labels()) == []


def test_project_app_names_and_the_site_read_in_english():
    names = [(config.label, config.verbose_name) for config in _project_apps()]
    site = [("site_header", admin.site.site_header), ("index_title", admin.site.index_title)]
    assert _chinese(iter([*names, *site])) == []


def _chinese_lines(html: str) -> list[str]:
    return [line.strip() for line in html.splitlines() if CJK.search(line)]


@pytest.mark.django_db
def test_admin_index_and_case_list_read_in_english(admin_client):
    response = admin_client.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    assert response.status_code == 302

    index = admin_client.get("/admin/").content.decode()
    assert '<html lang="en"' in index
    assert "<title>Administration | CityOps</title>" in index
    # The site's icon (templates/admin/base_site.html): no request for a missing /favicon.ico.
    assert re.search(r'<link rel="icon" href="/static/command/favicon[.\w]*\.svg"', index)
    models_listed = re.findall(r'<th scope="row"[^>]*>\s*<a [^>]*>([^<]+)</a>', index)
    # The index lists models by their plural names (Django capitalises the first letter).
    assert {"Cases", "Audit entries", "Holidays and make-up workdays", "API keys"} <= set(
        models_listed
    )
    assert _chinese_lines(index) == []

    cases = admin_client.get("/admin/incidents/incident/").content.decode()
    assert "<title>Select case to view | CityOps</title>" in cases
    assert re.search(r"<summary>\s*By owner level\s*</summary>", cases)
    # Field names in the filters' sentences read in lower case, as Django's own ("By status").
    summaries = re.findall(r"<summary>\s*By ([^<]+?)\s*</summary>", cases)
    assert {"status", "channel", "street", "severity"} <= set(summaries)
    assert _chinese_lines(cases) == []


def test_model_names_have_an_english_plural_and_stay_one_word_in_chinese():
    from incidents.models import Category, Incident

    with translation.override("en"):
        assert (str(Incident._meta.verbose_name), str(Incident._meta.verbose_name_plural)) == (
            "case",
            "cases",
        )
        assert str(Category._meta.verbose_name_plural) == "categories"
    with translation.override("zh-hans"):
        assert str(Incident._meta.verbose_name) == str(Incident._meta.verbose_name_plural) == "案件"
    with translation.override("en"):
        plurals = {str(model._meta.verbose_name_plural) for model in _project_models()}
        singulars = {str(model._meta.verbose_name) for model in _project_models()}
    assert not plurals & singulars, "a model without an English plural"


def test_statuses_that_share_a_word_with_an_action_read_as_states():
    from incidents.models import IncidentStatus

    with translation.override("en"):
        assert str(IncidentStatus.REJECTED.label) == "Rejected"
        assert str(IncidentStatus.PARKED.label) == "Parked"
        assert translation.gettext("不予立案") == "Reject"  # the action's button
    with translation.override("zh-hans"):
        assert str(IncidentStatus.REJECTED.label) == "不予立案"
