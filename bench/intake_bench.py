"""Benchmark of intake over real HTTP against a real Daphne server, beside plain DRF creates.

Run it through scripts/bench.sh (`make bench`), which runs it twice: on a fresh SpatiaLite file
with the in-process channel layer (the embedded default), and on a private PostgreSQL/PostGIS
with Redis (production's shape). Alone: `DJANGO_DEBUG=1 .venv/bin/python bench/intake_bench.py`
(SpatiaLite in a temporary directory unless DATABASE_URL names a database; REDIS_URL if set).

In one run it:

1. migrates the bench database and loads the demo geography, the category catalogue and the
   working calendar; creates a district operator (signed in through a session, as the console
   is) and an integration account with an API key for sensor and video_ai; samples points in
   500 grid cells and locates them (for the references' pre-filled rows);
2. starts Daphne (`config.asgi:application`, settings bench.intake_settings: the product plus
   the references of bench/intake_reference.py) as a subprocess on a free port;
3. **single reports**: offers 200 reports/s, open loop (Poisson arrivals, fixed seed: a request
   is sent at its time whether or not earlier ones have been answered) from 32 client threads
   with keep-alive connections, to `POST /api/v1/incidents/` (the product: session + CSRF,
   locate, number, clock, timeline, audit, outbox, the case read back and serialised) and to
   the reference, a DRF `ModelSerializer` create of the same row with the path pre-filled,
   and to the floor: a DRF view with the same session, CSRF and JSON parsing that writes
   nothing (what any signed-in write costs on this server before the product's own work).
   Latency runs from the request's scheduled time to the end of its answer, so waiting for a
   free connection or a busy server counts (no coordinated omission);
4. **bulk**: sends batches of 1,000 alarms one after another to `POST /api/v1/incidents/bulk/`
   and the same rows to the reference's `many=True` create (DRF's default row-by-row
   ListSerializer, and DRF's documented bulk_create override), each batch on a new connection
   (see run_bulk), after a warm-up batch; incidents/s = rows committed ÷ wall time from the
   first request to the last answer; afterwards the rows are counted;
5. checks the records: no acknowledged case missing, one `incident_reported` event per case
   created, the district's sequence numbers gapless, the audit chain verifies;
6. prints the figures side by side with the server process's CPU time per request, and where
   the CPU went: the server's, PostgreSQL's and Redis's share of each request, and the cores
   the target's rate would take at that cost.

bench/README.md ("Intake benchmark") explains the output and holds measured figures.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import queue
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 20_261_124
SAMPLE_CELLS = 500
# The third single run: a signed-in DRF view that writes nothing (bench/intake_reference.py).
FLOOR = "floor: signed-in DRF view, no write"
PRODUCT = "CityOps POST /api/v1/incidents/"
# Phones send every write with an Idempotency-Key (incidents.api.idempotency): the claim and the
# stored answer are part of their path.
KEYED = "CityOps, with Idempotency-Key (phones)"
CATEGORIES = ("01001", "06010", "90002")  # 供水井盖异常, 暴露垃圾, 内涝积水 (an emergency)
SINGLE_TARGET_P99_MS = 50.0
SINGLE_TARGET_RATE = 200.0  # reports/s at which the p99 target holds
GAVE_UP = -1  # the status of a request the client did not send (see Clients.give_up)
BULK_TARGET_PER_S = 5_000.0


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rate", type=float, default=SINGLE_TARGET_RATE, help="single reports offered per s"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per single phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds discarded first")
    parser.add_argument("--clients", type=int, default=32, help="client threads (connections)")
    parser.add_argument("--batches", type=int, default=20, help="bulk batches of the product")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--reference-batches", type=int, default=5, help="bulk batches of each reference"
    )
    parser.add_argument(
        "--give-up",
        type=float,
        default=10.0,
        help="seconds a single report may wait for a free client connection before it is "
        "counted as not sent (an overloaded server)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes: 1 = one Daphne; N = manage.py cityops_serve --workers N "
        "(needs REDIS_URL)",
    )
    parser.add_argument(
        "--gateways",
        type=int,
        default=1,
        help="bulk: gateways sending batches at the same time, each batch on a new connection",
    )
    parser.add_argument(
        "--accounts",
        type=int,
        default=1,
        help="bulk: integration accounts the gateways send as (gateway g as account g mod N); "
        "the default is 1, one platform with several gateways (the dedupe locks a batch's "
        "sensors, not its account, so it should not wait more than N accounts do)",
    )
    parser.add_argument("--skip-single", action="store_true")
    parser.add_argument("--skip-bulk", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary SpatiaLite file")
    return parser.parse_args()


# --- set-up --------------------------------------------------------------------------------------


def configure_environment() -> Path | None:
    """DATABASE_URL (a fresh SpatiaLite file unless given) and the bench settings; returns the
    temporary directory it created, if any."""
    tmp = None
    if not os.environ.get("DATABASE_URL"):
        tmp = Path(tempfile.mkdtemp(prefix="cityops-intake-bench-"))
        os.environ["DATABASE_URL"] = f"spatialite:///{tmp}/intake.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.intake_settings"
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("CITYOPS_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    return tmp


@dataclass
class Place:
    lon: float
    lat: float
    row: dict[str, Any]  # the located path, as the references' pre-filled row carries it


@dataclass
class Fixtures:
    run: str
    session_key: str
    csrf: str
    api_keys: list[str]  # one per integration account; the first one sends the single phase's
    operator_id: int
    gateway_ids: list[int]
    places: list[Place]


def prepare_database(accounts: int) -> Fixtures:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.core.management import call_command

    from accounts.models import Role, User
    from accounts.services import api_key_issue
    from gridmap.locator import locate
    from gridmap.models import Region
    from incidents.services import calendar_load, categories_load

    started = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("gridmap_demo", verbosity=0)
    categories_load()
    calendar_load()
    engine = settings.DATABASES["default"]["ENGINE"]
    log(f"database ready in {time.monotonic() - started:.0f} s ({engine})")

    run = datetime.now(UTC).strftime("%H%M%S") + secrets.token_hex(2)
    operator = User.objects.create_user(
        f"bench-operator-{run}", password=None, role=Role.DISTRICT_OPERATOR, place_code="440309"
    )
    gateways, api_keys = [], []
    for number in range(max(accounts, 1)):
        gateway = User.objects.create_user(
            f"bench-gateway-{run}-{number}", password=None, role=Role.INTEGRATION
        )
        _, api_key = api_key_issue(
            user=gateway, name="intake bench", channels=["sensor", "video_ai"]
        )
        gateways.append(gateway.pk)
        api_keys.append(api_key)

    # A signed-in console session, exactly as django.contrib.auth.login leaves it.
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(operator.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = operator.get_session_auth_hash()
    store.create()

    import shapely

    rng = random.Random(SEED)
    cells = list(
        Region.objects.filter(generation__status="active", level="grid").values_list(
            "id", flat=True
        )
    )
    chosen = rng.sample(cells, min(SAMPLE_CELLS, len(cells)))
    places = []
    for region in Region.objects.filter(id__in=chosen).order_by("code"):
        point = shapely.point_on_surface(shapely.from_wkb(bytes(region.geom.wkb)))
        where = locate(point.x, point.y)
        path = where.path
        places.append(
            Place(
                lon=point.x,
                lat=point.y,
                row={
                    "location": [where.lon, where.lat],
                    "raw_lon": point.x,
                    "raw_lat": point.y,
                    "raw_crs": "wgs84",
                    "district_code": path.district.code,
                    "district_name": path.district.name,
                    "street_code": path.street.code,
                    "street_name": path.street.name,
                    "community_code": path.community.code,
                    "community_name": path.community.name,
                    "grid_code": path.grid.code,
                    "grid_name": path.grid.name,
                    "generation": where.generation_id,
                    "generation_number": where.generation,
                    "resolution": str(where.resolution),
                    "status": "reported",
                    "owner_level": "community",
                    "owner_code": path.community.code,
                },
            )
        )
    return Fixtures(
        run=run,
        session_key=store.session_key or "",
        csrf=secrets.token_hex(16),  # a 32-character CSRF secret, cookie and header alike
        api_keys=api_keys,
        operator_id=operator.pk,
        gateway_ids=gateways,
        places=places,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    daphne = Path(sys.executable).with_name("daphne")
    command = [str(daphne), "-b", "127.0.0.1", "-p", str(port), "-v", "0"]
    command.append("config.asgi:application")
    if workers > 1:
        command = [sys.executable, "manage.py", "cityops_serve", "-v", "0"]
        command += ["--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=None,  # the server's warnings and errors reach the terminal
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"daphne exited with {server.returncode} before it was ready")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/v1/incidents/")
            connection.getresponse().read()
            connection.close()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("daphne did not answer within 60 s")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (the first is field 3, state)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU time of a process so far (Linux /proc); with `reaped_children`, plus
    that of its children that have ended and been waited for (cutime + cstime)."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def server_processes(server: subprocess.Popen[bytes], workers: int) -> list[int]:
    """The pids that serve: Daphne itself, or the Daphne workers of cityops_serve (its
    children; the manager only watches them)."""
    if workers == 1:
        return [server.pid]
    deadline = time.monotonic() + 60
    children_file = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    while time.monotonic() < deadline:
        children = [int(child) for child in children_file.read_text().split()]
        if len(children) == workers:
            return sorted(children)
        time.sleep(0.2)
    sys.exit(f"cityops_serve did not start {workers} workers")


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds: the server processes', PostgreSQL's and Redis's (None where not measured:
    SQLite works inside the server; a database or Redis on another machine), and the bench
    client's own (this process: the load generator, sharing the machine's cores)."""

    server: float
    database: float | None
    redis: float | None
    client: float

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        def minus(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else a - b

        return CpuTimes(
            self.server - other.server,
            minus(self.database, other.database),
            minus(self.redis, other.redis),
            self.client - other.client,
        )

    @property
    def total(self) -> float:
        return self.server + (self.database or 0.0) + (self.redis or 0.0)


class CpuMeter:
    """Reads CpuTimes. PostgreSQL is measured when it runs on this machine: its postmaster
    (found as the parent of this run's backend) with every process it started, living (their
    /proc stat) or ended (the postmaster's cutime/cstime) — backends, WAL writer, checkpointer,
    autovacuum. Redis is measured by INFO cpu (used_cpu_user/sys, children included)."""

    def __init__(self, server_pids: list[int], postmaster: int | None) -> None:
        self.server_pids = server_pids
        self.postmaster = postmaster
        self.redis = None
        if os.environ.get("REDIS_URL"):
            import redis

            self.redis = redis.Redis.from_url(os.environ["REDIS_URL"])

    def _postgres(self) -> float | None:
        if self.postmaster is None:
            return None
        children = Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children")
        living = 0.0
        for child in children.read_text().split():
            # One that ended just now is counted in the postmaster's cutime instead.
            with contextlib.suppress(FileNotFoundError):
                living += process_cpu_seconds(int(child))
        return living + process_cpu_seconds(self.postmaster, reaped_children=True)

    def _redis(self) -> float | None:
        if self.redis is None:
            return None
        info = self.redis.info("cpu")
        return sum(
            float(info[name])
            for name in (
                "used_cpu_user",
                "used_cpu_sys",
                "used_cpu_user_children",
                "used_cpu_sys_children",
            )
        )

    def read(self) -> CpuTimes:
        return CpuTimes(
            server=sum(process_cpu_seconds(pid) for pid in self.server_pids),
            database=self._postgres(),
            redis=self._redis(),
            client=time.process_time(),
        )


def local_postmaster() -> int | None:
    """The pid of the PostgreSQL postmaster when the database is PostgreSQL on this machine."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    connection.close()
    try:
        parent = int(_stat(backend)[1])
        command = Path(f"/proc/{parent}/comm").read_text().strip()
    except (FileNotFoundError, PermissionError):
        return None  # another machine, or another namespace
    if not Path(f"/proc/{parent}/task/{parent}/children").exists():
        return None  # a kernel without CONFIG_PROC_CHILDREN: its backends cannot be listed
    return parent if command in ("postgres", "postmaster") else None


# --- the client ------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Outcome:
    scheduled: float
    started: float
    finished: float
    status: int
    body: bytes


class Clients:
    """Threads with one keep-alive HTTP/1.1 connection each, taking requests from a queue."""

    def __init__(self, port: int, threads: int, give_up: float = float("inf")) -> None:
        self.port = port
        # A request still waiting for a connection this long after its time is not sent: the
        # server is overloaded and the backlog would only grow (counted, status GAVE_UP).
        self.give_up = give_up
        self.jobs: queue.Queue[tuple[float, Request] | None] = queue.Queue()
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        while True:
            job = self.jobs.get()
            if job is None:
                connection.close()
                return
            scheduled, request = job
            started = time.perf_counter()
            if started - scheduled > self.give_up:
                with self._lock:
                    self.outcomes.append(Outcome(scheduled, started, started, GAVE_UP, b""))
                continue
            for attempt in (1, 2):
                try:
                    connection.request(request.method, request.path, request.body, request.headers)
                    response = connection.getresponse()
                    body = response.read()
                    status = response.status
                    break
                except (http.client.HTTPException, OSError):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                    if attempt == 2:
                        status, body = 0, b""
            with self._lock:
                self.outcomes.append(Outcome(scheduled, started, time.perf_counter(), status, body))

    def submit(self, scheduled: float, request: Request) -> None:
        self.jobs.put((scheduled, request))

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(timeout=180)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class SingleResult:
    name: str
    offered: int
    measured: list[Outcome]
    statuses: dict[int, int]
    duration: float
    cpu: CpuTimes
    load_before: float
    created: set[str] = field(default_factory=set)

    @property
    def sent(self) -> int:
        """Requests the clients sent (warm-up included: the CPU time covers it too)."""
        return sum(n for code, n in self.statuses.items() if code != GAVE_UP)

    def latencies_ms(self) -> list[float]:
        """From the scheduled time to the end of the answer; infinite for a request given up."""
        return [
            (o.finished - o.scheduled) * 1000 if o.status != GAVE_UP else math.inf
            for o in self.measured
        ]

    def service_ms(self) -> list[float]:
        return [(o.finished - o.started) * 1000 for o in self.measured if o.status != GAVE_UP]


def run_open_loop(
    name: str,
    port: int,
    make: Any,
    *,
    rate: float,
    duration: float,
    warmup: float,
    clients: int,
    give_up: float,
    meter: CpuMeter,
    expect: int,
) -> SingleResult:
    rng = random.Random(SEED)
    load_before = os.getloadavg()[0]
    pool = Clients(port, clients, give_up)
    total = warmup + duration
    times: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= total:
            break
        times.append(t)
    log(f"{name}: {len(times)} requests over {total:.0f} s at {rate:.0f}/s offered")
    cpu_before = meter.read()
    start = time.perf_counter() + 0.2
    for index, offset in enumerate(times):
        scheduled = start + offset
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        pool.submit(scheduled, make(index))
    pool.close()
    cpu = meter.read() - cpu_before
    outcomes = sorted(pool.outcomes, key=lambda o: o.scheduled)
    measured = [o for o in outcomes if o.scheduled - start >= warmup]
    statuses: dict[int, int] = {}
    for outcome in outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    created = set()
    for outcome in outcomes:
        if outcome.status == expect:
            created.add(json.loads(outcome.body)["number"])
    return SingleResult(
        name=name,
        offered=len(outcomes),
        measured=measured,
        statuses=statuses,
        duration=duration,
        cpu=cpu,
        load_before=load_before,
        created=created,
    )


@dataclass
class BulkResult:
    name: str
    batches: int
    rows_sent: int
    rows_acknowledged: int  # by the timed batches
    warmup_acknowledged: int  # by the warm-up batch before them
    wall: float
    batch_ms: list[float]
    statuses: dict[int, int]
    cpu: CpuTimes
    load_before: float

    @property
    def per_second(self) -> float:
        return self.rows_acknowledged / self.wall if self.wall else 0.0


def run_bulk(
    name: str,
    port: int,
    make: Any,
    *,
    batches: int,
    gateways: int,
    api_keys: list[str],
    meter: CpuMeter,
    acknowledged: Any,
) -> BulkResult:
    """A warm-up batch, then `batches` batches sent by `gateways` senders at once, each one
    batch after another, each batch on a new connection.

    A new connection per request is what the TLS proxy in front of production (README,
    "Serving in production") does by default (nginx's upstream speaks HTTP/1.0 unless told to
    keep connections), and it lets the kernel hand each batch to a server process that is
    accepting. With one kept-alive connection per gateway, the processes took the gateways'
    connections once, at the start: in about half the runs both gateways were on one process
    for the whole run while the other idled (two processes, two gateways: 3,460-3,730/s in
    those runs, 4,480-5,750/s in the others)."""
    load_before = os.getloadavg()[0]
    requests = [make(index) for index in range(batches + 1)]  # the first one warms up
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request(requests[0].method, requests[0].path, requests[0].body, requests[0].headers)
    warm = connection.getresponse()
    warm_body = warm.read()
    connection.close()
    if warm.status != 200:
        sys.exit(f"{name}: warm-up batch answered {warm.status}: {warm_body[:500]!r}")
    warm_acked = acknowledged(json.loads(warm_body))
    pending: queue.Queue[Request] = queue.Queue()
    for request in requests[1:]:
        pending.put(request)
    times: list[float] = []
    statuses: dict[int, int] = {}
    totals = {"acked": 0, "sent": 0}
    lock = threading.Lock()

    def gateway(number: int) -> None:
        # Gateway `number` sends as its own account (`--accounts`), whichever batch it takes.
        authorization = f"Api-Key {api_keys[number % len(api_keys)]}"
        while True:
            try:
                request = pending.get_nowait()
            except queue.Empty:
                break
            headers = {**request.headers, "Authorization": authorization}
            t0 = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            connection.request(request.method, request.path, request.body, headers)
            response = connection.getresponse()
            body = response.read()
            connection.close()
            with lock:
                times.append((time.perf_counter() - t0) * 1000)
                statuses[response.status] = statuses.get(response.status, 0) + 1
                totals["sent"] += len(json.loads(request.body)["items"])
                if response.status == 200:
                    totals["acked"] += acknowledged(json.loads(body))

    cpu_before = meter.read()
    started = time.perf_counter()
    senders = [threading.Thread(target=gateway, args=(number,)) for number in range(gateways)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    wall = time.perf_counter() - started
    cpu = meter.read() - cpu_before
    log(f"{name}: {batches} batches from {gateways} gateway(s) in {wall:.1f} s")
    return BulkResult(
        name,
        batches,
        totals["sent"],
        totals["acked"],
        warm_acked,
        wall,
        times,
        statuses,
        cpu,
        load_before,
    )


# --- the requests ----------------------------------------------------------------------------


def single_requests(fx: Fixtures) -> tuple[Any, Any, Any, Any]:
    rng = random.Random(SEED + 1)
    session = {
        "Content-Type": "application/json",
        "Cookie": f"sessionid={fx.session_key}; csrftoken={fx.csrf}",
        "X-CSRFToken": fx.csrf,
    }

    def report(description: str, headers: dict[str, str]) -> Request:
        place = rng.choice(fx.places)
        body = {
            "category": rng.choice(CATEGORIES),
            "description": description,
            "lon": place.lon,
            "lat": place.lat,
            "channel": "hotline_12345",
        }
        return Request("POST", "/api/v1/incidents/", json.dumps(body).encode(), headers)

    def product(index: int) -> Request:
        return report(single_description(fx, PRODUCT), session)

    def keyed(index: int) -> Request:
        key = {"Idempotency-Key": f"bench-{fx.run}-{index}"}
        return report(single_description(fx, KEYED), {**session, **key})

    def reference(index: int) -> Request:
        place = rng.choice(fx.places)
        body = {
            **place.row,
            "number": f"BR-{fx.run}-{index:06d}",
            "channel": "hotline_12345",
            "category": rng.choice(CATEGORIES),
            "description": f"bench {fx.run} 路面积水",
            "source_ref": "",
        }
        return Request("POST", "/bench/reference/incidents/", json.dumps(body).encode(), session)

    def floor(index: int) -> Request:
        body = {"number": f"FL-{fx.run}-{index:06d}", "description": f"bench {fx.run} 路面积水"}
        return Request("POST", "/bench/reference/floor/", json.dumps(body).encode(), session)

    return product, keyed, reference, floor


def single_description(fx: Fixtures, name: str) -> str:
    """The description of the cases of a CityOps single phase (the records check tells the
    phases' cases apart by it)."""
    return f"bench {fx.run} 路面积水" + (" (keyed)" if name == KEYED else "")


def bulk_requests(fx: Fixtures, size: int) -> tuple[Any, Any]:
    rng = random.Random(SEED + 2)
    keyed = {"Content-Type": "application/json", "Authorization": f"Api-Key {fx.api_keys[0]}"}
    occurred = datetime.now(UTC).isoformat()

    def product(batch: int) -> Request:
        items = []
        for i in range(size):
            place = rng.choice(fx.places)
            items.append(
                {
                    "channel": "sensor",
                    "category": rng.choice(CATEGORIES),
                    "lon": place.lon,
                    "lat": place.lat,
                    "source_ref": f"{fx.run}-b{batch:03d}-{i:04d}",
                    "description": "水位传感器报警",
                    "occurred_at": occurred,
                }
            )
        return Request(
            "POST", "/api/v1/incidents/bulk/", json.dumps({"items": items}).encode(), keyed
        )

    def reference(mode: str) -> Any:
        def make(batch: int) -> Request:
            items = []
            for i in range(size):
                place = rng.choice(fx.places)
                items.append(
                    {
                        **place.row,
                        "number": f"BB{mode[0]}-{fx.run}-{batch:03d}-{i:04d}",
                        "channel": "sensor",
                        "category": rng.choice(CATEGORIES),
                        "description": "水位传感器报警",
                        "source_ref": f"{fx.run}-ref-{batch:03d}-{i:04d}",
                    }
                )
            return Request(
                "POST",
                f"/bench/reference/incidents/bulk/?mode={mode}",
                json.dumps({"items": items}).encode(),
                keyed,
            )

        return make

    return product, reference


# --- checks ----------------------------------------------------------------------------------


def check_records(
    fx: Fixtures, singles: list[SingleResult], bulks: list[tuple[BulkResult, dict[str, Any]]]
) -> list[str]:
    """What the database holds after the runs, against what the server acknowledged. Each run's
    rows are told apart by their numbers: CityOps's are LH-…, the references' carry the prefix
    the benchmark gave them."""
    from django.db.models import Count, Max, Min

    from audit.selectors import chain_verify
    from incidents.models import Incident
    from realtime.models import OutboxEvent, OutboxEventScope

    lines = []

    def verdict(stored: int, acknowledged: int) -> str:
        return "none lost" if stored == acknowledged else f"MISMATCH ({stored - acknowledged:+,})"

    for result in singles:
        if result.name == FLOOR:
            continue  # writes nothing
        if result.name in (PRODUCT, KEYED):
            rows = Incident.objects.filter(
                reporter_id=fx.operator_id,
                number__startswith="LH-",
                description=single_description(fx, result.name),
            )
        else:
            rows = Incident.objects.filter(number__startswith=f"BR-{fx.run}-")
        stored, acknowledged = rows.count(), len(result.created)
        lines.append(
            f"  {result.name:<46} answered 201: {acknowledged:>7,}  rows: {stored:>7,}  "
            f"{verdict(stored, acknowledged)}"
        )
    for result, rows_filter in bulks:
        stored = Incident.objects.filter(**rows_filter).count()
        acknowledged = result.rows_acknowledged + result.warmup_acknowledged
        lines.append(
            f"  {result.name:<46} created:      {acknowledged:>7,}  rows: {stored:>7,}  "
            f"{verdict(stored, acknowledged)} (warm-up batch included)"
        )
    cases = Incident.objects.filter(number__startswith="LH-").count()
    events = OutboxEvent.objects.filter(type="incidents.incident_reported").count()
    lines.append(
        f"  incidents.incident_reported events: {events:,} for {cases:,} cases taken in by "
        f"CityOps ({'one each' if events == cases else 'MISMATCH'})"
    )
    district = OutboxEventScope.objects.filter(scope="district:440309").aggregate(
        n=Count("id"), low=Min("seq"), high=Max("seq")
    )
    gapless = district["n"] and district["low"] == 1 and district["high"] == district["n"]
    lines.append(
        f"  district:440309 sequence numbers: {district['n']:,} events, "
        f"{district['low']}…{district['high']} ({'gapless' if gapless else 'GAPS'})"
    )
    started = time.monotonic()
    report = chain_verify()
    lines.append(
        f"  audit chain: {report.verified:,} entries verified in "
        f"{time.monotonic() - started:.1f} s ({'intact' if report.ok else report.broken})"
    )
    return lines


# --- the report ----------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}"


def database_description() -> str:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT version(), postgis_lib_version()")
            version, postgis = cursor.fetchone()
            return f"PostgreSQL {version.split()[1]} + PostGIS {postgis} (local TCP)"
        cursor.execute("SELECT sqlite_version(), spatialite_version()")
        sqlite, spatialite = cursor.fetchone()
        cursor.execute("PRAGMA journal_mode")
        (journal,) = cursor.fetchone()
    name = settings.DATABASES["default"]["NAME"]
    return (
        f"SQLite {sqlite} + SpatiaLite {spatialite} (in process), journal mode {journal}, "
        f"file {name}"
    )


def ms(value: float) -> str:
    """Milliseconds for the table; a request given up has no latency, only a lower bound."""
    return "gave up" if math.isinf(value) else f"{value:,.1f}"


def print_cpu_shares(
    args: argparse.Namespace, singles: list[SingleResult], bulks: list[BulkResult]
) -> None:
    """Where the CPU went: the server's, PostgreSQL's and Redis's share of each request (or of
    1,000 rows), and how many cores the target rate would take at that cost. The client's (the
    bench itself) is shown apart: on this machine it takes cores from the same pool."""
    # (name, CPU times, units measured, ms per unit shown as, units per second at the target)
    rows: list[tuple[str, CpuTimes, int, float, float]] = [
        (r.name, r.cpu, r.sent, 1000.0, SINGLE_TARGET_RATE) for r in singles
    ] + [(r.name, r.cpu, r.rows_acknowledged, 1_000_000.0, BULK_TARGET_PER_S) for r in bulks]
    if not rows:
        return

    def cell(seconds: float | None, units: int, scale: float) -> str:
        return "—" if seconds is None else f"{seconds / max(units, 1) * scale:,.1f}"

    print()
    print("Where the CPU went: ms per request (single) or per 1,000 rows (bulk)")
    print(
        f"{'':48}{'server':>8}{'Postgres':>9}{'Redis':>7}{'all':>8}{'client':>8}"
        f"{'cores at target':>17}"
    )
    for name, cpu, units, scale, target in rows:
        cores = cpu.total / max(units, 1) * target
        print(
            f"  {name:<46}{cell(cpu.server, units, scale):>8}"
            f"{cell(cpu.database, units, scale):>9}{cell(cpu.redis, units, scale):>7}"
            f"{cell(cpu.total, units, scale):>8}{cell(cpu.client, units, scale):>8}"
            f"{cores:>17.1f}"
        )
    print(
        "Postgres: every PostgreSQL process (backends, WAL writer, checkpointer, autovacuum)\n"
        "when it runs on this machine (— on SQLite: its work is in the server's); Redis: INFO\n"
        "cpu; all = server + Postgres + Redis; client: this benchmark's own process (the load\n"
        "generator), not in all; cores at target: all × the target's rate, "
        f"{SINGLE_TARGET_RATE:.0f} requests/s\n"
        f"(single) or {BULK_TARGET_PER_S:,.0f} rows/s (bulk); this machine has "
        f"{os.cpu_count()} cores."
    )


def print_report(
    args: argparse.Namespace,
    singles: list[SingleResult],
    bulks: list[BulkResult],
    checks: list[str],
) -> None:
    from django.conf import settings

    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    print("CityOps intake benchmark")
    print(f"Machine: {machine()}")
    print(f"Database: {database_description()}")
    server = (
        "one Daphne process (config.asgi)"
        if args.workers == 1
        else f"{args.workers} Daphne processes on one socket (manage.py cityops_serve)"
    )
    print(f"Channel layer: {layer}; server: {server}")
    if singles:
        print()
        print(
            f"Single reports: {args.rate:.0f}/s offered, open loop (Poisson arrivals), "
            f"{args.clients} client threads, {args.duration:.0f} s measured after "
            f"{args.warmup:.0f} s warm-up"
        )
        print(
            f"{'':48}{'2xx':>7}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
            f"{'svc p50':>9}{'CPU ms':>8}{'per core':>9}"
        )
        for r in singles:
            lat = r.latencies_ms()
            ok = sum(1 for o in r.measured if 200 <= o.status < 300)
            cpu_ms = r.cpu.server / max(r.sent, 1) * 1000
            print(
                f"  {r.name:<46}{ok:>7,}{ms(percentile(lat, 0.5)):>9}"
                f"{ms(percentile(lat, 0.9)):>9}{ms(percentile(lat, 0.99)):>9}{ms(max(lat)):>9}"
                f"{ms(percentile(r.service_ms(), 0.5)):>9}{cpu_ms:>8.1f}{1000 / cpu_ms:>9,.0f}"
            )
        for r in singles:
            other = {
                ("not sent" if code == GAVE_UP else code): n
                for code, n in r.statuses.items()
                if not 200 <= code < 300
            }
            print(
                f"    {r.name}: answers {dict(sorted(r.statuses.items()))}"
                + (f" (NOT 2xx: {other})" if other else "")
                + f"; load average before: {r.load_before:.2f}"
            )
    if bulks:
        print()
        senders = (
            "one after another"
            if args.gateways == 1
            else f"from {args.gateways} gateways at once, each one after another"
        )
        if args.gateways > 1:
            accounts = min(args.accounts, args.gateways)
            senders += (
                ", all as one integration account"
                if accounts == 1
                else f", as {accounts} integration accounts"
            )
        print(f"Bulk: batches of {args.batch_size:,}, {senders}, after a warm-up batch")
        print(
            f"{'':48}{'batches':>8}{'rows':>8}{'rows/s':>8}{'batch p50':>10}{'batch max':>10}"
            f"{'CPU ms':>8}{'per core':>9}"
        )
        for r in bulks:
            rows = r.rows_acknowledged
            cpu_ms = r.cpu.server / max(rows, 1) * 1_000_000
            print(
                f"  {r.name:<46}{r.batches:>8}{rows:>8,}{r.per_second:>8,.0f}"
                f"{statistics.median(r.batch_ms):>10,.0f}{max(r.batch_ms):>10,.0f}"
                f"{cpu_ms:>8,.0f}{1_000_000 / cpu_ms:>9,.0f}"
            )
        for r in bulks:
            print(f"    {r.name}: answers {r.statuses}; load average before: {r.load_before:.2f}")
    print()
    print(
        "CPU ms: the server process's CPU time per request (single) or per 1,000 rows (bulk);\n"
        "per core: requests or rows per second that one core would carry at that cost (the\n"
        "database's own work counts in process on SQLite, not on PostgreSQL)."
    )
    print_cpu_shares(args, singles, bulks)
    print()
    print("Records after the runs")
    for line in checks:
        print(line)
    print()
    print("Targets")
    for r in singles:
        if r.name.startswith("CityOps"):
            p99 = percentile(r.latencies_ms(), 0.99)
            verdict = "met" if p99 <= SINGLE_TARGET_P99_MS else "MISSED"
            shown = f"{p99:,.1f} ms" if not math.isinf(p99) else f"over {args.give_up:.0f} s"
            print(
                f"  {r.name}: p99 {shown} at {args.rate:.0f}/s offered, "
                f"target ≤ {SINGLE_TARGET_P99_MS:.0f} ms: {verdict}"
            )
    for r in bulks:
        if r.name.startswith("CityOps"):
            verdict = "met" if r.per_second >= BULK_TARGET_PER_S else "MISSED"
            print(
                f"  {r.name}: {r.per_second:,.0f} incidents/s committed, "
                f"target ≥ {BULK_TARGET_PER_S:,.0f}/s: {verdict}"
            )


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    tmp = configure_environment()
    started = time.monotonic()
    fx = prepare_database(args.accounts)
    from django.db import connections

    postmaster = local_postmaster()
    connections.close_all()  # the server is the only writer from here on
    if args.workers > 1 and not os.environ.get("REDIS_URL"):
        sys.exit("--workers: several server processes need REDIS_URL (the Redis channel layer)")
    port = free_port()
    server = start_server(port, args.workers)
    server_pids = server_processes(server, args.workers)
    meter = CpuMeter(server_pids, postmaster)
    log(f"server pid(s) {', '.join(map(str, server_pids))} on 127.0.0.1:{port}")
    singles: list[SingleResult] = []
    bulks: list[tuple[BulkResult, dict[str, Any]]] = []
    try:
        if not args.skip_single:
            product, keyed, reference, floor = single_requests(fx)
            for name, make in (
                (PRODUCT, product),
                (KEYED, keyed),
                ("DRF ModelSerializer create (reference)", reference),
                (FLOOR, floor),
            ):
                singles.append(
                    run_open_loop(
                        name,
                        port,
                        make,
                        rate=args.rate,
                        duration=args.duration,
                        warmup=args.warmup,
                        clients=args.clients,
                        give_up=args.give_up,
                        meter=meter,
                        expect=201,
                    )
                )
        if not args.skip_bulk:
            product, reference = bulk_requests(fx, args.batch_size)
            runs = [
                (
                    "CityOps POST /api/v1/incidents/bulk/",
                    product,
                    args.batches,
                    # The gateway's cases with CityOps numbers (the references' are BB…).
                    {"reporter_id__in": fx.gateway_ids, "number__startswith": "LH-"},
                ),
                (
                    "DRF many=True, row by row (reference)",
                    reference("rows"),
                    args.reference_batches,
                    {"number__startswith": f"BBr-{fx.run}-"},
                ),
                (
                    "DRF many=True + bulk_create (reference)",
                    reference("bulk_create"),
                    args.reference_batches,
                    {"number__startswith": f"BBb-{fx.run}-"},
                ),
            ]
            for label, make, count, rows in runs:
                result = run_bulk(
                    label,
                    port,
                    make,
                    batches=count,
                    gateways=args.gateways,
                    api_keys=fx.api_keys,
                    meter=meter,
                    acknowledged=lambda body: body["created"],
                )
                bulks.append((result, rows))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    checks = check_records(fx, singles, bulks)
    print_report(args, singles, [result for result, _ in bulks], checks)
    print(f"\nTotal run time {time.monotonic() - started:.0f} s.")
    if tmp is not None and not args.keep:
        for path in sorted(tmp.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        tmp.rmdir()


if __name__ == "__main__":
    main()
