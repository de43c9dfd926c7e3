"""Benchmark of the counter upsert bulk intake takes its sensor locks with, on PostgreSQL.

`config.db_backends.bulk.increment_counters` adds to (or creates) one row per key in one
statement. A bulk batch calls it with up to 1,000 alarm sources (incidents.AlarmSource: account,
sensor, category, channel), before its dedupe lookup, so its cost is paid on every batch. On
PostgreSQL the rows come from `unnest` of one array per column; the reference beside it is the
same upsert as a VALUES list with one parameter per value (what SQLite is given, and what
PostgreSQL was given before). Both run in the same process against the same database,
alternating, on fresh keys (every row inserted) and then on the same keys again (every row
updated), each in its own committed transaction.

Printed: per statement, the median and p90 wall time and the median CPU time of this process
(Python: building the parameters, psycopg quoting them, reading the rows back). Usage, with a
PostGIS database the script may write to (scripts/bench.sh counters makes one):

    DJANGO_DEBUG=1 DATABASE_URL=postgis://… .venv/bin/python bench/counter_bench.py [--keys 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1000, help="alarm sources per statement")
    parser.add_argument("--rounds", type=int, default=30, help="timed statements of each kind")
    return parser.parse_args()


Key = tuple[int, str, int, str]


def values_list(keys: Sequence[Key], now: Any) -> None:
    """The reference: the same upsert with a VALUES row per key, a parameter per value."""
    from django.db import connection

    from incidents.models import AlarmSource

    table = connection.ops.quote_name(AlarmSource._meta.db_table)
    row = "(%s, %s, %s, %s, %s, %s)"
    params: list[Any] = []
    for key in keys:
        params.extend((*key, 1, now))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (account_id, source_ref, category_id, channel, alarms, "
            f"first_alarm_at) VALUES {', '.join([row] * len(keys))} "
            "ON CONFLICT (account_id, source_ref, category_id, channel) DO UPDATE SET "
            f"alarms = {table}.alarms + EXCLUDED.alarms "
            "RETURNING account_id, source_ref, category_id, channel, alarms",
            params,
        )
        cursor.fetchall()


def product(keys: Sequence[Key], now: Any) -> None:
    from django.db import connection

    from config.db_backends.bulk import increment_counters
    from incidents.models import AlarmSource

    increment_counters(
        connection,
        AlarmSource,
        ("account", "source_ref", "category", "channel"),
        "alarms",
        keys,
        defaults={"first_alarm_at": now},
    )


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Role, User
    from bench.intake_bench import database_description, machine
    from incidents.models import Category

    if connection.vendor != "postgresql":
        sys.exit("counter_bench measures PostgreSQL: set DATABASE_URL=postgis://…")
    call_command("migrate", verbosity=0)
    call_command("incidents_load_categories", verbosity=0)
    run = uuid.uuid4().hex[:8]
    account = User.objects.create(username=f"bench-counter-{run}", role=Role.INTEGRATION)
    categories = list(Category.objects.order_by("code").values_list("pk", flat=True)[:5])

    statements: dict[str, Callable[[Sequence[Key], Any], None]] = {
        "increment_counters (unnest arrays)": product,
        "VALUES list (reference)": values_list,
    }
    timings: dict[tuple[str, str], list[tuple[float, float]]] = {
        (name, phase): [] for name in statements for phase in ("new keys", "existing keys")
    }
    for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
        for name, statement in statements.items():
            keys = sorted(
                (account.pk, f"{run}-{name[:6]}-{round_:03d}-{i:05d}", categories[i % 5], "sensor")
                for i in range(args.keys)
            )
            for phase in ("new keys", "existing keys"):
                with transaction.atomic():
                    wall, cpu = time.perf_counter(), time.process_time()
                    statement(keys, timezone.now())
                    took = (time.perf_counter() - wall, time.process_time() - cpu)
                if round_:
                    timings[(name, phase)].append(took)

    print(
        "CityOps counter upsert benchmark (incidents.AlarmSource, the bulk intake's sensor locks)"
    )
    print(f"Machine: {machine()}")
    print(f"Database: {database_description()}")
    print(f"{args.keys:,} keys per statement, {args.rounds} statements of each kind, alternating")
    print()
    print(f"  {'statement':38} {'rows':14} {'wall p50':>9} {'wall p90':>9} {'CPU p50':>8}")
    for (name, phase), taken in timings.items():
        walls = sorted(wall * 1000 for wall, _ in taken)
        cpus = [cpu * 1000 for _, cpu in taken]
        p90 = walls[min(len(walls) - 1, int(len(walls) * 0.9))]
        print(
            f"  {name:38} {phase:14} {statistics.median(walls):7.1f}ms {p90:7.1f}ms "
            f"{statistics.median(cpus):6.1f}ms"
        )
    print()
    print("wall: the statement as the caller waits for it; CPU: this process's share (Python).")


if __name__ == "__main__":
    main()
