"""The home and map pages, their language switch and translations (Django test client)."""

from __future__ import annotations

import ast
import gettext
import json
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders

from accounts.models import Role
from gridmap.models import Generation
from tests.incidents.cases import make_user

pytestmark = pytest.mark.django_db

CJK = re.compile(r"[\u4e00-\u9fff]")

BANNER_ZH = (
    "街道/社区/网格边界为算法生成，非官方边界，请用 <code>gridmap_import</code> 导入正式边界"
)


def _config(response):
    match = re.search(
        r'<script id="map-config" type="application/json">(.*?)</script>', response.content.decode()
    )
    assert match, "the map page embeds its settings as JSON"
    return json.loads(match.group(1))


def test_home_explains_cityops_and_shows_the_active_generation(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "演示用合成划分" in html
    assert BANNER_ZH in html
    assert "Synthetic demo partition" in html
    for url in ("/map/", "/api/docs/", "/admin/"):
        assert f'href="{url}"' in html
    counts = {row["level"]: row["count"] for row in response.context["level_counts"]}
    assert counts["district"] == 1
    assert counts["street"] == 6
    assert counts["community"] == 50
    assert counts["grid"] > 1000
    assert response.context["generation"].synthetic is True


def test_the_admin_link_is_offered_only_to_those_it_lets_in(client):
    """Signed in, only staff see 管理后台 (in the header and on the home page): the admin turns
    everyone else away. Signed out, it stays: an admin signs in there."""

    def links(user=None):
        if user is not None:
            client.force_login(user)
        html = client.get("/").content.decode()
        return html.count('href="/admin/"')

    assert links() == 2
    assert links(make_user(Role.ADMIN, is_staff=True)) == 2
    for role, place in ((Role.COMMUNITY_STAFF, "440309001001"), (Role.AUDITOR, "")):
        assert links(make_user(role, place)) == 0


def test_home_without_an_active_generation_says_how_to_get_one(client):
    Generation.objects.update(status="retired")
    html = client.get("/").content.decode()
    assert 'data-testid="no-generation-banner"' in html
    assert "gridmap_import" in html
    assert 'data-testid="synthetic-banner"' not in html


def test_official_boundaries_carry_no_synthetic_banner(client):
    Generation.objects.update(synthetic=False)
    for url in ("/", "/map/"):
        assert 'data-testid="synthetic-banner"' not in client.get(url).content.decode()


def test_map_page_loads_local_leaflet_and_no_tiles_by_default(client, settings):
    settings.CITYOPS_MAP_TILE_URL = ""
    response = client.get("/map/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'src="/static/vendor/leaflet/leaflet.js"' in html
    assert 'href="/static/vendor/leaflet/leaflet.css"' in html
    assert 'src="/static/command/map.js"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "no CDN, no remote assets"
    assert 'data-testid="synthetic-banner"' in html
    config = _config(response)
    assert config == {
        "regionsUrl": "/api/v1/regions/",
        "locateUrl": "/api/v1/locate",
        "regionUrl": "/api/v1/regions/CODE/",
        "tileUrl": "",
        "generation": 1,
        "synthetic": True,
    }


def test_map_page_uses_tiles_only_when_configured(client, settings):
    settings.CITYOPS_MAP_TILE_URL = "https://tiles.example.invalid/{z}/{x}/{y}.png"
    config = _config(client.get("/map/"))
    assert config["tileUrl"] == "https://tiles.example.invalid/{z}/{x}/{y}.png"


def test_map_text_follows_the_language(client):
    zh = client.get("/map/").context["map_strings"]
    en = client.get("/map/", HTTP_ACCEPT_LANGUAGE="en").context["map_strings"]
    assert zh["outsideTitle"] == "不在辖区内"
    assert en["outsideTitle"] == "Outside the jurisdiction"
    assert set(zh) == set(en)


def test_language_switch_sets_english_and_back(client):
    html = client.get("/").content.decode()
    assert 'action="/i18n/setlang/"' in html
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/map/"})
    assert response.status_code == 302
    assert response["Location"] == "/map/"
    html = client.get("/").content.decode()
    assert '<html lang="en">' in html
    assert "Longhua District City Operations Command" in html
    assert BANNER_ZH in html  # the notice is bilingual in every language
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "龙华区城市运行一网统管指挥系统" in client.get("/").content.decode()


def _po_entries(path: Path) -> dict[tuple[str | None, str], str]:
    """(context or None, msgid) → msgstr of every entry of a .po file."""
    entries: dict[tuple[str | None, str], str] = {}

    def join(lines: str) -> str:
        return "".join(json.loads(line) for line in lines.strip().splitlines() if line.strip())

    for block in path.read_text(encoding="utf-8").split("\n\n"):
        context = re.search(r'^msgctxt ((?:".*"\n)+)', block + "\n", re.M)
        msgid = re.search(r'^msgid ((?:".*"\n)+)', block + "\n", re.M)
        msgstr = re.search(r'^msgstr ((?:".*"\n?)+)', block, re.M)
        if not msgid or not msgstr:
            continue
        key = (join(context.group(1)) if context else None, join(msgid.group(1)))
        entries[key] = join(msgstr.group(1))
    entries.pop((None, ""), None)
    return entries


def test_english_catalogue_is_complete_and_compiled():
    folder = Path(django_settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES"
    entries = _po_entries(folder / "django.po")
    assert entries, "locale/en/LC_MESSAGES/django.po has entries"
    untranslated = [msgid for msgid, msgstr in entries.items() if not msgstr]
    assert untranslated == []
    with (folder / "django.mo").open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    stale = [
        (context, msgid)
        for (context, msgid), msgstr in entries.items()
        if (catalogue.pgettext(context, msgid) if context else catalogue.gettext(msgid)) != msgstr
    ]
    assert stale == [], "run `manage.py compilemessages` after editing django.po"


# gettext's functions, and which of their arguments are (context, message id, plural id).
_GETTEXT_CALLS = {
    "_": (None, 0, None),
    "gettext": (None, 0, None),
    "gettext_lazy": (None, 0, None),
    "ngettext": (None, 0, 1),
    "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None),
    "pgettext_lazy": (0, 1, None),
}


def _python_messages() -> set[tuple[str | None, str]]:
    """(context, message id) of every gettext call with literal arguments in the project's own
    Python code (not tests, migrations or the virtualenv)."""
    base = Path(django_settings.BASE_DIR)
    found: set[tuple[str | None, str]] = set()
    for path in base.glob("*/**/*.py"):
        parts = path.relative_to(base).parts
        if parts[0].startswith(".") or parts[0] in {"tests", "node_modules", "var"}:
            continue
        if "migrations" in parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            spec = _GETTEXT_CALLS.get(node.func.id)
            if spec is None:
                continue
            literal = [
                arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
                for arg in node.args
            ]
            context_at, msgid_at, _plural_at = spec
            if len(literal) <= msgid_at or literal[msgid_at] is None:
                continue
            context = literal[context_at] if context_at is not None else None
            found.add((context, literal[msgid_at]))
    return found


# {% translate "…" %} or {% translate '…' context "…" %} in a template.
_TEMPLATE_TRANSLATE = re.compile(
    r"""\{%\s*translate\s+(["'])(.*?)\1(?:\s+context\s+(["'])(.*?)\3)?\s*%\}"""
)


def _template_messages() -> set[tuple[str | None, str]]:
    """(context, message id) of every one-line {% translate %} in the project's templates."""
    base = Path(django_settings.BASE_DIR)
    found: set[tuple[str | None, str]] = set()
    for path in [*base.glob("templates/**/*.html"), *base.glob("*/templates/**/*.html")]:
        for match in _TEMPLATE_TRANSLATE.finditer(path.read_text(encoding="utf-8")):
            found.add((match.group(4), match.group(2)))
    return found


def test_every_message_of_the_code_has_its_english():
    """A Chinese message the code or a template translates (a refusal's reason, a page's label)
    has an entry in the English catalogue, or an English reader would see it in Chinese."""
    entries = _po_entries(Path(django_settings.BASE_DIR) / "locale/en/LC_MESSAGES/django.po")
    plural_ids = set(
        re.findall(
            r'^msgid "(.*)"\nmsgid_plural',
            (Path(django_settings.BASE_DIR) / "locale/en/LC_MESSAGES/django.po").read_text(
                encoding="utf-8"
            ),
            re.M,
        )
    )
    messages = _python_messages() | _template_messages()
    # The scans find a refusal of the services and a page's words (canaries for the scans).
    assert (None, "“%(value)s”不是数字。") in messages
    assert ("noun", "处置反馈") in messages and (None, "回到我的工作页面") in messages
    missing = sorted(
        (context or "", msgid)
        for context, msgid in messages
        if CJK.search(msgid) and (context, msgid) not in entries and msgid not in plural_ids
    )
    assert missing == []


@pytest.mark.parametrize(
    "path",
    [
        "command/site.css",
        "command/map.css",
        "command/map.js",
        "command/favicon.svg",
        "vendor/leaflet/leaflet.js",
        "vendor/leaflet/leaflet.css",
        "vendor/ol/ol.js",
        "vendor/ol/ol.css",
        "gis/js/OLMapWidget.js",
        "gis/css/ol3.css",
        "gridmap/admin.css",
        "gridmap/admin-map.js",
    ],
)
def test_page_assets_are_found_by_the_static_finders(path):
    assert finders.find(path), path


def test_the_report_forms_take_as_long_a_description_as_the_service(client):
    """The phone's and the hotline's description fields stop where the service does (4,000
    characters), not at a shorter limit of their own."""
    from incidents.services import DESCRIPTION_MAX

    client.force_login(make_user(Role.GRID_WORKER, "440309001001001"))
    phone = client.get("/m/").content.decode()
    client.force_login(make_user(Role.STREET_OPERATOR, "440309001"))
    intake = client.get("/command/intake/").content.decode()
    for html in (phone, intake):
        assert 'name="description"' in html
        assert f'maxlength="{DESCRIPTION_MAX}"' in html
