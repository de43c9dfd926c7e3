"""The district wall screen (大屏) under a surge: how its page keeps up, in Debian's Chromium.

Runs against a server that is already up (`make demo` prints the wall's address; its files are
var/demo_wall_url and var/demo_api_key):

    .venv/bin/python bench/wall_bench.py --surge 1500 --live 300      # load a surge, then measure
    .venv/bin/python bench/wall_bench.py --live 300                   # measure what is there
    .venv/bin/python bench/wall_bench.py --base-url http://127.0.0.1:8133 \\
        --wall-url "http://127.0.0.1:8133/command/wall/?token=cw_…" --api-key-file …/demo_api_key

1. `--surge N` (default 0): N sensor alarms through the bulk API (`/api/v1/incidents/bulk/`,
   batches of 500, the demo's gateway key), at random points inside the district's communities
   (drawn from `/api/v1/regions/`, a fixed seed), half of them 内涝积水 (90002, an emergency of
   level Ⅳ — a typhoon's flooding), the rest manhole, rain-grate and pump-station alarms: the
   wall then holds N more open cases, most of them emergencies, with their clocks running.
2. Opens the wall at 1920×1080 (the kiosk's address, a fresh browser) and reports:
   * the initial drawing: from navigation to the wall drawn with its boundaries, and the long
     tasks (> 50 ms, PerformanceObserver) until a second after;
   * idle: the long tasks over `--idle` seconds (default 6), the frame rate over 3 s
     (requestAnimationFrame), and how often the clock (updated every second) changed in 8 s;
   * what is drawn: rows of the overdue list and of the ticker, "另有 N 件" against the counts,
     marker and cluster elements on the map, DOM elements in all;
3. `--live M` (default 300): M more alarms in ONE bulk batch (one moment: they share their
   received time) while the wall is open — the time from the POST to the wall's 今日上报 showing
   them all, the long tasks meanwhile, and whether the ticker's top row is the batch's newest
   case (the highest number), as a reload would show it.

No server-side figure is measured here (intake: bench/intake_bench.py; the feed:
bench/ws_bench.py). One browser, one page: the figures are the page's own main thread.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import shapely
from playwright.sync_api import sync_playwright

PROJECT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
WALL_READY = "window.cityopsWall && window.cityopsWall.ready && window.cityopsWall.boundaries"
SURGE_CATEGORIES = ["90002", "90002", "90002", "01004", "01072", "01003"]

LONG_TASKS = """window.__longTasks = [];
try {
  new PerformanceObserver(function (list) {
    list.getEntries().forEach(function (e) { window.__longTasks.push(Math.round(e.duration)); });
  }).observe({type: "longtask", buffered: true});
} catch (e) {}"""
FRAMES = """ms => new Promise(done => { let n = 0, t0 = performance.now(), worst = 0, last = t0;
  function frame(t) { n++; worst = Math.max(worst, t - last); last = t;
    if (t - t0 < ms) requestAnimationFrame(frame);
    else done({fps: n / ((t - t0) / 1000), worst: Math.round(worst)}); }
  requestAnimationFrame(frame); })"""
CLOCK = """ms => new Promise(done => { const seen = [];
  const node = document.getElementById('wall-time');
  let last = node.textContent; const t0 = performance.now();
  const timer = setInterval(() => { if (node.textContent !== last) { seen.push(performance.now());
    last = node.textContent; } if (performance.now() - t0 > ms) { clearInterval(timer);
    done(seen.slice(1).map((t, i) => Math.round(t - seen[i]))); } }, 20); })"""
DRAWN = """() => { const $ = id => document.getElementById(id);
  const pane = s => document.querySelectorAll(s).length;
  return {cases: window.cityopsWall.cases.size,
    overdueRows: pane('#overdue-list li'),
    overdueCounts: $('overdue-counts').innerText.replace(/\\s+/g, ' '),
    overdueMore: $('overdue-more').classList.contains('is-none') || $('overdue-more').hidden
      ? '' : $('overdue-more').textContent,
    tickerRows: pane('#ticker-list li'),
    mapIcons: pane('.leaflet-marker-icon'),
    emergencyDiamonds: pane('.leaflet-map-pane .mk-emergency'),
    emergencyClusters: pane('.leaflet-map-pane .cle'),
    domElements: document.getElementsByTagName('*').length,
    mismatches: window.cityopsWall.mismatches.length}; }"""


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def _post_bulk(base_url: str, api_key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    request = urllib.request.Request(
        base_url + "/api/v1/incidents/bulk/",
        data=json.dumps({"items": items}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {api_key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def _points(base_url: str, count: int, rng: random.Random) -> list[tuple[float, float]]:
    """`count` random points inside the active generation's communities."""
    features = _get(base_url + "/api/v1/regions/?level=community")["features"]
    shapes = [shapely.geometry.shape(f["geometry"]) for f in features]
    weights = [shape.area for shape in shapes]
    points: list[tuple[float, float]] = []
    while len(points) < count:
        shape = rng.choices(shapes, weights)[0]
        west, south, east, north = shape.bounds
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        if shape.contains(shapely.Point(lon, lat)):
            points.append((round(lon, 6), round(lat, 6)))
    return points


