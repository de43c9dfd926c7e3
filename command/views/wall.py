"""The district wall screen (大屏): `/command/wall/` and its snapshot `/command/wall/snapshot.json`.

Who may look: a wall-screen kiosk holding the district's screen token in its session (opened
once with `?token=…`, see command.models.ScreenToken), or a signed-in district operator (their
district). Nobody else: anonymous visitors are sent to the sign-in page, other roles get 403.

The page loads the snapshot, draws it, then follows the district's live feed (`district:<code>`
over /ws/, static/realtime/live.js) and applies each event to what it shows; the snapshot carries
the feed's sequence numbers, read *before* the data, so no event between the two is missed (one
may be applied twice, which the page's idempotent handling absorbs). The figures are computed by
the wall selectors of incidents.selectors; the map's boundaries come from the open geography API;
the responders sharing their position come from dispatch.selectors (and then the feed's
dispatch.responder_moved / responder_cleared).

Category names: the snapshot and the feed's events name a case's category in Chinese (one
payload for every subscriber, ADR 0016); the page comes with every category's name in its
reader's language by code (#wall-category-names), and the script shows that name, the payload's
only for a code it does not know (a category added after the page was loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import shapely
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET
from shapely.ops import polylabel

from accounts.departments import department_short_names
from accounts.models import Role
from command.models import ScreenToken
from command.services import (
    SCREEN_TOKEN_SESSION_KEY,
    screen_token_authenticate,
    screen_token_for_session,
)
from dispatch.plans import known_plans
from dispatch.selectors import responders_for_district
from gridmap import selectors as gridmap_selectors
from gridmap.models import Level
from incidents import selectors as incident_selectors
from incidents.models import Category, Stage
from realtime.outbox import latest_seqs

# Rows of the wall's ticker and categories of its chart.
TICKER_LIMIT = 40
TOP_CATEGORIES = 8


@dataclass(frozen=True)
class WallViewer:
    """Who is looking at a wall: the district shown, and the screen token if it is a kiosk."""

    district_code: str
    token: ScreenToken | None


def wall_viewer(request: HttpRequest, *, touch: bool = False) -> tuple[WallViewer | None, str]:
    """(viewer, "") when the request may see a district's wall; (None, reason) otherwise, the
    reason being "revoked" (the session's screen token was revoked), "forbidden" (signed in, but
    not a district operator) or "anonymous"."""
    token_id = request.session.get(SCREEN_TOKEN_SESSION_KEY)
    revoked = False
    if token_id is not None:
        token = screen_token_for_session(token_id, touch=touch)
        if token is not None:
            if touch and token.last_seen_at is not None:
                # Keep the kiosk's session alive while the screen is in use (it never signs in).
                request.session.modified = True
            return WallViewer(district_code=token.district_code, token=token), ""
        revoked = True
    user = request.user
    if (
        user.is_authenticated
        and user.is_active
        and getattr(user, "role", "") == Role.DISTRICT_OPERATOR
        and len(getattr(user, "place_code", "") or "") == 6
    ):
        return WallViewer(district_code=user.place_code, token=None), ""  # type: ignore[union-attr]
    if revoked:
        return None, "revoked"
    return None, "forbidden" if user.is_authenticated else "anonymous"


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    messages = {
        "invalid": _("大屏令牌无效或已停用，请联系系统管理员重新签发。"),
        "revoked": _("此大屏的令牌已停用，请联系系统管理员重新签发。"),
        "forbidden": _("指挥大屏仅供区指挥中心值班员和已授权的大屏使用。"),
    }
    response = render(
        request,
        "command/wall_refused.html",
        {"message": messages.get(reason, messages["forbidden"])},
        status=403,
    )
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def wall(request: HttpRequest) -> HttpResponse:
    params = request.GET.copy()
    raw_token = params.pop("token", None)
    language = params.pop("lang", None)
    if raw_token is not None or language is not None:
        # Act on the token and the language, then show the same address without them (the
        # token must not stay in the address bar, the history or a screenshot).
        if raw_token is not None:
            token = screen_token_authenticate(raw_token[-1])
            if token is None:
                return _refused(request, "invalid")
            request.session.cycle_key()  # a fresh session id for the newly trusted browser
            request.session[SCREEN_TOKEN_SESSION_KEY] = token.pk
        query = urlencode(params, doseq=True)
        response: HttpResponse = HttpResponseRedirect(
            reverse("command-wall") + (f"?{query}" if query else "")
        )
        response["Referrer-Policy"] = "no-referrer"
        response["Cache-Control"] = "no-store"
        if language and language[-1] in dict(settings.LANGUAGES):
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language[-1],
                max_age=settings.LANGUAGE_COOKIE_AGE or 365 * 24 * 3600,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response

    viewer, reason = wall_viewer(request, touch=True)
    if viewer is None:
        if reason == "anonymous":
            return redirect_to_login(request.get_full_path())
        return _refused(request, reason)
    generation = gridmap_selectors.active_generation()
    district = (
        gridmap_selectors.region_by_code(generation=generation, code=viewer.district_code)
        if generation is not None
        else None
    )
    config = {
        "district": viewer.district_code,
        "scope": f"district:{viewer.district_code}",
        "snapshotUrl": reverse("command-wall-snapshot"),
        "regionsUrl": reverse("region-list"),
        "generation": generation.number if generation else None,
        "tileUrl": settings.CITYOPS_MAP_TILE_URL,
        "timeZone": settings.TIME_ZONE,
        "language": translation.get_language(),
        "kiosk": viewer.token is not None,
        "topCategories": TOP_CATEGORIES,
        "tickerLimit": TICKER_LIMIT,
        # Responders' positions older than this leave the map (dispatch.selectors uses the same).
        "responderMaxAgeMinutes": settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES,
    }
    response = render(
        request,
        "command/wall.html",
        {
            "district_name": district.name if district else viewer.district_code,
            "generation": generation,
            "wall_config": config,
            "wall_strings": _wall_strings(),
            "category_names": _category_names(),
            "response_names": _response_names(),
            # The first snapshot comes with the page: the wall is drawn without waiting for a
            # second request; later reloads (resync, a new day) use the snapshot URL.
            "snapshot": wall_snapshot_data(viewer.district_code),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@lru_cache(maxsize=4)
def _geography(generation_number: int, activated_at: Any, district_code: str) -> dict[str, Any]:
    """Street and community names of the district, and where each street's label goes (the
    pole of inaccessibility of its largest part: well inside, away from the outline). One
    generation's boundaries never change, so this is cached per generation (and activation)."""
    generation = gridmap_selectors.generation_by_number(generation_number)
    streets = []
    communities = {}
    if generation is not None:
        for region in gridmap_selectors.regions_for_listing(
            generation=generation, level=Level.STREET, parent_code=district_code
        ):
            shape = shapely.from_wkb(bytes(region.geom.wkb))
            parts = getattr(shape, "geoms", [shape])
            largest = max(parts, key=lambda part: part.area)
            label = polylabel(largest, tolerance=1e-5)
            streets.append(
                {
                    "code": region.code,
                    "name": region.name,
                    "label": [round(label.x, 6), round(label.y, 6)],
                }
            )
            for community in gridmap_selectors.regions_for_listing(
                generation=generation, level=Level.COMMUNITY, parent_code=region.code
            ):
                communities[community.code] = community.name
    return {"streets": streets, "communities": communities}


