"""Response plans (应急预案): which departments an emergency calls out at once (一键调派).

A plan belongs to one emergency category (突发事件: 内涝积水, 火灾, 燃气泄漏 …) and applies to its
cases from a severity up (`min_severity`, on the four levels of 《突发事件应对法》): the lead
department (牵头部门) the case is dispatched to, the supporting departments (协办部门) that are
called out with it and see the case from then on, and what each is expected to do. Plans are
shipped as data, as the departments are (dispatch/data/response_plans.csv, with an English
column beside each text): a district's plans are its emergency office's documents and change with
a deployment, not at a desk.

`plans_for(category_code, severity)` lists the plans that apply to a case, the gravest first (the
one to start), and `graver_plans` those that would raise it (升级响应);
dispatch.services.plan_activate starts one on a case.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from accounts.departments import known_departments
from config.languages import in_reader_language
from incidents.models import SEVERITY_ORDER

PLANS_FILE = Path(__file__).resolve().parent / "data" / "response_plans.csv"


@dataclass(frozen=True)
class ResponsePlan:
    code: str
    category_code: str
    min_severity: str
    name: str
    name_en: str
    lead: str
    supports: tuple[str, ...]
    instructions: str
    instructions_en: str

    @property
    def label(self) -> str:
        """The plan's name in the reader's language."""
        return in_reader_language(self.name, self.name_en)

    @property
    def instructions_label(self) -> str:
        return in_reader_language(self.instructions, self.instructions_en)

    def raises(self, severity: str) -> bool:
        """Whether starting the plan on a case of `severity` raises the case's severity to the
        plan's (升级响应: a graver response than the case was graded for)."""
        grade = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else -1
        return SEVERITY_ORDER.index(self.min_severity) > grade

    def lesser_than(self, code: str) -> bool:
        """Whether the plan is a lesser response than the plan `code` (a case's plan in force;
        "" or an unknown code: no plan, nothing is lesser)."""
        other = known_plans().get(code)
        return other is not None and SEVERITY_ORDER.index(self.min_severity) < SEVERITY_ORDER.index(
            other.min_severity
        )

    def applies_to(self, category_code: str, severity: str) -> bool:
        """Whether the plan is for a case of this category and severity ("" counts as the
        least grave level: a case without one is not graver than any plan asks)."""
        grade = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0
        return category_code == self.category_code and grade >= SEVERITY_ORDER.index(
            self.min_severity
        )


class PlanDataError(ValueError):
    """The shipped plans name a department, severity or plan twice or wrongly."""


def read_plans(path: Path = PLANS_FILE) -> dict[str, ResponsePlan]:
    """Plan code → plan, in the file's order; checked against the departments and severities
    (a plan calling out a department that does not exist would dispatch to nobody)."""
    departments = known_departments()
    plans: dict[str, ResponsePlan] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            supports = tuple(code.strip() for code in row["supports"].split(";") if code.strip())
            plan = ResponsePlan(
                code=row["code"].strip(),
                category_code=row["category_code"].strip(),
                min_severity=row["min_severity"].strip(),
                name=row["name"].strip(),
                name_en=row["name_en"].strip(),
                lead=row["lead"].strip(),
                supports=supports,
                instructions=row["instructions"].strip(),
                instructions_en=row["instructions_en"].strip(),
            )
            unknown = [code for code in (plan.lead, *supports) if code not in departments]
            if unknown:
                raise PlanDataError(f"plan {plan.code}: unknown departments {unknown}")
            if plan.min_severity not in SEVERITY_ORDER:
                raise PlanDataError(f"plan {plan.code}: unknown severity {plan.min_severity!r}")
            if plan.lead in supports or len(set(supports)) != len(supports):
                raise PlanDataError(f"plan {plan.code}: a department is called out twice")
            if plan.code in plans:
                raise PlanDataError(f"plan {plan.code} is in the file twice")
            plans[plan.code] = plan
    return plans


@functools.cache
def known_plans() -> dict[str, ResponsePlan]:
    """read_plans() of the data shipped with the code, read once per process."""
    return read_plans()


def plans_for(category_code: str, severity: str) -> list[ResponsePlan]:
    """The plans that apply to a case of this category and severity, the gravest first: the
    first is the one the case's severity calls for, the others are lesser responses."""
    applying = [plan for plan in known_plans().values() if plan.applies_to(category_code, severity)]
    return sorted(applying, key=lambda plan: -SEVERITY_ORDER.index(plan.min_severity))


def graver_plans(category_code: str, severity: str) -> list[ResponsePlan]:
    """The plans for the case's category graver than its severity, the least grave first: the
    responses it can be raised to (升级响应), each raising its severity to the plan's."""
    graver = [
        plan
        for plan in known_plans().values()
        if plan.category_code == category_code and plan.raises(severity)
    ]
    return sorted(graver, key=lambda plan: SEVERITY_ORDER.index(plan.min_severity))


def plan_as_dict(plan: ResponsePlan) -> dict[str, object]:
    """A plan as the API and the case page show it, its words in the reader's language."""
    departments = known_departments()
    return {
        "code": plan.code,
        "name": plan.label,
        "min_severity": plan.min_severity,
        "lead": {"code": plan.lead, "name": departments[plan.lead].short_label},
        "supports": [
            {"code": code, "name": departments[code].short_label} for code in plan.supports
        ],
        "instructions": plan.instructions_label,
    }
