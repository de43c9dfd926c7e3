"""WebSocket fan-out benchmark: CityOps' live feed against a plain `websockets` broadcast server.

    scripts/bench.sh ws           # or: make bench (runs every benchmark)

One run, same machine, same clients:

1. **CityOps**: a real Daphne server (`config.asgi`, the `/ws/` consumer) over a real database
   and Redis; N WebSocket clients signed in as district operators (10 %), street operators (30 %,
   spread over the streets) and community staff (60 %, spread over the communities) — each joins
   the scope the server grants its role. Publisher processes then report incidents as fast as the
   intake takes them (a surge: `incidents.services.incident_report`, the real service — locate,
   number, audit, outbox). Every client records what it receives. After the surge each client
   asks for a resync from its last sequence numbers, and the benchmark counts, per client and
   scope, the sequence numbers it never got (lost) and those that arrived out of order.
2. **Reference**: a plain `websockets` server that keeps a set of sockets per scope and
   broadcasts each event (serialised once, `websockets.broadcast`) to the sockets of its scopes.
   The same clients subscribe to the same scopes; a publisher pushes the very events of run 1
   (same payloads, same scopes) as fast as the server accepts them.

Printed side by side: deliveries per second (event × client, first report → last delivery),
report-to-screen latency p50/p99 (the report call's start → the client's receipt; one clock, one
machine), lost and out-of-order events after resync. Targets (issue 4): ≥ 40 % of the reference's
deliveries per second (the run as fast as the intake goes), p99 ≤ 1 s (the paced run, `--rate`:
flat out, every server's latency is a queue — the reference's own p99 there is seconds), zero
lost after resync. `scripts/bench.sh ws` runs both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
PY = str(ROOT / ".venv" / "bin" / "python")
DAPHNE = str(ROOT / ".venv" / "bin" / "daphne")


def log(message: str) -> None:
    print(f"[ws-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- set-up (Django) ---------------------------------------------------------------------------


def setup_database(clients: int) -> list[dict[str, Any]]:
    """Migrate, load the demo geography and reference data, create one user and session per
    client; returns [{"cookie", "scope"}] in client order."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from accounts.models import Role, User
    from gridmap.models import Region

    call_command("migrate", verbosity=0)
    if not Region.objects.exists():
        log("loading the demo geography")
        call_command("gridmap_demo", verbosity=0)
    call_command("incidents_load_categories", verbosity=0)
    call_command("incidents_load_calendar", verbosity=0)
    active = Region.objects.filter(generation__status="active")
    streets = sorted(active.filter(level="street").values_list("code", flat=True))
    communities = sorted(active.filter(level="community").values_list("code", flat=True))
    district = active.filter(level="district").values_list("code", flat=True).first()
    plan: list[tuple[str, str, str]] = []  # role, place, scope
    for i in range(clients):
        share = i % 10
        if share == 0:
            plan.append((Role.DISTRICT_OPERATOR, district, f"district:{district}"))
        elif share <= 3:
            street = streets[i % len(streets)]
            plan.append((Role.STREET_OPERATOR, street, f"street:{street}"))
        else:
            community = communities[i % len(communities)]
            plan.append((Role.COMMUNITY_STAFF, community, f"community:{community}"))
    User.objects.filter(username__startswith="wsbench-").delete()
    users = User.objects.bulk_create(
        [
            User(username=f"wsbench-{i:05d}", role=role, place_code=place, password="!")
            for i, (role, place, _) in enumerate(plan)
        ]
    )
    out = []
    for user, (_, _, scope) in zip(users, plan, strict=True):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        out.append(
            {"cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}", "scope": scope}
        )
    return out


def latest_seqs(scopes: list[str]) -> dict[str, int]:
    from realtime.outbox import latest_seqs as latest

    return latest(scopes)


def outbox_events_since(event_id: int) -> list[dict[str, Any]]:
    from realtime.models import OutboxEvent

    events = []
    for event in (
        OutboxEvent.objects.filter(id__gt=event_id).order_by("id").prefetch_related("scopes")
    ):
        seqs = {row.scope: row.seq for row in event.scopes.all()}
        events.append(
            {"id": event.id, "event_type": event.type, "payload": event.payload, "seqs": seqs}
        )
    return events