def _alarms(points: list[tuple[float, float]], tag: str, categories: list[str]) -> list[dict]:
    return [
        {
            "channel": "sensor",
            "category": categories[i % len(categories)],
            "lon": lon,
            "lat": lat,
            "source_ref": f"BENCH-{tag}-{i:05d}",
            "description": "水位传感器报警（基准测试）",
        }
        for i, (lon, lat) in enumerate(points)
    ]


def surge(base_url: str, api_key: str, count: int, rng: random.Random) -> None:
    tag = f"S{int(time.time())}"
    items = _alarms(_points(base_url, count, rng), tag, SURGE_CATEGORIES)
    created = 0
    for start in range(0, len(items), 500):
        created += _post_bulk(base_url, api_key, items[start : start + 500])["created"]
    print(f"surge: {created} of {count} alarms created")


def _tasks(page: Any, since: int) -> list[int]:
    tasks: list[int] = page.evaluate(f"window.__longTasks.slice({since})")
    return tasks


def _summary(tasks: list[int]) -> str:
    if not tasks:
        return "none"
    return f"{len(tasks)}, longest {max(tasks)} ms, {sum(tasks)} ms in all"


def measure(args: argparse.Namespace, api_key: str, rng: random.Random) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        context = browser.new_context(
            viewport={"width": 1920, "height": 1080}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.add_init_script(LONG_TASKS)
        started = time.perf_counter()
        page.goto(args.wall_url, wait_until="load", timeout=180_000)
        page.wait_for_function(WALL_READY, timeout=180_000)
        drawn_in = time.perf_counter() - started
        page.wait_for_timeout(1000)
        at_load = _tasks(page, 0)
        print(f"initial drawing: {drawn_in * 1000:.0f} ms; long tasks: {_summary(at_load)}")
        print("drawn:", json.dumps(page.evaluate(DRAWN), ensure_ascii=False))

        since = len(_tasks(page, 0))
        page.wait_for_timeout(args.idle * 1000)
        print(f"idle {args.idle} s: long tasks: {_summary(_tasks(page, since))}")
        frames = page.evaluate(FRAMES, 3000)
        print(f"frames: {frames['fps']:.1f}/s, longest frame {frames['worst']} ms")
        gaps = page.evaluate(CLOCK, 8000)
        print(f"clock: {len(gaps) + 1} changes in 8 s, gaps {gaps} ms")

        if args.live:
            before = int(page.evaluate("document.getElementById('kpi-reported').textContent"))
            points = _points(args.base_url, args.live, rng)
            items = _alarms(points, f"L{int(time.time())}", ["90002"])
            since = len(_tasks(page, 0))
            posted = time.perf_counter()
            answer = _post_bulk(args.base_url, api_key, items)
            created = answer["created"]
            newest = max(r["number"] for r in answer["results"] if r["result"] == "created")
            page.wait_for_function(
                f"+document.getElementById('kpi-reported').textContent >= {before + created}",
                timeout=120_000,
                polling=50,
            )
            shown_in = time.perf_counter() - posted
            page.wait_for_timeout(3000)
            print(
                f"live batch of {created}: on the KPI {shown_in:.2f} s after the POST began; "
                f"long tasks: {_summary(_tasks(page, since))}"
            )
            top = page.evaluate(
                "document.querySelector('#ticker-list li') &&"
                " document.querySelector('#ticker-list li').dataset.number"
            )
            print(f"ticker's top row {top}: {'the' if top == newest else 'NOT the'} newest")
            print("drawn:", json.dumps(page.evaluate(DRAWN), ensure_ascii=False))
            frames = page.evaluate(FRAMES, 3000)
            print(f"frames after: {frames['fps']:.1f}/s, longest frame {frames['worst']} ms")
        print("page errors:", errors or "none")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--wall-url", help="the kiosk's address (default: var/demo_wall_url)")
    parser.add_argument("--api-key-file", default=str(PROJECT / "var" / "demo_api_key"))
    parser.add_argument("--surge", type=int, default=0, help="alarms to load first")
    parser.add_argument("--live", type=int, default=300, help="alarms in the live batch")
    parser.add_argument("--idle", type=int, default=6, help="seconds watched while idle")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()
    if not args.wall_url:
        text = (PROJECT / "var" / "demo_wall_url").read_text()
        found = re.search(r"https?://\S+/command/wall/\?token=\S+", text)
        if not found:
            sys.exit("no wall address in var/demo_wall_url: pass --wall-url")
        args.wall_url = found.group(0)
    api_key = Path(args.api_key_file).read_text().strip()
    rng = random.Random(args.seed)
    if args.surge:
        surge(args.base_url.rstrip("/"), api_key, args.surge, rng)
    measure(args, api_key, rng)


if __name__ == "__main__":
    main()