def wall_snapshot_data(district_code: str) -> dict[str, Any]:
    """Everything the wall draws, at one moment, with the feed's position before it."""
    scope = f"district:{district_code}"
    # First the feed's position, then the data: an event committed in between is in both the
    # data and the replay after `seqs`, and the page applies events idempotently.
    seqs = latest_seqs([scope])
    now = timezone.now()
    since = incident_selectors.wall_day_start(now)
    generation = gridmap_selectors.active_generation()
    geography = (
        _geography(generation.number, generation.activated_at, district_code)
        if generation is not None
        else {"streets": [], "communities": {}}
    )
    today = incident_selectors.wall_today(district_code=district_code, since=since, now=now)
    by_street = incident_selectors.wall_by_street(district_code=district_code, since=since, now=now)
    empty = {"reported": 0, "open": 0, "overdue": 0, "closed": 0}
    return {
        "district": district_code,
        "generated_at": now,
        "day": {"start": since, "end": since + timedelta(days=1)},
        "seqs": seqs,
        "generation": generation.number if generation else None,
        "streets": geography["streets"],
        "communities": geography["communities"],
        "cases": incident_selectors.wall_cases(district_code=district_code, since=since),
        "today": today["numbers"],
        "kpis": today["kpis"],
        "by_street": [
            {"code": street["code"], **by_street.get(street["code"], empty)}
            for street in geography["streets"]
        ]
        + [
            # Cases whose street is not in today's boundaries (kept from an older generation).
            {"code": code, **counts}
            for code, counts in sorted(by_street.items())
            if code not in {street["code"] for street in geography["streets"]}
        ],
        "by_category": incident_selectors.wall_by_category(
            district_code=district_code, since=since, limit=TOP_CATEGORIES
        ),
        "hourly": incident_selectors.wall_hourly(district_code=district_code, since=since),
        "ticker": incident_selectors.wall_ticker(
            district_code=district_code, since=since, limit=TICKER_LIMIT
        ),
        # Who is out in the field now (a shared position younger than the max age).
        "responders": responders_for_district(district_code=district_code, now=now),
    }