def last_event_id() -> int:
    from realtime.models import OutboxEvent

    return OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


# --- the publisher (a separate process) ---------------------------------------------------------


def run_publisher(count: int, seed: int, out: Path, rate: float, start_at: float) -> None:
    """Report `count` incidents — as fast as the intake takes them, or at `rate` per second from
    `start_at` (open loop: each report is due at its time, and its latency counts from then, so
    a publisher that falls behind shows as latency) — and write "number t_due" lines."""
    import django

    django.setup()
    from gridmap.locator import locate
    from gridmap.models import Region
    from incidents.models import Category
    from incidents.services import incident_report

    rng = random.Random(seed)
    cells = list(
        Region.objects.filter(level="grid", generation__status="active").values_list(
            "geom", flat=True
        )[:2000]
    )
    points = [cell.point_on_surface for cell in cells]
    categories = list(Category.objects.filter(kind="event", active=True).prefetch_related("limits"))
    # Warm up as a running server is: the locator's index is built on first use.
    locate(points[0].x, points[0].y)
    with out.open("w") as handle:
        for index in range(count):
            point = rng.choice(points)
            if rate > 0:
                due = start_at + index / rate
                time.sleep(max(0.0, due - time.time()))
                started = due
            else:
                started = time.time()
            incident = incident_report(
                channel="citizen",
                category=rng.choice(categories),
                lon=point.x,
                lat=point.y,
                description="ws-bench",
            )
            handle.write(f"{incident.number} {started} {time.time()}\n")


# --- clients -------------------------------------------------------------------------------------


@dataclass
class ClientStats:
    scope: str
    base: int | None = None  # the scope's seq when the client joined (welcome)
    seen: set[int] = field(default_factory=set)
    max_seq: int = 0
    out_of_order: int = 0
    duplicates: int = 0
    deliveries: int = 0
    arrivals: list[tuple[str, float]] = field(default_factory=list)  # (number, t) reported
    errors: list[str] = field(default_factory=list)


def _record(stats: ClientStats, events: list[dict[str, Any]], now: float, live: bool) -> None:
    for event in events:
        seq = event.get("seqs", {}).get(stats.scope)
        if seq is None:
            continue
        if seq in stats.seen:
            stats.duplicates += 1
            continue
        if live and seq < stats.max_seq:
            stats.out_of_order += 1
        stats.seen.add(seq)
        stats.max_seq = max(stats.max_seq, seq)
        if live:
            stats.deliveries += 1
            payload = event.get("payload") or {}
            if event.get("event_type") == "incidents.incident_reported":
                stats.arrivals.append((payload["incident"]["number"], now))


async def cityops_client(
    url: str, origin: str, spec: dict[str, Any], stats: ClientStats, phase: dict[str, Any]
) -> None:
    import websockets

    async with websockets.connect(
        url,
        additional_headers={"Cookie": spec["cookie"]},
        origin=origin,
        max_size=2**24,
        open_timeout=60,
        ping_interval=None,
    ) as ws:
        await ws.send(json.dumps({"type": "hello", "last": {}}))
        phase["connected"] += 1
        resynced = False
        while True:
            timeout = 0.5
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout)
            except TimeoutError:
                raw = None
            if raw is not None:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "welcome" and stats.base is None:
                    stats.base = int(message.get("seqs", {}).get(stats.scope, 0))
                    stats.max_seq = stats.base
                elif kind == "events":
                    _record(stats, message.get("events", []), time.time(), not resynced)
                elif kind == "error":
                    stats.errors.append(str(message))
            if phase["final"] is not None and not resynced:
                # The surge is over: ask for anything missed since what this client holds.
                missing_from = stats.max_seq
                if stats.seen:
                    missing_from = (
                        min(
                            (
                                s
                                for s in range(stats.base + 1, stats.max_seq + 1)
                                if s not in stats.seen
                            ),
                            default=stats.max_seq + 1,
                        )
                        - 1
                    )
                await ws.send(json.dumps({"type": "resync", "last": {stats.scope: missing_from}}))
                resynced = True
            target = phase["final"].get(stats.scope, 0) if resynced else None
            if target is not None and len(stats.seen) >= target - (stats.base or 0):
                return
            if phase["deadline"] is not None and time.time() > phase["deadline"]:
                return


