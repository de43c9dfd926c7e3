"""URL wiring: admin, the versioned REST API, its OpenAPI schema and docs, the pages."""

from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from command.views import PasswordChangeDoneView, PasswordChangeView, SignInView

admin.site.site_header = _("CityOps 一网统管 管理后台")
admin.site.site_title = "CityOps"
admin.site.index_title = _("系统管理")

urlpatterns = [
    # The admin's own 修改密码 link leads to the site's page, the one that is audited.
    path("admin/password_change/", RedirectView.as_view(pattern_name="password_change")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # Sign-in for every role (the admin's own login admits staff only), landing each on their
    # workplace; a user's own password change (audited). No password reset by e-mail: the
    # system sends no mail, and an administrator resets a password in the admin (audited).
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password_change/done/",
        PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("api/v1/", include("gridmap.api.urls")),
    path("api/v1/", include("incidents.api.urls")),
    path("api/v1/", include("dispatch.api.urls")),
    # Open311 GeoReport v2 (docs/open311.md): public reads, key-authenticated reports.
    path("open311/v2/", include("incidents.open311.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("command.urls")),
]

# Not found, refused, failed: in the site's look and the reader's language; JSON under /api/.
handler400 = "command.views.errors.bad_request"
handler404 = "command.views.errors.not_found"
handler403 = "command.views.errors.refused"
handler500 = "command.views.errors.server_error"