@require_GET
def wall_snapshot(request: HttpRequest) -> HttpResponse:
    viewer, reason = wall_viewer(request, touch=True)
    if viewer is None:
        if reason == "revoked":
            detail = _("此大屏的令牌已停用，请联系系统管理员重新签发。")
        elif reason == "anonymous":
            detail = _("请以区指挥中心值班员身份登录，或用大屏令牌打开大屏。")
        else:
            detail = _("指挥大屏仅供区指挥中心值班员和已授权的大屏使用。")
        return JsonResponse({"detail": detail, "reason": reason}, status=403)
    response = JsonResponse(
        wall_snapshot_data(viewer.district_code),
        encoder=DjangoJSONEncoder,
        json_dumps_params={"ensure_ascii": False, "separators": (",", ":")},
    )
    response["Cache-Control"] = "no-store"
    return response


def _category_names() -> dict[str, str]:
    """Every category's name in the reader's language, by code (`Category.label`). All of them,
    the inactive too: an open case keeps a category that was switched off since, and any
    category may arrive with the live feed's next event."""
    return {
        category.code: category.label
        for category in Category.objects.only("code", "name", "name_en").order_by("code")
    }


def _response_names() -> dict[str, Any]:
    """What the responses panel names by code, in the reader's language: the response plans
    (name and the level they start from) and the departments (short names: "水务", "Fire")."""
    return {
        "plans": {
            plan.code: {"name": plan.label, "severity": plan.min_severity}
            for plan in known_plans().values()
        },
        "departments": department_short_names(),
    }


def _wall_strings() -> dict[str, Any]:
    """Text the wall's script shows, translated on the server (Django i18n)."""
    return {
        "stages": {value: str(label) for value, label in Stage.choices},
        "live": _("实时"),
        "connecting": _("正在连接实时数据…"),
        "resyncing": _("正在同步…"),
        "interrupted": _("实时连接中断"),
        "interruptedDetail": _("自 %(time)s 起未收到实时数据，正在重新连接，所示可能不是最新"),
        "refused": _("此大屏已无权访问，请联系系统管理员。"),
        "reported": _("新上报"),
        "escalated": _("督办"),
        "emergency": _("突发"),
        "late": _("已超时"),
        "left": _("剩余"),
        # A countdown past a day: days and hours, the hours two digits ("3天05时").
        "daysHours": _("%(days)s天%(hours)s时"),
        "overdueCount": _("超时 %(n)s"),
        "dueSoonCount": _("临期 %(n)s"),
        "noOverdue": _("当前没有超时或临期案件"),
        "noTicker": _("今日暂无新上报或督办案件"),
        "noData": _("今日暂无数据"),
        "mapCount": _("在办 %(open)s 件 · 今日结案 %(closed)s 件"),
        "more": _("另有 %(n)s 件"),
        "escalations": _("督办×%(n)s"),
        "chartReported": _("上报"),
        "chartClosed": _("结案"),
        "chartOpen": _("在办"),
        "chartOverdue": _("超时"),
        "hour": _("%(h)s时"),
        # The responses panel (应急响应): cases with departments called out (协办).
        "responseCount": _("%(n)s 起"),
        "responseArrived": _("%(arrived)s/%(called)s 到场"),
        "responseLead": _("牵头"),
        # A response without a plan: departments called out by hand (增派协办).
        "responseByHand": pgettext("wall response without a plan", "增派协办"),
        "responseSince": _("已响应"),
        "responseMore": _("另有 %(n)s 起"),
        "responseArrivedTitle": _("已到场"),
        "responsePendingTitle": _("未到场"),
        "respondersOnDuty": _("在岗网格员 %(n)s"),
        "handlersOnDuty": _("部门人员 %(n)s"),
        "responderRoles": {
            Role.GRID_WORKER.value: str(Role.GRID_WORKER.label),
            Role.DEPARTMENT_HANDLER.value: str(Role.DEPARTMENT_HANDLER.label),
        },
        "ownerLevels": {
            "community": _("社区"),
            "street": _("街道"),
            "district": _("区"),
        },
    }
