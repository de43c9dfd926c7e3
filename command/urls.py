from django.urls import path

from command import views
from command.views import audit, consoles, mobile, wall

urlpatterns = [
    path("", views.home, name="home"),
    path("map/", views.geography_map, name="geography-map"),
    # Consoles of the street sub-centres, community stations and departments; one case; intake.
    path("command/", consoles.console_index, name="console-index"),
    path("command/district/", consoles.district_console, name="console-district"),
    path("command/street/<str:code>/", consoles.street_console, name="console-street"),
    path("command/community/<str:code>/", consoles.community_console, name="console-community"),
    path("command/department/", consoles.department_console, name="console-department"),
    path("command/cases/<str:number>/", consoles.case_page, name="console-case"),
    path("command/intake/", consoles.intake, name="console-intake"),
    # The auditor's page of the audit trail (审计日志).
    path("command/audit/", audit.audit_page, name="console-audit"),
    # The district wall screen (大屏) and its snapshot.
    path("command/wall/", wall.wall, name="command-wall"),
    path("command/wall/snapshot.json", wall.wall_snapshot, name="command-wall-snapshot"),
    # The grid worker's phone (网格员移动端).
    path("m/", mobile.report, name="mobile-report"),
    path("m/tasks/", mobile.tasks, name="mobile-tasks"),
    path("m/tasks/<str:number>/", mobile.task, name="mobile-task"),
    path("m/session/", mobile.session, name="mobile-session"),
    path("m/sw.js", mobile.service_worker, name="mobile-sw"),
]
