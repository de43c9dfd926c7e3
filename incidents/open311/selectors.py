"""The reads behind Open311: active categories as services, the public list of cases (a page
of it), and when what discovery describes last changed.

Open311's GET requests is public by the standard: anyone may follow the district's cases, so
these reads are deliberately not scoped to a user (incidents.selectors is for users). What such
a reader may see of a case is limited by serializers.request_out (ADR 0009).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, QuerySet

from incidents.models import FINISHED_STATUSES, Category, Incident, StageLimit
from incidents.open311.serializers import CLOSED, OPEN

# GeoReport v2: "Default query limit is a span of 90 days or first 1000 requests returned,
# whichever is smallest." With the paging extension it is also the largest page.
MAX_REQUESTS = 1000
ONE_SECOND = timedelta(seconds=1)


def open311_services() -> QuerySet[Category]:
    """The categories a client may report under: the active ones, by code."""
    return Category.objects.active().prefetch_related("limits").order_by("code")


def open311_service(code: str) -> Category | None:
    return Category.objects.active().prefetch_related("limits").filter(code=code).first()


def report_category(code: str) -> Category | None:
    """The category a POST names, active or not (the intake service refuses an inactive one,
    naming the field), with its limits for the answer's notice."""
    return Category.objects.prefetch_related("limits").filter(code=code).first()


def _public(cases: QuerySet[Incident]) -> QuerySet[Incident]:
    return cases.select_related("category", "merged_into").prefetch_related("category__limits")


def public_requests_by_number(numbers: Sequence[str]) -> list[Incident]:
    """The cases with these numbers (unknown numbers are left out), newest first."""
    return list(
        _public(Incident.objects.filter(number__in=list(numbers))).order_by("-created_at", "-id")
    )


@dataclass(frozen=True)
class RequestPage:
    cases: list[Incident]
    has_next: bool  # at least one case follows this page


def public_requests(
    *,
    start: datetime,
    end: datetime,
    service_codes: Sequence[str] = (),
    statuses: Sequence[str] = (),
    page: int = 1,
    page_size: int | None = None,
) -> RequestPage:
    """Cases received in [start, end], optionally of some categories and of some Open311
    statuses (open/closed), newest first: page `page` (from 1) of `page_size` (at most, and by
    default, MAX_REQUESTS) cases.

    The order is total — newest first, and among cases received in the same instant the later
    row first — so consecutive pages of one window neither overlap nor skip a case.

    Answers show whole seconds (requested_datetime), so an `end` in whole seconds takes in its
    whole second: a client that passes a requested_datetime it was shown finds that request.
    """
    size = MAX_REQUESTS if page_size is None else page_size
    if page < 1 or not 1 <= size <= MAX_REQUESTS:
        raise ValueError(f"page {page} of {size}: pages count from 1, 1 to {MAX_REQUESTS} each")
    if end.microsecond == 0:
        cases = Incident.objects.filter(created_at__gte=start, created_at__lt=end + ONE_SECOND)
    else:
        cases = Incident.objects.filter(created_at__gte=start, created_at__lte=end)
    if service_codes:
        cases = cases.filter(category__code__in=list(service_codes))
    wanted = set(statuses)
    if wanted == {CLOSED}:
        cases = cases.filter(status__in=sorted(FINISHED_STATUSES))
    elif wanted == {OPEN}:
        cases = cases.exclude(status__in=sorted(FINISHED_STATUSES))
    first = (page - 1) * size
    # One row past the page says whether another page follows, without counting the window.
    rows = list(_public(cases).order_by("-created_at", "-id")[first : first + size + 1])
    return RequestPage(cases=rows[:size], has_next=len(rows) > size)


def public_request(number: str) -> Incident | None:
    return _public(Incident.objects.filter(number=number)).first()


def known_service_codes(codes: Sequence[str]) -> set[str]:
    """Which of `codes` are category codes (active or not: old cases keep theirs)."""
    return set(Category.objects.filter(code__in=list(codes)).values_list("code", flat=True))


def services_changed_at() -> datetime | None:
    """The last change to what GET services answers: a category added, renamed, (de)activated
    or edited (its `updated_at`), or a stage limit — in every service's description — edited in
    the admin (its `edited_at`; StageLimit keeps no other time). None when there is neither."""
    categories = Category.objects.aggregate(latest=Max("updated_at"))["latest"]
    limits = StageLimit.objects.aggregate(latest=Max("edited_at"))["latest"]
    return max((moment for moment in (categories, limits) if moment is not None), default=None)
