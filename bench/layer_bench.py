"""Which channels_redis layer for CityOps' fan-out: `core.RedisChannelLayer` or
`pubsub.RedisPubSubChannelLayer`?

The live feed's shape is fan-out: one event goes to one group per scope (`scope.district.440309`
and a few narrower ones), and every wall screen, console and phone of the district is a socket in
the district group, spread over several Daphne processes. This script imitates that with no
Django: it starts a private redis-server on a free loopback port (or uses --redis-url), then per
layer

1. starts P worker processes ("Daphne processes"); each makes C channels ("sockets") on its own
   layer instance and adds them all to the district group;
2. the parent sends M events (≈1 KB payload, like an incident summary) to the group with
   `group_send`, as fast as it can, as the outbox's after-commit hook does;
3. every worker counts, per channel, what arrives until all M are in or a deadline passes, and
   records the latency of each delivery (send time stamped in the message → receive time).

Printed per layer: the time `group_send` took (the cost paid after each commit), deliveries per
second end to end, latency p50/p99/max, messages lost, the Redis commands the run cost
(INFO commandstats) and Redis memory at its peak. Usage:

    .venv/bin/python bench/layer_bench.py [--processes 2] [--sockets 250] [--events 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

CORE = "channels_redis.core.RedisChannelLayer"
PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
# name → (backend, extra CONFIG). core's default capacity is 100 messages per channel, and all
# sockets of one process share ONE Redis list (process-local channel names "…!…"), so a burst
# beyond 100 per process is dropped by group_send without an error; the second core row raises
# the capacity so that its cost can be compared when nothing is lost.
LAYERS: dict[str, tuple[str, dict[str, Any]]] = {
    "core": (CORE, {}),
    "core-cap": (CORE, {"capacity": 1_000_000}),
    "pubsub": (PUBSUB, {}),
}
GROUP = "scope.district.440309"
PAYLOAD = {
    "incident": {
        "number": "20261124-0001",
        "status": "dispatched",
        "channel": "grid_patrol",
        "category": {"code": "0101", "name": "暴露垃圾 exposed rubbish " * 4},
        "severity": "normal",
        "location": [114.0305, 22.6696],
        "district": "440309",
        "street": "440309001",
        "community": "440309001001",
        "grid": "440309001001001",
        "owner": {"level": "street", "code": "440309001"},
        "deadline": "2026-11-25T18:00:00+08:00",
        "notes": "x" * 600,
    },
    "transition": {"action": "dispatch", "from": "registered", "to": "dispatched"},
}


def layer_for(kind: str, redis_url: str) -> Any:
    from importlib import import_module

    backend, extra = LAYERS[kind]
    module, name = backend.rsplit(".", 1)
    return getattr(import_module(module), name)(hosts=[redis_url], **extra)


def worker(
    kind: str, redis_url: str, sockets: int, events: int, ready: Any, go: Any, out: Any
) -> None:
    """One "Daphne process": C channels in the group, receive until all events are in."""

    async def run() -> dict[str, Any]:
        layer = layer_for(kind, redis_url)
        channels = [await layer.new_channel() for _ in range(sockets)]
        for channel in channels:
            await layer.group_add(GROUP, channel)
        ready.put(os.getpid())
        latencies: list[float] = []
        counts = dict.fromkeys(channels, 0)
        last_receipt = 0.0
        errors: dict[str, int] = {}
        stopping = False

        async def drain(channel: str) -> None:
            nonlocal last_receipt
            while counts[channel] < events:
                try:
                    message = await layer.receive(channel)
                except Exception as exc:  # counted and reported; a consumer would crash on it
                    if stopping:
                        return  # cancelled at the deadline (core turns that into a TimeoutError)
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                now = time.time()
                latencies.append(now - message["sent"])
                counts[channel] += 1
                last_receipt = now

        tasks = [asyncio.create_task(drain(channel)) for channel in channels]
        # Deadline: once the parent has sent everything (it says so on `go`), whatever has not
        # arrived within 10 s is lost.
        while not go.is_set() and not all(task.done() for task in tasks):
            await asyncio.sleep(0.05)
        _done, pending = await asyncio.wait(tasks, timeout=10)
        stopping = True
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return {
            "received": sum(counts.values()),
            "expected": sockets * events,
            "latencies": latencies,
            "last_receipt": last_receipt,
            "errors": errors,
        }

    out.put(asyncio.run(run()))


def redis_stats(redis_url: str) -> tuple[int, int]:
    """(commands executed so far, peak memory bytes) from INFO."""
    import redis

    client = redis.Redis.from_url(redis_url)
    calls = sum(int(v["calls"]) for v in client.info("commandstats").values())
    peak = int(client.info("memory")["used_memory_peak"])
    client.close()
    return calls, peak


def run_layer(kind: str, redis_url: str, processes: int, sockets: int, events: int) -> dict:
    import redis

    redis.Redis.from_url(redis_url).flushall()
    redis.Redis.from_url(redis_url).config_resetstat()
    context = mp.get_context("spawn")
    ready, go, out = context.Queue(), context.Event(), context.Queue()
    workers = [
        context.Process(target=worker, args=(kind, redis_url, sockets, events, ready, go, out))
        for _ in range(processes)
    ]
    for process in workers:
        process.start()
    for _ in workers:
        ready.get(timeout=120)
    time.sleep(0.5)  # let the last subscriptions settle
    calls_before, _ = redis_stats(redis_url)

    async def publish() -> float:
        layer = layer_for(kind, redis_url)
        start = time.perf_counter()
        for n in range(events):
            await layer.group_send(
                GROUP, {"type": "outbox.event", "n": n, "sent": time.time(), "payload": PAYLOAD}
            )
        elapsed = time.perf_counter() - start
        # Close the sender's connections. Not core's flush(): that deletes every "asgi*" key
        # in Redis, i.e. the messages still waiting for the receivers.
        if hasattr(layer, "close_pools"):
            await layer.close_pools()
        else:
            await layer.flush()  # pubsub: only closes this instance's own connections
        return elapsed

    first_send = time.time()
    send_seconds = asyncio.run(publish())
    go.set()
    results = [out.get(timeout=300) for _ in workers]
    for process in workers:
        process.join(30)
    calls_after, peak = redis_stats(redis_url)
    latencies = sorted(latency for r in results for latency in r["latencies"])
    received = sum(r["received"] for r in results)
    expected = sum(r["expected"] for r in results)
    last = max(r["last_receipt"] for r in results) or time.time()
    return {
        "kind": kind,
        "send_seconds": send_seconds,
        "received": received,
        "expected": expected,
        "wall": last - first_send,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
        "commands": calls_after - calls_before,
        "peak_mb": peak / 1e6,
        "errors": {
            name: sum(r["errors"].get(name, 0) for r in results)
            for name in {name for r in results for name in r["errors"]}
        },
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2, help="worker processes (Daphnes)")
    parser.add_argument("--sockets", type=int, default=250, help="sockets per process")
    parser.add_argument("--events", type=int, default=200, help="events sent to the group")
    parser.add_argument("--redis-url", default="", help="use this Redis (it is FLUSHALLed)")
    args = parser.parse_args()

    server = None
    directory = tempfile.mkdtemp(prefix="cityops-layer-bench-")
    redis_url = args.redis_url
    if not redis_url:
        port = free_port()
        server = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdout=subprocess.DEVNULL,
        )
        redis_url = f"redis://127.0.0.1:{port}/0"
        import redis

        for _ in range(100):
            try:
                redis.Redis.from_url(redis_url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
    try:
        import channels_redis
        import redis

        version = redis.Redis.from_url(redis_url).info("server")["redis_version"]
        print("CityOps channel-layer fan-out benchmark")
        print(
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.2f}; Python {platform.python_version()}, channels_redis "
            f"{channels_redis.__version__}, Redis {version} (local TCP)"
        )
        print(
            f"Fan-out: {args.processes} processes × {args.sockets} sockets in one group, "
            f"{args.events} events of ≈1 KB sent with group_send as fast as possible = "
            f"{args.processes * args.sockets * args.events:,} deliveries per layer"
        )
        print()
        header = (
            f"{'layer':<10}{'group_send total s':>19}{'per event ms':>14}{'delivered':>12}"
            f"{'lost':>8}{'end-to-end s':>14}{'deliveries/s':>14}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'max ms':>9}{'Redis cmds':>12}{'Redis peak MB':>15}"
        )
        print(header)
        print("-" * len(header))
        for kind in LAYERS:
            r = run_layer(kind, redis_url, args.processes, args.sockets, args.events)
            print(
                f"{r['kind']:<10}{r['send_seconds']:>19.3f}"
                f"{1000 * r['send_seconds'] / args.events:>14.2f}{r['received']:>12,}"
                f"{r['expected'] - r['received']:>8,}{r['wall']:>14.2f}"
                f"{r['received'] / r['wall'] if r['wall'] > 0 else 0:>14,.0f}"
                f"{1000 * r['p50']:>9.1f}{1000 * r['p99']:>9.1f}{1000 * r['max']:>9.1f}"
                f"{r['commands']:>12,}{r['peak_mb']:>15.1f}"
            )
            if r["errors"]:
                print(f"{'':<10}receive() raised: {r['errors']}")
            sys.stdout.flush()
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
