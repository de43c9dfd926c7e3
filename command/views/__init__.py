"""Pages. They call selectors of the apps below, never another app's ORM directly."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import LoginView
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.services import user_password_changed
from accounts.signin import PasswordChangeForm, SignInForm
from audit.services import request_ip
from command.views.consoles import workplace_url
from gridmap import selectors as gridmap_selectors
from gridmap.models import Generation, Level

# Sample point for the API link on the home page: in 龙华街道, near the Longhua metro station.
SAMPLE_LON, SAMPLE_LAT = 114.0305, 22.6696


def _level_counts(generation: Generation | None) -> list[dict[str, Any]]:
    """Regions per level of a generation, from the counts its validation report recorded."""
    counts = generation.region_counts() if generation else []
    return [{"level": level, "label": Level(level).label, "count": n} for level, n in counts]


class SignInView(LoginView):
    """The site's sign-in page (every role; the admin's own admits staff only). Without a `next`
    page it sends each user to where they work (consoles.workplace_url), not to the overview."""

    form_class = SignInForm

    def get_default_redirect_url(self) -> str:
        return workplace_url(self.request.user)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # The idle limits (accounts.sessions), so nobody is surprised to be signed out.
        phone_minutes = settings.CITYOPS_PHONE_SESSION_IDLE_MINUTES
        return {
            **super().get_context_data(**kwargs),
            "idle_minutes": settings.CITYOPS_SESSION_IDLE_MINUTES,
            "phone_idle_hours": phone_minutes // 60 if phone_minutes % 60 == 0 else 0,
        }


class PasswordChangeView(auth_views.PasswordChangeView):
    """A signed-in user's own 修改密码, in the site's look; audited
    (accounts.user_password_change, by the user, in the change's transaction), and the user's
    other sessions ended in that transaction (accounts.sessions_revoked): this one stays signed
    in under the new key Django's update_session_auth_hash gave it."""

    form_class = PasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form: Any) -> HttpResponse:
        with transaction.atomic():
            previous = form.user.password
            response = super().form_valid(form)
            user_password_changed(
                user=form.user,
                by=form.user,
                ip=request_ip(self.request),
                previous_hash=previous,
                session_key=self.request.session.session_key,
            )
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "workplace": workplace_url(self.request.user)}


def home(request: HttpRequest) -> HttpResponse:
    generation = gridmap_selectors.active_generation()
    return render(
        request,
        "command/home.html",
        {
            "nav": "home",
            "generation": generation,
            "level_counts": _level_counts(generation),
            "sample_locate_url": f"{reverse('locate')}?lon={SAMPLE_LON}&lat={SAMPLE_LAT}",
            "sample_regions_url": f"{reverse('region-list')}?level=street",
        },
    )


def _map_strings() -> dict[str, str]:
    """Text the map script shows, translated on the server (Django i18n) for the script."""
    return {
        "zoomIn": _("放大"),
        "zoomOut": _("缩小"),
        "loading": _("正在加载边界…"),
        "loadingGrid": _("正在加载网格…"),
        "loadFailed": _("边界数据加载失败，请刷新页面重试。"),
        "noGeneration": _("尚无启用的边界版本，地图无边界可显示。"),
        "locating": _("正在查询…"),
        "district": _("区"),
        "street": _("街道"),
        "community": _("社区"),
        "grid": _("网格"),
        "resolution": _("归属方式"),
        "resolution_inside": _("位于网格内"),
        "resolution_border": _("位于多个网格的共用边界上，按最小网格代码归属"),
        "resolution_nearest": _("不在任何网格内，按属地兜底归属最近的网格（相距 %(distance)s 米）"),
        "onBorder": _("位于网格边界"),
        "yes": _("是"),
        "no": _("否"),
        "coordinates": _("坐标 (WGS-84)"),
        "generation": _("边界版本"),
        "outsideTitle": _("不在辖区内"),
        "outsideDistance": _("该点距区界约 %(distance)s，超出属地兜底范围。"),
        "kilometres": _("%(value)s 公里"),
        "metres": _("%(value)s 米"),
        "badRequest": _("坐标无效"),
        "unavailable": _("暂无启用的边界版本，无法查询。"),
        "failed": _("查询失败，请稍后重试。"),
        "resetView": _("全区视图"),
        "zoomToStreet": _("定位到该街道"),
    }


def geography_map(request: HttpRequest) -> HttpResponse:
    generation = gridmap_selectors.active_generation()
    config = {
        "regionsUrl": reverse("region-list"),
        "locateUrl": reverse("locate"),
        # The map fetches a located grid cell's outline from here ("CODE" is replaced).
        "regionUrl": reverse("region-detail", args=["CODE"]),
        "tileUrl": settings.CITYOPS_MAP_TILE_URL,
        "generation": generation.number if generation else None,
        "synthetic": bool(generation and generation.synthetic),
    }
    return render(
        request,
        "command/map.html",
        {
            "nav": "map",
            "generation": generation,
            "level_counts": _level_counts(generation),
            "map_config": config,
            "buffer_m": f"{settings.GRIDMAP_OUTSIDE_BUFFER_M:g}",
            "map_strings": _map_strings(),
        },
    )
