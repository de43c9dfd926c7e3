"""Small synthetic region hierarchies near Longhua for import and validation tests."""

from __future__ import annotations

from typing import Any

import shapely

from gridmap.models import LEVEL_ORDER, Level

X0, Y0, D = 114.0, 22.7, 1e-3  # origin near Longhua; one cell ≈ 103 m × 111 m
DISTRICT = "440309"


def cells(x0: float, y0: float, x1: float, y1: float) -> Any:
    """A rectangle given in cell units from the origin (1 cell = 1e-3°)."""
    return shapely.box(X0 + x0 * D, Y0 + y0 * D, X0 + x1 * D, Y0 + y1 * D)


def clean_layout() -> dict[str, dict[str, Any]]:
    """level → {code: geometry} for a clean 1 + 2 + 4 + 8 partition."""
    layout: dict[str, dict[str, Any]] = {level: {} for level in LEVEL_ORDER}
    layout[Level.DISTRICT][DISTRICT] = cells(0, 0, 4, 2)
    for s in range(2):
        street = f"{DISTRICT}{s + 1:03d}"
        layout[Level.STREET][street] = cells(2 * s, 0, 2 * s + 2, 2)
        for c in range(2):
            community = f"{street}{c + 1:03d}"
            x = 2 * s + c
            layout[Level.COMMUNITY][community] = cells(x, 0, x + 1, 2)
            for g in range(2):
                layout[Level.GRID][f"{community}{g + 1:03d}"] = cells(x, g, x + 1, g + 1)
    return layout
