"""The departments (职能部门) a department handler belongs to and a case is dispatched to: their
codes and names, shipped as data (accounts/data/departments.csv). There is no department model:
a handler's account and a dispatched case carry the code, and this list says which codes exist.

Here, below incidents, so that both the accounts admin (a handler's department) and incidents
(dispatch, a category's default department) check against the same list.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

DEPARTMENTS_FILE = Path(__file__).resolve().parent / "data" / "departments.csv"


def read_departments(path: Path = DEPARTMENTS_FILE) -> dict[str, str]:
    """Department code → full name, in the file's order."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["code"]: row["name"] for row in csv.DictReader(handle)}


@functools.cache
def known_departments() -> dict[str, str]:
    """read_departments() of the data shipped with the code, read once per process (the file
    changes only with a deployment)."""
    return read_departments()
