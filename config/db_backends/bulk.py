"""Writing many rows of plain values fast, on both databases: what bulk intake and the outbox's
batch publishing share.

Django's bulk_create compiles SQL and converts every value one by one, and on PostgreSQL its
cursors bind client-side (each value quoted into the SQL text in Python — slow in psycopg's
pure-Python build, which CityOps uses, ADR 0003). Here:

* PostgreSQL: `COPY … FROM STDIN`. psycopg formats each row with the connection's dumpers
  (the ones Django registers: JSON as Jsonb, geometry through GeoDjango's PostGIS adapter) and
  sends the rows in a few large writes, instead of one protocol round of bind/execute per row.
  New ids come from the table's identity sequence beforehand (`reserve_ids`). A row's line
  can be made ahead (`copy_line`) and handed to `insert_rows(lines=…)`, so that work is done
  before a lock is taken.
* SQLite: one `executemany` of a single-row INSERT (SQLite runs in process; each row is a
  step of one prepared statement). Columns may carry an SQL expression around the parameter
  (`markers`, e.g. GeoDjango's `GeomFromEWKB(%s)`), which COPY has no need for.

Values must be what the field's `get_db_prep_save` returns (the caller converts); NULL is None.
Inside the caller's transaction; errors come wrapped as Django's database errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import cache
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model


def insert_rows(
    connection: BaseDatabaseWrapper,
    table: str,
    columns: Sequence[str | None],
    rows: Sequence[Sequence[Any]],
    *,
    markers: Sequence[str] | None = None,
    lines: Sequence[str | None] | None = None,
) -> None:
    """Insert `rows` (values in the order of `columns`, a model field's `column` each) into
    `table`. On PostgreSQL `lines` may give the rows' COPY lines made beforehand (`copy_line`,
    so the work can be done before a lock is taken)."""
    if not rows:
        return
    named = [column for column in columns if column is not None]
    if len(named) != len(columns):
        raise ValueError(f"a column of {table} has no name: {list(columns)}")
    quote = connection.ops.quote_name
    names = ", ".join(quote(column) for column in named)
    if connection.vendor == "postgresql":
        if lines is not None and len(lines) != len(rows):
            raise ValueError(f"{len(lines)} COPY lines for {len(rows)} rows of {table}")
        with (
            connection.wrap_database_errors,
            connection.connection.cursor() as cursor,  # type: ignore[attr-defined]
            cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy,
        ):
            chunk: list[str] = []
            for at, row in enumerate(rows):
                line = copy_line(row) if lines is None else lines[at]
                if line is None:  # a value of a type not formatted here: psycopg's dumpers
                    copy.write("".join(chunk).encode())
                    chunk = []
                    copy.write_row(row)
                    continue
                chunk.append(line + "\n")
            copy.write("".join(chunk).encode())
        return
    values = ", ".join(markers or ["%s"] * len(columns))
    with connection.cursor() as cursor:
        # Identifiers quoted from the models' metadata; every value is a query parameter.
        cursor.executemany(f"INSERT INTO {quote(table)} ({names}) VALUES ({values})", rows)  # noqa: S608


_OWN_VALUE = frozenset({int, str})


def increment_counters(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    key: str | tuple[str, ...],
    counter: str,
    keys: Sequence[Any],
    *,
    by: int | Sequence[int] = 1,
    defaults: dict[str, Any] | None = None,
) -> dict[Any, int]:
    """Add `by` (one number for every key, or one per key) to the `counter` field of the rows of
    `model` whose `key` field is each of `keys` (no key twice), creating a missing row with the
    counter at that number (and `defaults` for its other fields), in one statement: INSERT …
    (one row per key, in the order given) ON CONFLICT (key) DO UPDATE SET counter = counter +
    EXCLUDED.counter … RETURNING. Each row stays locked until the transaction ends (SQLite: the
    write lock), taken in the order of `keys`; give them in the same order everywhere. A key of
    several fields (a tuple of names, a unique constraint over them) takes tuples of values.
    Returns the new values by key as the database returns it (a date key comes back as text on
    SQLite).

    On PostgreSQL the rows come from `unnest` of one array per column, so the statement has a
    parameter per column rather than per value: for 1,000 keys of four fields, ≈4 ms of Python
    and 8.5-14 ms in all, against ≈9-10 and 18-23 ms as a VALUES list (bench/counter_bench.py).
    SQLite, in process, takes the VALUES list."""
    if not keys:
        return {}
    steps = [by] * len(keys) if isinstance(by, int) else list(by)
    if len(steps) != len(keys):
        raise ValueError(f"{len(keys)} keys but {len(steps)} increments")
    composite = not isinstance(key, str)
    key_names: tuple[str, ...] = (key,) if isinstance(key, str) else tuple(key)
    meta = model._meta
    quote = connection.ops.quote_name
    other = defaults or {}

    def concrete(name: str) -> Field[Any, Any]:
        return meta.get_field(name)  # type: ignore[return-value]

    key_fields = [concrete(name) for name in key_names]
    counter_field = concrete(counter)
    other_fields = [concrete(name) for name in other]
    counted = quote(str(counter_field.column))
    table = quote(meta.db_table)
    names = [quote(str(field.column)) for field in key_fields]
    columns = [*names, counted, *(quote(str(field.column)) for field in other_fields)]
    prepared = [
        field.get_db_prep_save(default, connection)
        for field, default in zip(other_fields, other.values(), strict=True)
    ]
    key_values = [
        [
            # An int or a str is its own database value (nothing to convert, 1,000s of keys).
            part if type(part) in _OWN_VALUE else field.get_db_prep_save(part, connection)
            for field, part in zip(key_fields, value if composite else (value,), strict=True)
        ]
        for value in keys
    ]
    params: list[Any]
    if connection.vendor == "postgresql":
        # Cast to the column's type without its length (`varchar`, not `varchar(100)`): an
        # explicit cast would cut a value that is too long, the insert refuses it.
        def base_type(field: Field[Any, Any]) -> str:
            return str(field.db_type(connection)).split("(")[0]

        arrays = [f"%s::{base_type(field)}[]" for field in (*key_fields, counter_field)]
        selected = ["*", *(f"%s::{base_type(field)}" for field in other_fields)]
        rows = f"SELECT {', '.join(selected)} FROM unnest({', '.join(arrays)})"  # noqa: S608
        params = [*prepared, *(list(column) for column in zip(*key_values, strict=True)), steps]
    else:
        row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        rows = f"VALUES {', '.join([row] * len(keys))}"
        params = []
        for values, step in zip(key_values, steps, strict=True):
            params.extend(values)
            params.append(step)
            params.extend(prepared)
    with connection.cursor() as cursor:
        cursor.execute(
            # Identifiers and types from the model's metadata; every value is a query parameter.
            f"INSERT INTO {table} ({', '.join(columns)}) {rows} "
            f"ON CONFLICT ({', '.join(names)}) DO UPDATE SET {counted} = {table}.{counted} + "
            f"EXCLUDED.{counted} "
            f"RETURNING {', '.join(names)}, {counted}",
            params,
        )
        if composite:
            return {tuple(found[:-1]): found[-1] for found in cursor.fetchall()}
        return dict(cursor.fetchall())


def reserve_ids(
    connection: BaseDatabaseWrapper, table: str, column: str | None, count: int
) -> list[int]:
    """`count` new values of an auto-increment primary key, in increasing order, for rows the
    caller then inserts with explicit ids (PostgreSQL only: an identity column's sequence;
    values taken and not used are skipped, as a rolled-back insert skips them)."""
    if connection.vendor != "postgresql":
        raise ValueError(f"reserve_ids needs PostgreSQL, not {connection.vendor}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [connection.ops.quote_name(table), column, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def copy_line(row: Sequence[Any]) -> str | None:
    """A row's line in COPY's text format (without its newline), or None when a value is of a
    type not formatted here (psycopg's dumpers then write the row)."""
    line = _copy_unescaped_line()(row)
    if line is None:
        field = _copy_text_formatter()
        texts = [field(value) for value in row]
        if None in texts:
            return None
        line = "\t".join(texts)  # type: ignore[arg-type]
    return line


def copy_plain(value: Any) -> bool:
    """Whether `value` is a str whose COPY text is itself (nothing to escape)."""
    return type(value) is str and not _needs_escape(value)


def _needs_escape(text: str) -> bool:
    return "\\" in text or "\t" in text or "\n" in text or "\r" in text


# COPY's text format: a row is its fields joined by tabs; \N is NULL; a backslash, tab, newline
# or carriage return inside a value is written as a backslash sequence.
def _copy_escape(value: str) -> str:
    # str.replace scans in C; str.translate looks every character up in a dict, 16 times slower
    # on Chinese text (a batch's event payloads: 25 ms of translate per 1,000). The backslash
    # goes first, so the ones the other escapes add are not doubled.
    if _needs_escape(value):
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return str(value)  # a str subclass (TextChoices) as its plain value


@cache
def _copy_converters() -> tuple[dict[type, Callable[[Any], str | None]], frozenset[type]]:
    """The COPY text of a value by its exact type, before escaping, for the types bulk inserts
    write (a converter's None: let psycopg's dumper do it); and the types whose text may need
    escaping (the others' never contain a backslash, tab or line break, but for NULL's \\N).
    psycopg's own formatter looks up a dumper for every value in Python; these few types are
    most of the cost of a batch."""
    from django.contrib.gis.db.backends.postgis.adapter import PostGISAdapter
    from psycopg.types.json import Jsonb

    def null(value: None) -> str:
        return "\\N"

    def boolean(value: bool) -> str:
        return "t" if value else "f"

    def jsonb(value: Jsonb) -> str:
        text = (value.dumps or json.dumps)(value.obj)
        return text.decode() if isinstance(text, bytes) else text  # type: ignore[no-any-return]

    def geometry(value: PostGISAdapter) -> str | None:
        if value.is_geometry and not value.geography:
            return value.ewkb.hex()  # type: ignore[no-any-return]  # what geometry_in reads
        return None

    converters: dict[type, Callable[[Any], str | None]] = {
        type(None): null,
        str: str,
        bool: boolean,
        int: int.__repr__,
        float: float.__repr__,  # the shortest text that reads back as the same double
        datetime: datetime.isoformat,
        date: date.isoformat,
        Jsonb: jsonb,
        PostGISAdapter: geometry,
    }
    return converters, frozenset({str, Jsonb})


@cache
def _copy_text_formatter() -> Callable[[Any], str | None]:
    """The escaped COPY text of one value (None: not a type formatted here). By exact type: one
    dict look-up per value instead of a chain of isinstance checks."""
    converters, escaped = _copy_converters()

    def field(value: Any) -> str | None:
        kind = type(value)
        convert = converters.get(kind)
        if convert is not None:
            text = convert(value)
            return _copy_escape(text) if kind in escaped and text is not None else text
        if isinstance(value, str):  # choices (TextChoices) are str subclasses: their value
            return _copy_escape(value)
        if isinstance(value, int):  # IntegerChoices
            return int.__repr__(value)
        return None

    return field


@cache
def _copy_unescaped_line() -> Callable[[Sequence[Any]], str | None]:
    """The COPY line of a row (no newline) when none of its values needs escaping, else None
    (then each value is formatted and escaped on its own).

    Most rows need no escaping, and one check of the joined line is cheaper than a function
    call per value (a bulk batch's COPY formatting: ≈27 → ≈20 ms of CPU per 1,000 cases):
    the values are converted without escaping and joined by tabs, and the line is right when it
    has exactly one tab per gap between values, one backslash per NULL (its \\N) and no line
    break. A value of another type (a geography, say) sends the row the slow way."""
    # A choice (a str or int subclass) is converted as its plain value; learned on first sight.
    known = dict(_copy_converters()[0])

    def line(row: Sequence[Any]) -> str | None:
        while True:
            try:
                text = "\t".join([known[type(value)](value) for value in row])  # type: ignore[misc]
                break
            except KeyError as missing:
                kind = missing.args[0]
                if not isinstance(kind, type):  # raised inside a converter
                    return None
                if issubclass(kind, str):
                    known[kind] = str.__str__
                elif issubclass(kind, int):
                    known[kind] = int.__repr__
                else:
                    return None
            except TypeError:  # a converter's None (a geography)
                return None
        if (
            text.count("\t") != len(row) - 1
            or text.count("\\") != row.count(None)
            or "\n" in text
            or "\r" in text
        ):
            return None
        return text

    return line