async def raw_client(url: str, scope: str, stats: ClientStats, phase: dict[str, Any]) -> None:
    import websockets

    async with websockets.connect(url, max_size=2**24, open_timeout=60, ping_interval=None) as ws:
        await ws.send(json.dumps({"subscribe": [scope]}))
        stats.base = 0
        phase["connected"] += 1
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                raw = None
            if raw is not None:
                event = json.loads(raw)
                _record(stats, [event], time.time(), True)
            if phase["final"] is not None and stats.max_seq >= phase["final"].get(scope, 0):
                return
            if phase["deadline"] is not None and time.time() > phase["deadline"]:
                return


# --- the reference server (a separate process) ---------------------------------------------------


async def raw_server(port: int) -> None:
    import websockets

    sockets: dict[str, set[Any]] = defaultdict(set)

    async def handler(ws: Any) -> None:
        scopes: list[str] = []
        try:
            async for raw in ws:
                message = json.loads(raw)
                if "subscribe" in message:
                    scopes = message["subscribe"]
                    for scope in scopes:
                        sockets[scope].add(ws)
                elif "publish" in message:
                    event = message["publish"]
                    targets: set[Any] = set()
                    for scope in event["seqs"]:
                        targets |= sockets.get(scope, set())
                    websockets.broadcast(targets, json.dumps(event))
        finally:
            for scope in scopes:
                sockets[scope].discard(ws)

    async with websockets.serve(handler, "127.0.0.1", port, max_size=2**24, ping_interval=None):
        await asyncio.Future()


# --- the runs ------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    deliveries: int
    seconds: float
    latencies: list[float]
    lost: int
    out_of_order: int
    duplicates: int
    errors: int

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds if self.seconds > 0 else float("nan")


def _summarise(
    name: str,
    stats: list[ClientStats],
    final: dict[str, int],
    t0: float,
    sent: dict[str, float],
) -> Result:
    last = max((t for s in stats for _, t in s.arrivals), default=t0)
    latencies = [t - sent[number] for s in stats for number, t in s.arrivals if number in sent]
    lost = sum(
        len(set(range((s.base or 0) + 1, final.get(s.scope, 0) + 1)) - s.seen) for s in stats
    )
    return Result(
        name=name,
        deliveries=sum(s.deliveries for s in stats),
        seconds=last - t0,
        latencies=latencies,
        lost=lost,
        out_of_order=sum(s.out_of_order for s in stats),
        duplicates=sum(s.duplicates for s in stats),
        errors=sum(len(s.errors) for s in stats),
    )


async def drain(stats: list[ClientStats], final: dict[str, int], idle: float) -> None:
    """Let live deliveries finish: until every client has seen its scope's last number, or
    nothing arrived for `idle` seconds (what is still missing then comes by the resync)."""
    delivered, since = -1, time.monotonic()
    while not all(s.max_seq >= final.get(s.scope, 0) for s in stats):
        now_delivered = sum(s.deliveries for s in stats)
        if now_delivered != delivered:
            delivered, since = now_delivered, time.monotonic()
        elif time.monotonic() - since >= idle:
            log(f"no live delivery for {idle:g} s: the rest comes by the resync")
            return
        await asyncio.sleep(0.2)


