"""Batch actions (批量办理) against one request per case, on a running server.

Runs against a server that is already up (`make demo`; it keeps the users' password in
var/demo_password and the sensor gateway's key in var/demo_api_key):

    .venv/bin/python bench/batch_bench.py                       # 3 rounds of 100 cases
    .venv/bin/python bench/batch_bench.py --cases 50 --rounds 5
    .venv/bin/python bench/batch_bench.py --base-url http://127.0.0.1:8133 \\
        --password-file …/var/demo_password --api-key-file …/var/demo_api_key

1. Loads `rounds × 3 × cases` new sensor alarms (内涝积水 and manhole alarms at random points in
   the district's communities, a fixed seed) through the bulk API, so every round has fresh
   cases 待立案.
2. Signs in as `district` (a session, as the consoles' scripts use) and, each round:
   * **batch**: `POST /api/v1/incidents/batch/register/` with `cases` numbers, then
     `…/batch/dispatch/` of the same cases to 水务 (SWJ);
   * **one by one** (the reference, measured in the same run on other fresh cases): the same
     two steps as one `POST /api/v1/incidents/<number>/register/` and `…/dispatch/` per case,
     one after the other from one client — what the queue would do with a button per row.
   Every request carries an Idempotency-Key, as the pages send.
3. Prints, per step, the milliseconds per case of each way (median over the rounds) and checks
   that every case was done (a batch's `done`; each single request's 200).

The server does the same work per case either way (one service call, one transaction, one
timeline row, one audit entry, one event); the difference is HTTP, sign-in and idempotency
overhead per request, and the client's round trips.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import random
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import shapely
import shapely.geometry

PROJECT = Path(__file__).resolve().parents[1]
CATEGORIES = ["90002", "90002", "01004", "01072"]


class Client:
    """A signed-in browser-like session (cookie jar, CSRF token)."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(f"{base}/accounts/login/").read()
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": self.csrf()}
        ).encode()
        request = urllib.request.Request(
            f"{base}/accounts/login/", data=form, headers={"Referer": f"{base}/accounts/login/"}
        )
        self.opener.open(request).read()
        if not any(cookie.name == "sessionid" for cookie in self.jar):
            sys.exit(f"could not sign in as {username}")

    def csrf(self) -> str:
        return next(cookie.value for cookie in self.jar if cookie.name == "csrftoken") or ""

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.base}{path}",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "X-CSRFToken": self.csrf(),
                "Referer": f"{self.base}/",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
        try:
            with self.opener.open(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def _json(url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def load_cases(base: str, api_key: str, count: int, seed: int) -> list[str]:
    """`count` new cases 待立案 through the bulk API, at points inside the communities."""
    regions = _json(f"{base}/api/v1/regions/?level=community")["features"]
    shapes = [shapely.geometry.shape(f["geometry"]) for f in regions]
    rng = random.Random(seed)
    numbers: list[str] = []
    tag = uuid.uuid4().hex[:8]
    while len(numbers) < count:
        items = []
        for i in range(min(500, count - len(numbers))):
            point = shapely.point_on_surface(rng.choice(shapes))
            items.append(
                {
                    "channel": "sensor",
                    "category": rng.choice(CATEGORIES),
                    "lon": round(point.x + rng.uniform(-1e-4, 1e-4), 6),
                    "lat": round(point.y + rng.uniform(-1e-4, 1e-4), 6),
                    "source_ref": f"BENCH-{tag}-{len(numbers) + i}",
                    "description": "batch bench",
                }
            )
        answer = _json(
            f"{base}/api/v1/incidents/bulk/",
            {"items": items},
            {"Authorization": f"Api-Key {api_key}"},
        )
        numbers += [r["number"] for r in answer["results"] if r["result"] == "created"]
    return numbers[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--password-file", default=str(PROJECT / "var/demo_password"))
    parser.add_argument("--api-key-file", default=str(PROJECT / "var/demo_api_key"))
    parser.add_argument("--cases", type=int, default=100, help="cases per batch (at most 100)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = args.base_url.rstrip("/")
    password = Path(args.password_file).read_text().strip()
    api_key = Path(args.api_key_file).read_text().strip()

    numbers = load_cases(base, api_key, args.rounds * 2 * args.cases, seed=11)
    client = Client(base, "district", password)
    steps = (("register", {}), ("dispatch", {"department": "SWJ"}))
    per_case: dict[tuple[str, str], list[float]] = {}
    problems: list[str] = []
    for round_ in range(args.rounds):
        start = round_ * 2 * args.cases
        batch_cases = numbers[start : start + args.cases]
        single_cases = numbers[start + args.cases : start + 2 * args.cases]
        for action, fields in steps:
            began = time.perf_counter()
            code, answer = client.post(
                f"/api/v1/incidents/batch/{action}/", {"numbers": batch_cases, **fields}
            )
            per_case.setdefault(("batch", action), []).append(
                (time.perf_counter() - began) * 1000 / len(batch_cases)
            )
            if code != 200 or answer.get("done") != len(batch_cases):
                problems.append(f"batch {action}: HTTP {code}, done {answer.get('done')}")
            began = time.perf_counter()
            failed = 0
            for number in single_cases:
                code, _answer = client.post(f"/api/v1/incidents/{number}/{action}/", fields)
                failed += code != 200
            per_case.setdefault(("one by one", action), []).append(
                (time.perf_counter() - began) * 1000 / len(single_cases)
            )
            if failed:
                problems.append(f"one by one {action}: {failed} not 200")

    print(f"{args.rounds} rounds of {args.cases} cases against {base} (median ms per case)")
    print(f"{'step':<10} {'batch':>8} {'one by one (reference)':>24} {'ratio':>7}")
    for action, _fields in steps:
        batch = statistics.median(per_case[("batch", action)])
        single = statistics.median(per_case[("one by one", action)])
        print(f"{action:<10} {batch:>8.1f} {single:>24.1f} {single / batch:>6.1f}×")
    if problems:
        print("NOT ALL DONE:", *problems, sep="\n  ")
        sys.exit(1)
    print("every case done both ways")


if __name__ == "__main__":
    main()
