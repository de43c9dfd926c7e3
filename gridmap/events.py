"""Events the geography publishes, one function per event type; each is listed, with its payload,
scopes and delivery guarantee, in docs/realtime.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gridmap.models import Generation, Level, Region


def district_scopes(generation: Generation) -> list[str]:
    """The scope of the generation's district ("district:440309"): everyone in the district may
    know that its boundaries changed."""
    codes = Region.objects.filter(generation=generation, level=Level.DISTRICT).values_list(
        "code", flat=True
    )
    return [f"district:{code}" for code in codes]


def generation_activated(
    *, generation: Generation, retired: Sequence[Generation]
) -> dict[str, Any]:
    """gridmap.generation_activated: a new set of boundaries is live; screens reload the map."""
    return {
        "number": generation.number,
        "label": generation.label,
        "synthetic": generation.synthetic,
        "activated_at": generation.activated_at,
        "retired": [g.number for g in retired],
    }
