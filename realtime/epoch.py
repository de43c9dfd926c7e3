"""The channel layer's epoch: a value that changes when the layer's Redis loses its data.

Every socket's heartbeat carries it. Redis keeps group memberships (channels_redis.core) and
messages in flight only in memory here; after FLUSHALL or a restart without persistence those
are gone, and so is the epoch key. The next process to look sets a new random value (SET NX, so
all processes agree on one), clients see the epoch change and ask for everything after their
last sequence numbers, and the database replays what was lost. With the in-process layer the
epoch is a random value per process (a restart of the process is the same kind of loss).

`current_epoch()` raises when Redis does not answer in time: that is what a heartbeat reports
as `"layer": "down"`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import weakref
from typing import Any

from django.conf import settings
from redis import asyncio as aioredis

EPOCH_KEY = "cityops:realtime:epoch"
# One Redis round trip per process per second answers every socket's heartbeat.
EPOCH_TTL_SECONDS = 1.0
TIMEOUT_SECONDS = 2.0

_PROCESS_EPOCH = secrets.token_hex(8)
# Per event loop (a Redis client belongs to the loop that made it): (client, epoch, fetched at).
_state: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def redis_host() -> Any:
    """The first host of the default channel layer's Redis (a URL or a dict of connection
    arguments, as channels_redis accepts), or None for a layer without Redis."""
    config = settings.CHANNEL_LAYERS.get("default", {})
    if "redis" not in str(config.get("BACKEND", "")).lower():
        return None
    hosts = config.get("CONFIG", {}).get("hosts") or ["redis://localhost:6379"]
    return hosts[0]


def _client(host: Any) -> Any:
    if isinstance(host, str):
        return aioredis.Redis.from_url(host, socket_timeout=TIMEOUT_SECONDS)
    if isinstance(host, dict) and "address" in host:
        options = {k: v for k, v in host.items() if k != "address"}
        return aioredis.Redis.from_url(host["address"], **options)
    return aioredis.Redis(**dict(host))


async def current_epoch() -> str:
    host = redis_host()
    if host is None:
        return _PROCESS_EPOCH
    loop = asyncio.get_running_loop()
    state = _state.setdefault(loop, {"lock": asyncio.Lock()})
    async with state["lock"]:
        if "epoch" in state and time.monotonic() - state["at"] < EPOCH_TTL_SECONDS:
            return str(state["epoch"])
        if state.get("host") != host:
            state["client"] = _client(host)
            state["host"] = host
        client = state["client"]
        async with asyncio.timeout(TIMEOUT_SECONDS):
            await client.set(EPOCH_KEY, secrets.token_hex(8), nx=True)
            value = await client.get(EPOCH_KEY)
        if value is None:  # flushed between the two commands: the next look sets it
            raise ConnectionError("the channel layer's epoch key vanished")
        state["epoch"] = value.decode() if isinstance(value, bytes) else str(value)
        state["at"] = time.monotonic()
        return str(state["epoch"])
