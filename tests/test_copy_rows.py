"""config.db_backends.bulk: a COPY line is written without escaping only when nothing in it
needs escaping, and is then the very line the escaping formatter makes; a value set into a
prepared row (incidents.services.bulk._Prepared.set) leaves its line what the formatter makes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.contrib.gis.db.backends.postgis.adapter import PostGISAdapter
from django.contrib.gis.geos import Point
from django.db import connection
from psycopg.types.json import Jsonb

from config.db_backends.bulk import _copy_text_formatter, _copy_unescaped_line, copy_line
from incidents.models import Incident, IncidentStatus
from incidents.services.bulk import _Prepared

AT = datetime(2026, 11, 25, 8, 30, 1, 250000, tzinfo=UTC)
POINT = PostGISAdapter(Point(114.03, 22.65, srid=4326))


def escaped(row: list[object]) -> str:
    field = _copy_text_formatter()
    return "\t".join(field(value) for value in row)  # type: ignore[misc]


@pytest.mark.parametrize(
    "row",
    [
        ["LH-20261125-000001", None, 3, 1.5, True, AT, date(2026, 11, 25), POINT],
        [IncidentStatus.REPORTED, "道路积水", None, None, False],
        [Jsonb({"channel": "sensor", "n": [1, 2.5], "ok": None}), 7],
        [None],
        [""],
    ],
)
def test_a_row_needing_no_escape_is_the_formatter_s_line(row):
    assert _copy_unescaped_line()(row) == escaped(row)


@pytest.mark.parametrize(
    "row",
    [
        ["tab\tinside", None],
        ["back\\slash", 1],
        ["\\N", 2],  # the text \N, not NULL
        ["line\nbreak"],
        ["carriage\rreturn", None],
        [Jsonb({"quote": 'say "hi"'})],  # JSON escapes the quote with a backslash
        [Jsonb({"说明": "积水"})],  # json.dumps escapes non-ASCII text by default
        [None, "a\\"],  # a backslash beside a NULL: counts differ
    ],
)
def test_a_row_needing_an_escape_goes_the_escaping_way(row):
    assert _copy_unescaped_line()(row) is None
    assert escaped(row).count("\t") == len(row) - 1  # escaped: one tab per gap


def test_a_value_of_a_type_not_converted_here_goes_the_escaping_way():
    geography = PostGISAdapter(Point(114.03, 22.65, srid=4326), geography=True)
    assert _copy_unescaped_line()([1, geography]) is None
    assert _copy_unescaped_line()([1, object()]) is None


@pytest.mark.parametrize(
    ("row", "name", "value"),
    [
        (["c0ffee:0", "积水", 0], "number", "LH-20261125-000001"),  # swapped in the line
        (["x", "x marks the spot", 0], "number", "LH-1"),  # the old text twice: made again
        (["a\\b", "d", 0], "number", "LH-2"),  # the old text escaped in the line
        (["s", "d", 0], "number", "tab\there"),  # the new text needs escaping
        (["", "d", 0], "number", "LH-3"),
        (["s", "d", 0], "repeat_count", 4),  # not text
    ],
)
def test_a_value_set_after_prepare_leaves_the_line_the_formatter_makes(row, name, value):
    fields = [Incident._meta.get_field(name) for name in ("number", "description", "repeat_count")]
    prepared = _Prepared(
        Incident,
        connection,
        [(i, field, True, False) for i, field in enumerate(fields)],
        ["%s"] * 3,
        [list(row)],
        [copy_line(row)],
    )

    prepared.set(0, name, value)

    assert value in prepared.params[0]
    assert prepared.lines == [copy_line(prepared.params[0])]
