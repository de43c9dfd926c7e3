"""The shipped category catalogue: read the data files and derive CityOps' local defaults.

Inputs (incidents/data/, provenance in docs/incidents.md):

* event_categories.csv — the 97 事件 matters of GB/T 47678.5-2026 (classes 06–10), with an
  inferred Longhua department text and, for six rows, handling limits cited from other cities'
  manuals.
* component_categories.csv — the 153 部件 (classes 01–05); each becomes the matter
  "<部件名>异常" under the same code.
* emergency_categories.csv — CityOps' local 突发事件 class 90, with default severity, department
  and handling limit.
* category_names_en.csv — CityOps' English names of the major classes (2-digit codes), the
  components and the matters, each beside the Chinese it translates (ADR 0016).

Departments (codes and names) are accounts' data (accounts.departments): a category's default
department must be one of them.

Nothing here touches the database: `read_catalogue()` returns plain values that
incidents.services.categories_load stores. Every rule below is a *local setting*, editable per
category in the admin afterwards; the comments say why each was chosen.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

from accounts.departments import DEPARTMENTS_FILE, known_departments
from incidents.models import (
    EMERGENCY_MAJOR_CODE,
    EMERGENCY_MAJOR_NAME,
    STAGE_ORDER,
    CategoryKind,
    LimitBasis,
    Severity,
    Stage,
    TimeUnit,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
EVENTS_FILE = "event_categories.csv"
COMPONENTS_FILE = "component_categories.csv"
EMERGENCIES_FILE = "emergency_categories.csv"
NAMES_EN_FILE = "category_names_en.csv"

LOCAL_SOURCE = "本地扩展（CityOps）：GB/T 47678.5-2026 未设突发事件类，本类代码90xxx仅用于本系统"
COMPONENT_DEPARTMENT_NOTE = "按部件权属推定，非标准内容"


class CatalogueError(Exception):
    """The shipped data is inconsistent (unknown department, bad row); names file and row."""


@dataclass(frozen=True)
class LimitDefault:
    stage: str
    amount: int
    unit: str
    basis: str = LimitBasis.LOCAL
    source_text: str = ""
    note: str = ""


@dataclass(frozen=True)
class CategoryDefault:
    code: str
    name: str
    kind: str
    major_code: str
    major_name: str
    source: str
    department_code: str
    department_text: str
    limits: tuple[LimitDefault, ...]
    component_name: str = ""
    is_local: bool = False
    default_severity: str = ""
    department_inferred: bool = True
    name_en: str = ""
    major_name_en: str = ""
    component_name_en: str = ""


# --- departments ---------------------------------------------------------------------------

# The event CSV names departments in free text, first the one that acts ("街道办事处(城市管理和
# 综合执法队) / 龙华区城市管理和综合执法局"). The first department named decides the code; the
# order matters where one name contains another (公安交警 is 交警, not 公安).
EVENT_DEPARTMENT_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("城市管理和综合执法", "CGJ"),
    ("城管", "CGJ"),
    ("住房和建设", "ZJJ"),
    ("建筑工务署", "GWS"),
    ("水务", "SWJ"),
    ("生态环境", "STHJ"),
    ("交警", "JJ"),
    ("交通运输", "JTJ"),
    ("卫生健康", "WJJ"),
    ("规划和自然资源", "GHZY"),
    ("民政", "MZJ"),
    ("文化广电旅游体育", "WTJ"),
    ("消防", "XF"),
    ("市场监督管理", "SCJG"),
    ("通信运营商", "TX"),
    ("供电", "GDJ"),
    ("公安", "GA"),
    ("街道办事处", "JD"),
)

# Components carry no department in the data: the owner of the thing fixes it. First match on
# the component's name wins; unmatched names fall back by major class below.
COMPONENT_DEPARTMENT_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("燃气", "输油"), "RQ"),
    (("电力", "电缆", "变压器", "高压线"), "GDJ"),
    # Street lighting is run by 城管 in Shenzhen.
    (("路灯", "地灯", "景观灯"), "CGJ"),
    (("信号灯", "交通信号", "交通岗亭", "交通标志", "限高架"), "JJ"),
    (("通信", "电视井盖", "网络井盖", "电话亭"), "TX"),
    (("公安", "治安岗亭", "监控电子眼", "紧急报警点"), "GA"),
    (("消防",), "XF"),
    (
        (
            "供水",
            "污水",
            "雨水",
            "中水",
            "化粪池",
            "沟槽盖板",
            "水井",
            "水塔",
            "水鹤",
            "防汛",
            "排水泵站",
            "跨河管道",
            "水域",
        ),
        "SWJ",
    ),
    (("热力", "供热", "综合管廊"), "ZJJ"),
    (
        (
            "公交",
            "出租车",
            "停车",
            "立体车库",
            "轨道交通",
            "铁道口",
            "铁路桥涵",
            "过街天桥",
            "地下通道",
            "立交桥",
            "跨河桥",
            "公路隧道",
            "交通护栏",
            "防撞桶",
            "安全岛",
            "人行横道桩",
            "便道桩",
            "柔性隔离体",
            "道路信息显示屏",
            "道路隔音屏",
            "非机动车停放点",
            "自行车租赁点",
            "存车支架",
            "交通反视镜",
            "减速带",
            "栈桥",
            "港监",
        ),
        "JTJ",
    ),
    # Place-name signs and door plates: 地名管理 sits with planning and natural resources.
    (("路名牌", "地名牌", "门（楼号）牌"), "GHZY"),
    (("应急避难",), "YJGLJ"),
    (("救助站",), "MZJ"),
    (("文物", "景区", "户外健身"), "WTJ"),
    (("气象",), "QXJ"),
    (("环保监测", "噪声显示屏"), "STHJ"),
    # 防蚊闸 keep mosquitoes out of drains: 病媒生物防制 is a health matter.
    (("防蚊闸",), "WJJ"),
    (("充电桩",), "FGJ"),
    (("综合杆",), "GXJ"),
    # Lifts are special equipment (特种设备), supervised by market regulation.
    (("公用电梯",), "SCJG"),
    (("加油",), "YJGLJ"),
    (("公房",), "ZJJ"),
    # Owner unknown or private operator: the street of the place takes it (属地兜底).
    (("特殊", "不明", "旗杆", "邮筒", "快递柜", "自助缴费机"), "JD"),
)
COMPONENT_DEPARTMENT_FALLBACK: dict[str, str] = {
    "01": "CGJ",  # 市政公用设施: 城管 runs most street furniture
    "02": "JTJ",  # 交通设施: road facilities are maintained by 交通运输
    "03": "CGJ",  # 市容环卫设施
    "04": "CGJ",  # 园林绿化设施: 园林 is part of 城管 in Shenzhen
    "05": "JD",  # 其他管理部件
}


def event_department_code(text: str) -> str:
    first = text.split("/")[0]
    for keyword, code in EVENT_DEPARTMENT_KEYWORDS:
        if keyword in first:
            return code
    raise CatalogueError(f"no department code for {text!r}: add a keyword to the catalogue")


def component_department_code(name: str, major_code: str) -> str:
    for keywords, code in COMPONENT_DEPARTMENT_RULES:
        if any(keyword in name for keyword in keywords):
            return code
    try:
        return COMPONENT_DEPARTMENT_FALLBACK[major_code]
    except KeyError:
        raise CatalogueError(f"no department rule for component class {major_code}") from None


# --- time limits ------------------------------------------------------------------------------

# Handling (处置) limits cited by the event CSV (other cities' manuals, not Shenzhen rules). Where
# a row cites several figures, the shortest one for completing the job is adopted.
SOURCED_HANDLE_LIMITS: dict[str, tuple[int, str, str]] = {
    "06001": (15, TimeUnit.WORKING_DAYS, "采用济源“拆除15工作日”（另一市拆除为20工作日）"),
    "06010": (4, TimeUnit.WORKING_HOURS, "采用另一市“4工作时”（济源为1工作日）"),
    "06011": (2, TimeUnit.WORKING_DAYS, "采用另一市渣土“2工作日”（济源为4工作日）"),
    "06012": (2, TimeUnit.WORKING_HOURS, "采用另一市道路保洁“2工作时”（济源为5工作时）"),
    "06017": (4, TimeUnit.WORKING_HOURS, "采用另一市绿地保洁“4工作时”"),
    "06025": (15, TimeUnit.WORKING_DAYS, "采用济源“15工作日”（唯一出处）"),
}

Rule = tuple[tuple[str, ...], int, str, str]

# Local handling limits for events, first match on the matter's name.
EVENT_HANDLE_RULES: tuple[Rule, ...] = (
    (
        ("焚烧", "露天烧烤", "占用消防通道"),
        2,
        TimeUnit.WORKING_HOURS,
        "火灾隐患，从快处置",
    ),
    (
        ("架空线缆脱落", "道路积雪"),
        12,
        TimeUnit.CALENDAR_HOURS,
        "人身安全隐患，昼夜计时",
    ),
    (
        (
            "暴露垃圾",
            "道路不洁",
            "道路遗撒",
            "绿地脏乱",
            "满溢",
            "动物尸体",
            "滩不洁",
            "乱堆杂物",
            "绿化弃料",
            "沿街晾挂",
            "废弃家具",
        ),
        4,
        TimeUnit.WORKING_HOURS,
        "清扫保洁类，半日内完成",
    ),
    (
        (
            "游商",
            "占道经营",
            "店外经营",
            "占道洗车",
            "占道促销",
            "乱停放",
            "共享单车",
            "早（夜）市",
            "流浪乞讨",
            "畜力车",
            "履带车",
        ),
        2,
        TimeUnit.WORKING_HOURS,
        "流动性强，到场劝离或处置",
    ),
    (
        (
            "私搭乱建",
            "违章接坡",
            "违章开设道口",
            "非法占绿毁绿",
            "占用河道",
            "无证建设",
            "非正规垃圾填埋场",
            "违规设置停车场",
            "违规占用桥下空间",
        ),
        15,
        TimeUnit.WORKING_DAYS,
        "违法建设、占用类，需立案查处、限期整改",
    ),
    (
        ("油烟", "噪声", "污染", "乱倒乱排", "扬尘", "扰民", "医疗废物", "非法伐树", "屠宰"),
        1,
        TimeUnit.WORKING_DAYS,
        "污染、扰民与违法行为，次一工作日内查处",
    ),
    (("小广告", "散发广告"), 1, TimeUnit.WORKING_DAYS, "清除类，次一工作日内完成"),
    (("破损", "缺损", "不清晰", "污损"), 5, TimeUnit.WORKING_DAYS, "设施修复类"),
)
EVENT_HANDLE_DEFAULT = (3, TimeUnit.WORKING_DAYS, "一般事件")

# Local handling limits for component matters ("<部件>异常"), first match on the component.
COMPONENT_HANDLE_RULES: tuple[Rule, ...] = (
    # Signs and plates first: a damaged sign on a power box is not a hazard like the box.
    (
        ("标识牌", "标志", "指示牌", "公示牌", "路名牌", "地名牌"),
        5,
        TimeUnit.WORKING_DAYS,
        "标识标牌修复",
    ),
    (
        ("井盖", "箅子", "沟槽盖板"),
        24,
        TimeUnit.CALENDAR_HOURS,
        "缺失、破损有坠落风险，昼夜计时",
    ),
    (("燃气", "输油"), 4, TimeUnit.CALENDAR_HOURS, "燃气、油气设施异常，昼夜计时"),
    (("交通信号",), 4, TimeUnit.CALENDAR_HOURS, "信号故障影响通行安全，昼夜计时"),
    (
        ("电力设施", "变压器", "高压线铁塔", "公用电梯", "消防设施"),
        24,
        TimeUnit.CALENDAR_HOURS,
        "安全隐患，昼夜计时",
    ),
    (("古树名木", "行道树", "独立树"), 1, TimeUnit.WORKING_DAYS, "树木倒伏、断枝"),
    (("路灯", "景观灯", "地灯"), 3, TimeUnit.WORKING_DAYS, "照明设施修复"),
)
COMPONENT_HANDLE_DEFAULT = (5, TimeUnit.WORKING_DAYS, "部件修复或更换")

# The other stages follow the clock of the handling limit: a case handled on the calendar clock
# (a hazard) is registered, dispatched and accepted on it too; emergencies in minutes.
WORKING_STAGES: dict[str, tuple[int, str]] = {
    Stage.REGISTER: (1, TimeUnit.WORKING_HOURS),
    Stage.DISPATCH: (1, TimeUnit.WORKING_HOURS),
    Stage.ACCEPT: (2, TimeUnit.WORKING_HOURS),
    Stage.VERIFY: (4, TimeUnit.WORKING_HOURS),
}
URGENT_STAGES: dict[str, tuple[int, str]] = {
    Stage.REGISTER: (30, TimeUnit.CALENDAR_MINUTES),
    Stage.DISPATCH: (30, TimeUnit.CALENDAR_MINUTES),
    Stage.ACCEPT: (1, TimeUnit.CALENDAR_HOURS),
    Stage.VERIFY: (4, TimeUnit.CALENDAR_HOURS),
}
EMERGENCY_STAGES: dict[str, tuple[int, str]] = {
    Stage.REGISTER: (10, TimeUnit.CALENDAR_MINUTES),
    Stage.DISPATCH: (10, TimeUnit.CALENDAR_MINUTES),
    Stage.ACCEPT: (5, TimeUnit.CALENDAR_MINUTES),
    Stage.VERIFY: (2, TimeUnit.CALENDAR_HOURS),
}
STAGE_NOTES = {
    "working": "本地设定：普通事项按工作时计",
    "urgent": "本地设定：处置昼夜计时的事项，各环节亦昼夜计时",
    "emergency": "本地设定：突发事件按分钟/小时昼夜计时",
}


def _match(
    name: str, rules: tuple[Rule, ...], default: tuple[int, str, str]
) -> tuple[int, str, str]:
    for keywords, amount, unit, note in rules:
        if any(keyword in name for keyword in keywords):
            return amount, unit, note
    return default


def _limits(
    handle: LimitDefault, stages: dict[str, tuple[int, str]], stage_note: str
) -> tuple[LimitDefault, ...]:
    limits = []
    for stage in STAGE_ORDER:
        if stage == Stage.HANDLE:
            limits.append(handle)
        else:
            amount, unit = stages[stage]
            limits.append(LimitDefault(stage, amount, unit, note=stage_note))
    return tuple(limits)


def _handle_limit(
    code: str,
    name: str,
    rules: tuple[Rule, ...],
    default: tuple[int, str, str],
    cited: str = "",
    cited_source: str = "",
) -> LimitDefault:
    source_text = f"{cited}（出处：{cited_source}）" if cited else ""
    if cited and code in SOURCED_HANDLE_LIMITS:
        amount, unit, adopted = SOURCED_HANDLE_LIMITS[code]
        return LimitDefault(
            Stage.HANDLE, amount, unit, LimitBasis.SOURCED, source_text, adopted[:200]
        )
    amount, unit, note = _match(name, rules, default)
    # A cited figure not (yet) adopted stays visible beside the local value.
    return LimitDefault(
        Stage.HANDLE, amount, unit, LimitBasis.LOCAL, source_text, f"本地设定：{note}"
    )


def _stages_for(handle: LimitDefault) -> tuple[dict[str, tuple[int, str]], str]:
    if handle.unit in (TimeUnit.WORKING_HOURS, TimeUnit.WORKING_DAYS):
        return WORKING_STAGES, STAGE_NOTES["working"]
    return URGENT_STAGES, STAGE_NOTES["urgent"]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [
            {key: (value or "").strip() for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]


# --- English names ------------------------------------------------------------------------------

# The standard's matter of a component is "<部件名>异常"; in English, "<component> problem".
COMPONENT_MATTER_EN = "{component} problem"


def _with_english_names(
    categories: list[CategoryDefault], rows: list[dict[str, str]]
) -> list[CategoryDefault]:
    """`categories` with their English names from category_names_en.csv. Each row names the
    Chinese it translates — a major class (2-digit code), a component (its matter's code) or a
    matter — and a row whose Chinese is not the catalogue's is refused: the standard's data
    changed under it, and an English name of something else is worse than none. A category or
    class the file leaves out keeps blank English names (pages show the Chinese); a row of a code
    the catalogue no longer has is not used (that category is deactivated by the load)."""
    translating: dict[str, str] = {}
    for category in categories:
        translating.setdefault(category.major_code, category.major_name)
        translating[category.code] = category.component_name or category.name
    english: dict[str, str] = {}
    for row in rows:
        code, name, name_en = row["code"], row["name"], row["name_en"]
        if code not in translating:
            continue
        if name != translating[code]:
            raise CatalogueError(
                f"{NAMES_EN_FILE}: {code} translates {name!r}, but the catalogue names it "
                f"{translating[code]!r}: translate the new name"
            )
        if code in english:
            raise CatalogueError(f"{NAMES_EN_FILE}: {code} appears twice")
        english[code] = name_en
    named = []
    for category in categories:
        name_en = english.get(category.code, "")
        component_en = ""
        if category.component_name:
            component_en = name_en
            # A matter named otherwise than "<部件名>异常" has no English name of its own here.
            standard = category.name == f"{category.component_name}异常"
            name_en = (
                COMPONENT_MATTER_EN.format(component=component_en)
                if (component_en and standard)
                else ""
            )
        named.append(
            replace(
                category,
                name_en=name_en,
                major_name_en=english.get(category.major_code, ""),
                component_name_en=component_en,
            )
        )
    return named


def read_catalogue(data_dir: Path = DATA_DIR) -> list[CategoryDefault]:
    """Every category with its defaults, in code order; raises CatalogueError on bad data."""
    departments = known_departments()
    categories: list[CategoryDefault] = []

    for row in _read_csv(data_dir / COMPONENTS_FILE):
        code, component = row["matter_code_when_abnormal"] or row["code"], row["minor_category"]
        department = component_department_code(component, code[:2])
        handle = _handle_limit(code, component, COMPONENT_HANDLE_RULES, COMPONENT_HANDLE_DEFAULT)
        stages, stage_note = _stages_for(handle)
        categories.append(
            CategoryDefault(
                code=code,
                name=row["matter_name_when_abnormal"] or f"{component}异常",
                kind=CategoryKind.COMPONENT,
                major_code=code[:2],
                major_name=row["major_category"],
                component_name=component,
                source=row["code_and_names_source"],
                department_code=department,
                department_text=f"{departments[department].name}（{COMPONENT_DEPARTMENT_NOTE}）",
                limits=_limits(handle, stages, stage_note),
            )
        )

    for row in _read_csv(data_dir / EVENTS_FILE):
        code, name = row["code"], row["minor_category"]
        handle = _handle_limit(
            code,
            name,
            EVENT_HANDLE_RULES,
            EVENT_HANDLE_DEFAULT,
            cited=row["typical_deadline"],
            cited_source=row["deadline_source"],
        )
        stages, stage_note = _stages_for(handle)
        categories.append(
            CategoryDefault(
                code=code,
                name=name,
                kind=CategoryKind.EVENT,
                major_code=code[:2],
                major_name=row["major_category"],
                source=row["code_and_names_source"],
                department_code=event_department_code(row["typical_handling_department"]),
                department_text=row["typical_handling_department"][:200],
                limits=_limits(handle, stages, stage_note),
            )
        )

    for row in _read_csv(data_dir / EMERGENCIES_FILE):
        code = row["code"]
        if not code.startswith(EMERGENCY_MAJOR_CODE):
            raise CatalogueError(f"{EMERGENCIES_FILE}: {code} is outside the local class 90")
        if row["default_severity"] not in Severity.values:
            raise CatalogueError(
                f"{EMERGENCIES_FILE}: {code} has severity {row['default_severity']!r}"
            )
        if row["handle_unit"] not in TimeUnit.values:
            raise CatalogueError(f"{EMERGENCIES_FILE}: {code} has unit {row['handle_unit']!r}")
        handle = LimitDefault(
            Stage.HANDLE,
            int(row["handle_amount"]),
            row["handle_unit"],
            note=f"本地设定：{row['note']}",
        )
        categories.append(
            CategoryDefault(
                code=code,
                name=row["name"],
                kind=CategoryKind.EMERGENCY,
                major_code=EMERGENCY_MAJOR_CODE,
                major_name=EMERGENCY_MAJOR_NAME,
                source=LOCAL_SOURCE,
                is_local=True,
                default_severity=row["default_severity"],
                department_code=row["department_code"],
                department_text=row["department_text"],
                limits=_limits(handle, EMERGENCY_STAGES, STAGE_NOTES["emergency"]),
            )
        )

    categories = _with_english_names(categories, _read_csv(data_dir / NAMES_EN_FILE))

    seen: set[str] = set()
    for category in categories:
        if category.code in seen:
            raise CatalogueError(f"category code {category.code} appears twice")
        seen.add(category.code)
        if category.department_code not in departments:
            raise CatalogueError(
                f"{category.code}: department {category.department_code} is not in "
                f"{DEPARTMENTS_FILE.name} (accounts.departments)"
            )
    return sorted(categories, key=lambda category: category.code)
