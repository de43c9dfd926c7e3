"""The departments (职能部门) a department handler belongs to and a case is dispatched to: their
codes and names, shipped as data (accounts/data/departments.csv). There is no department model:
a handler's account and a dispatched case carry the code, and this list says which codes exist.

Each department has a full and a short name in Chinese and in English ("龙华区水务局" / "水务",
"Longhua District Water Affairs Bureau" / "Water Affairs"); pages name a department in the
reader's language through `department_name` (config.languages, ADR 0016), and an English name
left blank in the file reads as the Chinese.

Here, below incidents, so that both the accounts admin (a handler's department) and incidents
(dispatch, a category's default department) check against the same list.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import pgettext

from config.languages import in_reader_language

DEPARTMENTS_FILE = Path(__file__).resolve().parent / "data" / "departments.csv"


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    short_name: str
    name_en: str = ""
    short_name_en: str = ""

    @property
    def label(self) -> str:
        """The full name in the reader's language."""
        return in_reader_language(self.name, self.name_en)

    @property
    def short_label(self) -> str:
        """The short name in the reader's language ("水务", "Water Affairs")."""
        return in_reader_language(self.short_name, self.short_name_en)


def read_departments(path: Path = DEPARTMENTS_FILE) -> dict[str, Department]:
    """Department code → department, in the file's order."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {
            row["code"]: Department(
                code=row["code"],
                name=row["name"],
                short_name=row["short_name"],
                name_en=(row.get("name_en") or "").strip(),
                short_name_en=(row.get("short_name_en") or "").strip(),
            )
            for row in csv.DictReader(handle)
        }


@functools.cache
def known_departments() -> dict[str, Department]:
    """read_departments() of the data shipped with the code, read once per process (the file
    changes only with a deployment)."""
    return read_departments()


def department_names() -> dict[str, str]:
    """Department code → full name in the reader's language, in the file's order."""
    return {code: department.label for code, department in known_departments().items()}


def department_short_names() -> dict[str, str]:
    """Department code → short name in the reader's language ("水务", "Water Affairs"), for
    where a full name does not fit (a queue's column)."""
    return {code: department.short_label for code, department in known_departments().items()}


def department_short_names_text(codes: Iterable[str]) -> str:
    """Departments by their short names in the reader's language, as a list reads in the
    page's language ("应急、街道、交警" / "Emergency Management, Street Office"); a code that is
    not a department as it is."""
    names = department_short_names()
    return pgettext("list separator", "、").join(names.get(code, code) for code in codes)


def department_name(code: str) -> str:
    """The full name of the department `code` in the reader's language; "" for a code that is
    not a department."""
    department = known_departments().get(code)
    return department.label if department is not None else ""
