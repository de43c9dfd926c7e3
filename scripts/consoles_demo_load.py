"""A morning's queue for 龙华街道's console: two dozen cases with what callers said and where.

    DJANGO_DEBUG=1 .venv/bin/python manage.py shell < scripts/consoles_demo_load.py

Run after `gridmap_demo`, `incidents_load_categories`, `incidents_load_calendar` and
`cityops_demo_users` (scripts/screenshots.sh does, after the wall's demo day). Calls to the
hotline and citizens' reports over the last seven hours, each with a description, an address and
a caller, moved through the closed loop by the demo users with the real services — registered,
dispatched, accepted, handled, fed back, verified, closed; one sent back, one parked, one waiting
for an extension. Each step runs at the moment it happened (django.utils.timezone.now is that
moment while the service runs), so numbers, clocks and deadlines are what they would have been.
One case — rubbish at a street corner, fed back with photos before and after, a second report of
the same pile nearby — is the one the case-page screenshot shows; its number is printed last.
Nothing else is faked: every case, step, photo, audit entry and event is written by the services.
"""

from __future__ import annotations

import io
import random
from datetime import datetime, timedelta
from unittest import mock

import shapely
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image, ImageDraw

from accounts.models import User
from gridmap.models import Region
from incidents import services
from incidents.models import Category, Channel, Incident, PhotoKind
from incidents.services.photos import incident_photo_add

FEATURED = "人行道上堆放十多袋生活垃圾和纸箱，已有异味，影响行人通行"
rng = random.Random(20261125)  # noqa: S311 (demo data, not a secret)

CASES = [
    # category, what the caller said, where, how far it got, minutes ago
    ("01001", "供水井盖破损下陷，车辆经过有异响", "东环一路 128 号门前", "reported", 12),
    ("06012", "道路有大面积泥浆，疑似工地车辆带出", "建设东路龙华工业区段", "reported", 26),
    ("06001", "小区楼顶新搭建铁皮房，邻居投诉", "三联村新区 12 栋", "reported", 41),
    ("07001", "电线杆和墙面张贴大量小广告", "景龙新村 7 巷", "reported", 58),
    ("90002", "暴雨后下穿通道积水约 30 厘米", "龙观东路下穿通道", "registered", 75),
    ("04003", "行道树倾斜，树干开裂，有倒伏风险", "和平路 56 号", "dispatched", 95),
    ("09001", "早晚高峰有流动摊贩占道经营", "龙华地铁站 B 出口", "dispatched", 130),
    ("08001", "夜间施工噪音扰民，超过 22 点仍在作业", "油松路在建工地", "returned", 150),
    ("06020", "绿化带内有人焚烧树叶，烟雾较大", "龙华文化广场西侧", "accepted", 170),
    ("06013", "路面坑洞约半米宽，电动车易摔倒", "人民北路公交站旁", "extension", 190),
    ("03006", "户外广告牌松动，大风天有坠落风险", "龙华商业中心东门", "handling", 215),
    ("06010", "垃圾桶满溢，周边有异味", "清湖社区综合市场北门", "handling", 240),
    ("06022", "有人砍伐公园内乔木", "龙华公园南门", "fed_back", 265),
    ("06005", "临街阳台堆放杂物，影响市容", "松和新村 21 栋", "verified", 290),
    ("06008", "私拉电线跨越道路", "三联老村 4 巷", "parked", 320),
    ("06021", "绿化带大面积虫害，叶片枯黄", "东环二路中央绿化带", "closed", 380),
    ("09001", "商户占道摆放货架", "民清路 88 号", "registered", 48),
    ("07001", "小区门口地面喷涂办证广告", "锦绣江南四期南门", "reported", 6),
]
LOOP = ["register", "dispatch", "accept", "handle", "feed_back", "verify", "close"]
REACHED = {
    "reported": 0,
    "registered": 1,
    "dispatched": 2,
    "returned": 2,
    "accepted": 3,
    "extension": 3,
    "handling": 4,
    "fed_back": 5,
    "verified": 6,
    "closed": 7,
    "parked": 1,
}
CALLERS = ["陈先生", "李女士", "王先生", "张女士", "刘先生", "黄女士"]

users = {u.username: u for u in User.objects.filter(username__in=["street", "dept", "admin"])}
street, cgj, admin = users["street"], users["dept"], users["admin"]
# The demo grid worker's own cell is left to the phone's screenshots.
grids = list(
    Region.objects.filter(generation__status="active", level="grid", code__startswith="440309001")
    .exclude(code=User.objects.get(username="gridworker").place_code)
    .order_by("code")
)
real_now = timezone.now()
clock: dict[str, datetime] = {"now": real_now}


def at(minutes_ago: float) -> None:
    clock["now"] = real_now - timedelta(minutes=minutes_ago)


def point_in(region: Region) -> tuple[float, float]:
    shape = shapely.from_wkb(bytes(region.geom.wkb))
    minx, miny, maxx, maxy = shape.bounds
    for _ in range(200):
        candidate = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if shape.buffer(-0.0004).contains(candidate):
            return candidate.x, candidate.y
    inside = shapely.point_on_surface(shape)
    return inside.x, inside.y


