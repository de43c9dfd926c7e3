"""A realistic day for the wall screen: several dozen cases across the six streets.

    DJANGO_DEBUG=1 .venv/bin/python manage.py shell < scripts/wall_demo_load.py

Run after `gridmap_demo`, `incidents_load_categories`, `incidents_load_calendar` and
`cityops_demo_users` (scripts/screenshots.sh does). Cases come in over the last hours (at least
three, at most since midnight or ten hours) from the hotline, citizens, sensors and video AI, and
the demo users move them through the closed loop with the real services — register, dispatch,
accept, handle, feed back, verify, close, some rejected or parked — a few minutes apart, each
step at the moment it happened: the server's clock (django.utils.timezone.now) is set to that
moment while the service runs, so deadlines, numbers and the day's figures are what they would
have been. The emergencies are dispatched by their response plan (一键调派), which calls out the
supporting departments, and some of those confirm their arrival (确认到场) minutes later, each
by a handler of its own (demo colleagues who never sign in). A few cases from the afternoon
before are still open. The escalation worker's pass runs every five simulated minutes along the
way and once more at the real time, warning (预警) and escalating (督办) the clocks that ran out.
Last, five responders (the demo grid worker, three patrolling colleagues, the 城管 handler) share
their position now, for the wall's responders layer.
Nothing else is faked: every case, step, audit entry and event is written by the services.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import shapely
from django.utils import timezone

from accounts.departments import known_departments
from accounts.models import Role, User
from accounts.services import user_save
from dispatch.plans import plans_for as response_plans_for
from dispatch.services import plan_activate, responder_position_report
from gridmap.models import Region
from incidents.models import Category, Channel, Incident
from incidents.services import (
    incident_accept,
    incident_close,
    incident_confirm_arrival,
    incident_dispatch,
    incident_feed_back,
    incident_handle,
    incident_park,
    incident_register,
    incident_reject,
    incident_report,
    incident_verify,
)
from incidents.services.escalation import escalation_run_once

SEED = 20261125
# (category code, weight): rubbish, street order and hazards most, a few emergencies.
CATEGORIES = [
    ("06010", 9),  # 暴露垃圾
    ("06012", 5),  # 道路不洁
    ("09001", 5),  # 无照经营游商
    ("07001", 4),  # 非法小广告
    ("06020", 3),  # 焚烧垃圾、树叶
    ("01001", 3),  # 供水井盖异常 (calendar clock)
    ("01002", 3),  # 污水井盖异常 (calendar clock)
    ("08001", 3),  # 施工扰民
    ("06001", 2),  # 私搭乱建
    ("04001", 2),  # 古树名木异常
    ("06016", 2),  # 交通标线不清晰
    ("02001", 1),  # 停车场异常
]
EMERGENCIES = [("90001", "III"), ("90002", "IV"), ("90004", "II"), ("90005", "IV")]
# How far each case of today gets, with weights.
OUTCOMES = [
    ("reported", 7),
    ("registered", 6),
    ("dispatched", 9),
    ("accepted", 5),
    ("handling", 6),
    ("fed_back", 4),
    ("verified", 2),
    ("closed", 14),
    ("rejected", 2),
    ("parked", 1),
]
LOOP = ["register", "dispatch", "accept", "handle", "feed_back", "verify", "close"]
CHANNELS = [
    Channel.HOTLINE_12345,
    Channel.CITIZEN,
    Channel.SENSOR,
    Channel.VIDEO_AI,
    Channel.CONSOLE,
]

rng = random.Random(SEED)  # noqa: S311 (demo data, not a secret)
real_now = timezone.now()
real_clock = timezone.now
moment: dict[str, datetime] = {"now": real_now}


def steps_for(outcome: str) -> list[str]:
    if outcome == "rejected":
        return ["reject"]
    if outcome == "parked":
        return ["register", "park"]
    if outcome == "reported":
        return []
    index = {"registered": 1, "dispatched": 2, "accepted": 3, "handling": 4, "fed_back": 5}
    if outcome in index:
        return LOOP[: index[outcome]]
    return LOOP[: LOOP.index("verify") + 1] if outcome == "verified" else list(LOOP)


def weighted(options: list[tuple[Any, int]]) -> Any:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def random_point(region: Region) -> tuple[float, float]:
    shape = shapely.from_wkb(bytes(region.geom.wkb))
    shapely.prepare(shape)
    minx, miny, maxx, maxy = shape.bounds
    for _ in range(200):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shape.contains(shapely.Point(x, y)):
            return x, y
    point = shapely.point_on_surface(shape)
    return point.x, point.y


district_operator = User.objects.get(username="district")
handler = User.objects.get(username="dept")  # 城管 CGJ
admin = User.objects.get(username="admin")  # acts for the other departments
# Not the demo grid worker's own cell: their phone's screenshots show the cases made for them.
grids = list(
    Region.objects.filter(generation__status="active", level="grid")
    .exclude(code=User.objects.get(username="gridworker").place_code)
    .order_by("code")
)
categories = {c.code: c for c in Category.objects.filter(code__in=[c for c, _ in CATEGORIES])}
emergency_categories = {
    c.code: c for c in Category.objects.filter(code__in=[c for c, _ in EMERGENCIES])
}

midnight = timezone.localtime(real_now).replace(hour=0, minute=0, second=0, microsecond=0)
start = min(max(midnight, real_now - timedelta(hours=10)), real_now - timedelta(hours=3))
plans: list[dict[str, Any]] = []


def plan(reported_at: datetime, outcome: str, *, category: Category, severity: str = "") -> None:
    steps: list[tuple[datetime, str]] = []
    at = reported_at
    for action in steps_for(outcome):
        at = at + timedelta(minutes=rng.randint(4, 55))
        if at >= real_now - timedelta(minutes=1):
            break
        steps.append((at, action))
    # An emergency is dispatched by its response plan (一键调派); some of the departments it
    # calls out confirm they are on the scene minutes later, one at least still on the way.
    response = response_plans_for(category.code, severity)[0] if severity else None
    dispatched = [moment for moment, action in steps if action == "dispatch"]
    if response is not None and dispatched:
        arriving = rng.sample(response.supports, rng.randint(0, len(response.supports) - 1))
        for code in arriving:
            arrival = dispatched[0] + timedelta(minutes=rng.randint(3, 30))
            if arrival < real_now - timedelta(minutes=1):
                steps.append((arrival, "arrive:" + code))
    plans.append(
        {
            "reported_at": reported_at,
            "category": category,
            "severity": severity,
            "grid": rng.choice(grids),
            "channel": rng.choice(CHANNELS),
            "steps": steps,
            "response": response,
        }
    )


span = (real_now - timedelta(minutes=6) - start).total_seconds()
for _ in range(56):
    plan(
        start + timedelta(seconds=rng.uniform(0, span)),
        weighted(OUTCOMES),
        category=categories[weighted(CATEGORIES)],
    )
for code, severity in EMERGENCIES:
    plan(
        start + timedelta(seconds=rng.uniform(span * 0.5, span)),
        rng.choice(["registered", "dispatched", "accepted", "handling"]),
        category=emergency_categories[code],
        severity=severity,
    )
# The afternoon before: a few cases still open, a few closed then.
yesterday = midnight - timedelta(days=1)
for outcome in ["reported", "registered", "dispatched", "dispatched", "handling", "closed"]:
    plan(
        yesterday + timedelta(hours=15, minutes=rng.randint(0, 150)),
        outcome,
        category=categories[weighted(CATEGORIES)],
    )

# Every step of every case, in the order they happened.
timeline: list[tuple[datetime, int, str]] = []
for index, case_plan in enumerate(plans):
    timeline.append((case_plan["reported_at"], index, "report"))
    for at, action in case_plan["steps"]:
        timeline.append((at, index, action))
timeline.sort(key=lambda item: (item[0], item[1]))


def colleague(department_code: str) -> User:
    """A demo handler of a department a plan calls out, who confirms its arrival (确认到场 is a
    department's own word: the admin may not say it for them). One who never signs in here."""
    user = User.objects.filter(username=f"hd-{department_code.lower()}").first()
    if user is None:
        user = User(
            username=f"hd-{department_code.lower()}",
            first_name=f"{known_departments()[department_code].short_name}值班员",
            role=Role.DEPARTMENT_HANDLER,
            department_code=department_code,
        )
        user.set_unusable_password()
        user_save(user=user)  # audited (accounts.user_create), by the system
    return user


timezone.now = lambda: moment["now"]  # type: ignore[assignment]
cases: dict[int, Incident] = {}
# The escalation worker (dispatch_escalate) runs all along: a pass every few minutes.
WORKER_EVERY = timedelta(minutes=5)
next_pass = timeline[0][0] + WORKER_EVERY
passes = {"escalated": 0, "warned": 0}


def worker_until(until: datetime) -> None:
    global next_pass
    while next_pass <= until:
        moment["now"] = next_pass
        done = escalation_run_once(now=next_pass, batch=1000)
        passes["escalated"] += done.escalated
        passes["warned"] += done.warned
        next_pass += WORKER_EVERY


try:
    for at, index, action in timeline:
        worker_until(at)
        moment["now"] = at
        case_plan = plans[index]
        category = case_plan["category"]
        own = category.department_code == "CGJ"
        if action == "report":
            lon, lat = random_point(case_plan["grid"])
            cases[index] = incident_report(
                channel=case_plan["channel"],
                category=category,
                lon=lon,
                lat=lat,
                description="演示数据",
                severity=case_plan["severity"] or None,
            )
            continue
        case = cases[index]
        if action.startswith("arrive:"):
            case = incident_confirm_arrival(
                incident=case, by=colleague(action.split(":", 1)[1]), note="已到达现场"
            )
        elif action == "dispatch" and case_plan["response"] is not None:
            case = plan_activate(
                incident=case, plan_code=case_plan["response"].code, by=district_operator
            )
        elif action == "register":
            case = incident_register(incident=case, by=district_operator)
        elif action == "dispatch":
            case = incident_dispatch(
                incident=case, by=district_operator, department_code=category.department_code
            )
        elif action == "accept":
            case = incident_accept(incident=case, by=handler if own else admin)
        elif action == "handle":
            case = incident_handle(incident=case, by=handler if own else admin)
        elif action == "feed_back":
            case = incident_feed_back(
                incident=case, by=handler if own else admin, feedback="已处置完毕"
            )
        elif action == "verify":
            case = incident_verify(incident=case, by=district_operator, passed=True)
        elif action == "close":
            case = incident_close(incident=case, by=district_operator)
        elif action == "reject":
            case = incident_reject(incident=case, by=district_operator, reason="不属于受理范围")
        elif action == "park":
            case = incident_park(incident=case, by=district_operator, reason="需纳入年度预算")
        cases[index] = case
    worker_until(real_now)
finally:
    timezone.now = real_clock  # type: ignore[assignment]

done = escalation_run_once(now=timezone.now(), batch=1000)
passes["escalated"] += done.escalated

# Responders out in the field now, sharing their position from their phones (the real service,
# at the real time): the demo grid worker in their own cell, three more grid workers on patrol in
# other streets, and the 城管 handler on the way to a case.
by_street: dict[str, list[Region]] = {}
for grid in grids:
    by_street.setdefault(grid.code[:9], []).append(grid)
streets = sorted(by_street)


def grid_in(street_index: int) -> Region:
    """A cell in the middle of the list of a street's cells (one per street: spread out)."""
    cells = by_street[streets[street_index % len(streets)]]
    return cells[len(cells) // 2]


patrol = [
    ("gw-zhangwei", "张伟", grid_in(1)),
    ("gw-liuyang", "刘洋", grid_in(3)),
    ("gw-chenjing", "陈静", grid_in(4)),
]
field = [
    (
        User.objects.get(username="gridworker"),
        Region.objects.get(
            generation__status="active", code=User.objects.get(username="gridworker").place_code
        ),
    ),
    (handler, grid_in(2)),
]
for username, name, grid in patrol:
    worker, _ = User.objects.get_or_create(
        username=username,
        defaults={
            "first_name": name,
            "role": "grid_worker",
            "place_code": grid.code,
            "password": "!",  # unusable: a demo colleague who never signs in here
        },
    )
    field.append((worker, grid))
for user, grid in field:
    lon, lat = random_point(grid)
    responder_position_report(user=user, lon=lon, lat=lat, accuracy_m=rng.choice([6.0, 12.0, 25.0]))
passes["warned"] += done.warned
print(
    f"wall demo: {len(cases)} cases, {len(timeline) - len(cases)} steps; the escalation worker "
    f"escalated {passes['escalated']} (督办) and warned {passes['warned']} (预警); "
    f"{len(field)} responders sharing their position"
)