async def run_cityops(
    args: argparse.Namespace, specs: list[dict[str, Any]], env: dict[str, str], tmp: Path
) -> tuple[Result, list[dict[str, Any]], dict[str, float]]:
    port = free_port()
    daphne_log = (tmp / "daphne.log").open("w")
    daphne = subprocess.Popen(
        [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=daphne_log,
    )
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                await asyncio.sleep(0.2)
        origin = f"http://127.0.0.1:{port}"
        url = f"ws://127.0.0.1:{port}/ws/"
        stats = [ClientStats(scope=spec["scope"]) for spec in specs]
        phase: dict[str, Any] = {"connected": 0, "final": None, "deadline": None}
        tasks = []
        for spec, stat in zip(specs, stats, strict=True):
            tasks.append(asyncio.create_task(cityops_client(url, origin, spec, stat, phase)))
            if len(tasks) % 50 == 0:
                await asyncio.sleep(0.05)
        while phase["connected"] < len(specs) or any(s.base is None for s in stats):
            if any(t.done() for t in tasks):
                for t in tasks:
                    if t.done() and t.exception():
                        raise t.exception()  # type: ignore[misc]
            await asyncio.sleep(0.1)
        log(f"CityOps: {len(specs)} clients joined; surge of {args.incidents} reports")
        first_event = await asyncio.to_thread(last_event_id)
        per = args.incidents // args.publishers
        outs = [tmp / f"published-{i}.txt" for i in range(args.publishers)]
        t0 = time.time()
        # Paced: the publishers start together once their Django is up, each at its share of
        # the rate, offset so that together they report evenly.
        start_at = t0 + 8.0
        publishers = [
            subprocess.Popen(
                [
                    PY,
                    __file__,
                    "--role",
                    "publisher",
                    "--count",
                    str(per),
                    "--seed",
                    str(i),
                    "--out",
                    str(out),
                    "--rate",
                    str(args.rate / args.publishers),
                    "--start-at",
                    str(start_at + (i / args.rate if args.rate > 0 else 0.0)),
                ],
                env=env,
                cwd=ROOT,
            )
            for i, out in enumerate(outs)
        ]
        # Waited for in threads: a blocking wait here would stop the event loop, and with it
        # every client's reading, until the surge is over.
        for proc in publishers:
            if await asyncio.to_thread(proc.wait) != 0:
                raise SystemExit("a publisher failed")
        intake_seconds = time.time() - t0
        sent = {}
        late = []  # seconds each report finished after it was due (the intake's own share)
        for out in outs:
            for line in out.read_text().splitlines():
                number, started, finished = line.split()
                sent[number] = float(started)
                late.append(float(finished) - float(started))
        first, last = min(sent.values()), max(sent.values())
        log(
            f"CityOps: {len(sent)} reports in {last - first:.1f} s "
            f"({len(sent) / max(last - first, 1e-9):.0f}/s; {intake_seconds:.1f} s with start-up); "
            f"each report committed p50 {pct(late, 0.5) * 1000:.0f} ms / p99 "
            f"{pct(late, 0.99) * 1000:.0f} ms after it was due"
        )
        t0 = first
        scopes = sorted({s.scope for s in stats})
        final = await asyncio.to_thread(latest_seqs, scopes)
        await drain(stats, final, args.drain)
        phase["final"] = final
        phase["deadline"] = time.time() + 120
        await asyncio.gather(*tasks, return_exceptions=True)
        result = _summarise("CityOps /ws/ (Daphne + Redis)", stats, phase["final"], t0, sent)
        events = await asyncio.to_thread(outbox_events_since, first_event)
        return result, events, {number: at - first for number, at in sent.items()}
    finally:
        daphne.terminate()
        daphne.wait(10)
        daphne_log.close()


async def run_reference(
    specs: list[dict[str, Any]], events: list[dict[str, Any]], due: dict[str, float]
) -> Result:
    """Replay the CityOps run's events through the plain server: as fast as it accepts them,
    or — when `due` (report number → seconds after the first report) is given — at the same
    moments as they were reported."""
    import websockets

    port = free_port()
    server = subprocess.Popen([PY, __file__, "--role", "raw-server", "--port", str(port)], cwd=ROOT)
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                await asyncio.sleep(0.1)
        url = f"ws://127.0.0.1:{port}/"
        stats = [ClientStats(scope=spec["scope"]) for spec in specs]
        phase: dict[str, Any] = {"connected": 0, "final": None, "deadline": None}
        tasks = [asyncio.create_task(raw_client(url, s.scope, s, phase)) for s in stats]
        while phase["connected"] < len(specs):
            await asyncio.sleep(0.1)
        # The reference numbers each scope's events from 1, like a fresh CityOps scope.
        counters: dict[str, int] = defaultdict(int)
        final: dict[str, int] = {}
        sent: dict[str, float] = {}
        t0 = time.time()
        async with websockets.connect(url, max_size=2**24, ping_interval=None) as pub:
            for event in events:
                seqs = {}
                for scope in event["seqs"]:
                    counters[scope] += 1
                    seqs[scope] = counters[scope]
                number = event["payload"].get("incident", {}).get("number")
                if due and number in due:
                    await asyncio.sleep(max(0.0, t0 + due[number] - time.time()))
                    sent[number] = t0 + due[number]
                elif event["event_type"] == "incidents.incident_reported":
                    sent[number] = time.time()
                await pub.send(json.dumps({"publish": {**event, "seqs": seqs}}))
        final.update(counters)
        phase["final"] = final
        phase["deadline"] = time.time() + 120
        await asyncio.gather(*tasks, return_exceptions=True)
        return _summarise("plain websockets broadcast", stats, final, t0, sent)
    finally:
        server.terminate()
        server.wait(10)


def print_report(args: argparse.Namespace, ours: Result, ref: Result) -> None:
    def row(r: Result) -> str:
        return (
            f"{r.name:<32} {r.deliveries:>10,} {r.rate:>12,.0f} "
            f"{pct(r.latencies, 0.5) * 1000:>9.0f} {pct(r.latencies, 0.99) * 1000:>9.0f} "
            f"{r.lost:>6} {r.out_of_order:>6} {r.duplicates:>6} {r.errors:>6}"
        )

    pace = (
        f"at {args.rate:g} reports/s (open loop; the reference replays them at the same moments)"
        if args.rate > 0
        else "as fast as the intake takes them (the reference replays them as fast as it can)"
    )
    print(
        f"\nWebSocket fan-out: {args.clients} clients (10 % district, 30 % street, 60 % "
        f"community), {args.incidents} reports from {args.publishers} publisher processes {pace}"
    )
    print(
        f"{'server':<32} {'deliveries':>10} {'deliv./s':>12} {'p50 ms':>9} {'p99 ms':>9} "
        f"{'lost':>6} {'disord':>6} {'dupl':>6} {'errors':>6}"
    )
    print(row(ours))
    print(row(ref))
    share = ours.rate / ref.rate * 100 if ref.rate else float("nan")
    print(
        f"\nCityOps delivers {share:.0f} % of the reference's deliveries per second "
        f"(target ≥ 40 %); p99 report-to-screen {pct(ours.latencies, 0.99) * 1000:.0f} ms "
        + (
            "(target ≤ 1000 ms)"
            if args.rate > 0
            else f"(flat out, the reference's own p99 {pct(ref.latencies, 0.99) * 1000:.0f} ms: "
            "the ≤ 1000 ms target is judged on the paced run, --rate)"
        )
        + f"; {ours.lost} events lost after resync (target 0)."
    )


async def orchestrate(args: argparse.Namespace) -> None:
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="ws-bench-"))
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL is required (scripts/bench.sh starts a private Redis)")
    log(f"preparing {args.clients} users and sessions")
    specs = await asyncio.to_thread(setup_database, args.clients)
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "ws-bench-" + "x" * 50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SESSION_COOKIE_SECURE": "0",
        "DJANGO_CSRF_COOKIE_SECURE": "0",
        "CITYOPS_LOG_LEVEL": "WARNING",
    }
    # The sessions were signed with this process's key: the server must use the same one.
    from django.conf import settings

    env["DJANGO_SECRET_KEY"] = settings.SECRET_KEY
    ours, events, due = await run_cityops(args, specs, env, tmp)
    log(f"reference: replaying {len(events)} events through a plain websockets server")
    ref = await run_reference(specs, events, due if args.rate > 0 else {})
    print_report(args, ours, ref)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--role", default="orchestrator", choices=["orchestrator", "publisher", "raw-server"]
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument(
        "--drain",
        type=float,
        default=3.0,
        help="after the last report, live deliveries end once every client has its scope's "
        "last event, or after this many seconds without one",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="reports per second, all publishers together (0: as fast as the intake takes them)",
    )
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.role == "publisher":
        run_publisher(args.count, args.seed, args.out, args.rate, args.start_at)
    elif args.role == "raw-server":
        asyncio.run(raw_server(args.port))
    else:
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