def photo(name: str, *, cleared: bool) -> SimpleUploadedFile:
    """A plain drawing of the corner (pavement, kerb, wall), with the pile of bags or without."""
    image = Image.new("RGB", (1200, 900), "#b9c2c9")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1200, 330), fill="#d9d2c3")  # wall
    draw.rectangle((0, 330, 1200, 360), fill="#8a949c")  # kerb
    for x in range(0, 1200, 150):
        draw.line((x, 360, x - 120, 900), fill="#a7b0b7", width=4)  # paving joints
    if not cleared:
        for _ in range(9):
            cx, cy = 420 + rng.randint(-160, 220), 560 + rng.randint(-90, 90)
            r = rng.randint(60, 110)
            draw.ellipse(
                (cx - r, cy - r, cx + r, cy + r * 0.8),
                fill=rng.choice(["#2f3b45", "#3d4a55", "#4e5a3f", "#6b5a44"]),
            )
        draw.polygon([(760, 620), (900, 560), (960, 700), (820, 760)], fill="#9c7a4f")  # carton
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


def step(case: Incident, action: str, category: Category) -> Incident:
    own = category.department_code == "CGJ"
    handler = cgj if own else admin  # the admin stands in for the other departments
    if action == "register":
        return services.incident_register(incident=case, by=street, note="")
    if action == "dispatch":
        return services.incident_dispatch(
            incident=case, by=street, department_code=category.department_code, note="请尽快处置"
        )
    if action == "accept":
        return services.incident_accept(incident=case, by=handler)
    if action == "handle":
        return services.incident_handle(incident=case, by=handler, note="已安排人员到场")
    if action == "feed_back":
        return services.incident_feed_back(
            incident=case, by=handler, feedback="已处置完毕，现场恢复正常"
        )
    if action == "verify":
        return services.incident_verify(incident=case, by=street, passed=True, note="现场已核实")
    if action == "close":
        return services.incident_close(incident=case, by=street)
    raise ValueError(action)


if not Incident.objects.filter(description=FEATURED).exists():
    with mock.patch("django.utils.timezone.now", lambda: clock["now"]):
        for code, text, address, outcome, ago in CASES:
            category = Category.objects.get(code=code)
            at(ago)
            lon, lat = point_in(rng.choice(grids))
            case = services.incident_report(
                channel=rng.choice([Channel.HOTLINE_12345, Channel.HOTLINE_12345, Channel.CITIZEN]),
                category=category,
                lon=lon,
                lat=lat,
                description=text,
                address=address,
                reporter_name=rng.choice(CALLERS),
                reporter_phone=f"13{rng.randint(100000000, 999999999)}",
            )
            minute = float(ago)
            for action in LOOP[: REACHED[outcome]]:
                minute = max(minute - rng.randint(5, 22), 1.0)
                at(minute)
                case = step(case, action, category)
            at(max(minute - 4, 0.5))
            if outcome == "parked":
                services.incident_park(incident=case, by=street, reason="需协调产权单位，待排期")
            elif outcome == "returned":
                services.incident_send_back(
                    incident=case,
                    by=cgj if category.department_code == "CGJ" else admin,
                    reason_code="not_our_jurisdiction",
                    reason="",
                )
            elif outcome == "extension":
                services.incident_request_extension(
                    incident=case,
                    by=cgj if category.department_code == "CGJ" else admin,
                    until=case.stage_deadline + timedelta(days=2),
                    reason="需更换路面材料，预计两天后施工",
                )

        # The case of the case-page screenshot: a pile of rubbish bags at a street corner, a
        # neighbour's earlier call about the same pile, fed back by 城管 with photos.
        rubbish = Category.objects.get(code="06010")
        corner = next(g for g in grids if g.code.endswith("002003"))
        lon, lat = point_in(corner)
        at(215)
        services.incident_report(
            channel=Channel.HOTLINE_12345,
            category=rubbish,
            lon=lon + 0.0002,
            lat=lat + 0.0001,
            description="路口有人丢弃大量垃圾袋",
            address="人民路与和平路交叉口",
            reporter_name="黄女士",
            reporter_phone="13760012345",
        )
        at(190)
        case = services.incident_report(
            channel=Channel.CITIZEN,
            category=rubbish,
            lon=lon,
            lat=lat,
            description=FEATURED,
            address="人民路与和平路交叉口西南角",
            reporter_name="陈先生",
            reporter_phone="13800138000",
        )
        incident_photo_add(
            incident=case,
            kind=PhotoKind.BEFORE,
            upload=photo("before.jpg", cleared=False),
            by=street,
        )
        for minutes, action in (
            (178, "register"),
            (171, "dispatch"),
            (150, "accept"),
            (120, "handle"),
            (22, "feed_back"),
        ):
            at(minutes)
            case = step(case, action, rubbish)
            if action == "feed_back":
                incident_photo_add(
                    incident=case,
                    kind=PhotoKind.AFTER,
                    upload=photo("after.jpg", cleared=True),
                    by=cgj,
                )

featured = Incident.objects.filter(description=FEATURED).first()
print(
    f"consoles demo: {Incident.objects.filter(street_code='440309001').count()} cases in 龙华街道"
)
print(featured.number if featured else "")
