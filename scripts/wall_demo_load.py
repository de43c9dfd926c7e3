"""A realistic day for the wall screen: several dozen cases across the six streets.

    DJANGO_DEBUG=1 .venv/bin/python manage.py shell < scripts/wall_demo_load.py

Run after `gridmap_demo`, `incidents_load_categories`, `incidents_load_calendar` and
`cityops_demo_users` (scripts/screenshots.sh does). Cases come in over the last hours (at
least three, at most since midnight or ten hours) from the hotline, citizens, sensors and
video AI, and the demo users move them through the closed loop with the real services — the
district centre registers, dispatches, verifies and closes (some are rejected or parked),
and each department's own handler accepts, handles and feeds back (the demo's `dept` for 城管,
a demo colleague who never signs in for the others) — a few minutes apart, each step at the
moment it happened: the server's clock (django.utils.timezone.now) is set to that moment
while the service runs, so deadlines, numbers and the day's figures are what they would have
been. The emergencies are dispatched by their response plan (一键调派), which calls out the
supporting departments, and some of those confirm their arrival (确认到场) minutes later and
report what they have done there (协办反馈). Each case's description is one a reporter of its
category would write. A few cases from the afternoon before are still open. The escalation
worker's pass runs every five simulated minutes along the way and once more at the real
time, warning (预警) and escalating (督办) the clocks that ran out. Last, five responders (the
demo grid worker, three patrolling colleagues, the 城管 handler) share their position now, for
the wall's responders layer.
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
    incident_support_report,
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
# What a reporter would write (one picked per case), so that a case page reads like a real one.
DESCRIPTIONS = {
    "06010": ["小区东门垃圾桶满溢，十几袋生活垃圾未清运", "路边绿化带内堆放建筑垃圾约 2 立方米"],
    "06012": ["人行道上泥浆遍地，疑似工地车辆带出", "公交站台附近地面油污较多，行人易滑倒"],
    "09001": ["地铁站 B 出口有流动摊贩占道卖水果", "学校门口三轮车摆卖早餐，占用人行道"],
    "07001": ["小区围墙上张贴大量办证小广告", "路灯杆上喷涂疏通管道电话"],
    "06020": ["绿化带内有人焚烧落叶，烟雾较大", "空地上焚烧废旧家具，有异味"],
    "01001": ["供水井盖松动，车辆经过时有响声", "供水井盖缺失，已用锥桶临时围挡"],
    "01002": ["污水井盖破损下沉，存在安全隐患", "污水井冒溢，路面有污水流淌"],
    "08001": ["工地夜间 22 点后仍在施工，噪音扰民", "凌晨有泥头车进出工地，噪音很大"],
    "06001": ["楼顶新搭建铁皮房约 20 平方米", "临街店铺在门前违规搭建雨棚"],
    "04001": ["古树树枝断裂，悬挂在人行道上方", "古树周边被硬化铺装，树根裸露"],
    "06016": ["路口斑马线磨损严重，基本看不清", "车道导向箭头模糊，车辆频繁变道"],
    "02001": ["停车场道闸损坏，车辆排队进出", "停车场出入口照明失效"],
    "90001": ["工业区厂房三楼冒出浓烟，有明火"],
    "90002": ["下穿通道积水约 40 厘米，有车辆熄火"],
    "90004": ["小区地下车库闻到浓烈燃气味，疑似管道泄漏"],
    "90005": ["两车追尾，一人受伤，占用两条车道"],
}
# What a department called out by a plan reports from the scene (协办反馈), by its code.
SUPPORT_REPORTS = {
    "XF": "已设置警戒区，现场无人员被困",
    "ZJJ": "已通知燃气公司和物业排查楼内管道",
    "JD": "已疏散周边居民 30 余人，安排临时安置点",
    "GA": "已封闭小区出入口，维持现场秩序",
    "JJ": "已在路口设置绕行指引",
    "WJJ": "救护车已到场，伤者送往区人民医院",
    "JTJ": "已调度清障车前往",
    "YJGLJ": "应急值班人员已到场统筹",
}
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
# The descriptions and reports draw from their own sequence: the day (which cases, when, how
# far) stays the one the screenshots show.
wording = random.Random(SEED + 1)  # noqa: S311
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
handler = User.objects.get(username="dept")  # 城管 CGJ; the other departments: colleague()
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
                # Some say what they have done there, a few minutes later.
                report_at = arrival + timedelta(minutes=wording.randint(2, 15))
                if code in SUPPORT_REPORTS and report_at < real_now - timedelta(minutes=1):
                    steps.append((report_at, "report:" + code))
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
    """The department's handler: the demo's `dept` for 城管, else a demo handler of its own, who
    never signs in here — it accepts, handles and feeds back the cases dispatched to it, and
    confirms its arrival and reports (协办反馈) on those it is called out to (those are a
    department's own word: the admin may not say them for it)."""
    if department_code == handler.department_code:
        return handler
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
        if action == "report":
            lon, lat = random_point(case_plan["grid"])
            cases[index] = incident_report(
                channel=case_plan["channel"],
                category=category,
                lon=lon,
                lat=lat,
                description=wording.choice(DESCRIPTIONS[category.code]),
                severity=case_plan["severity"] or None,
            )
            continue
        case = cases[index]
        if action.startswith("arrive:"):
            case = incident_confirm_arrival(
                incident=case, by=colleague(action.split(":", 1)[1]), note="已到达现场"
            )
        elif action.startswith("report:"):
            code = action.split(":", 1)[1]
            case = incident_support_report(
                incident=case, by=colleague(code), note=SUPPORT_REPORTS[code]
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
            case = incident_accept(incident=case, by=colleague(case.assigned_department_code))
        elif action == "handle":
            case = incident_handle(incident=case, by=colleague(case.assigned_department_code))
        elif action == "feed_back":
            case = incident_feed_back(
                incident=case, by=colleague(case.assigned_department_code), feedback="已处置完毕"
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
