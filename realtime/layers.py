"""The Redis channel layer of the live feed: channels_redis' pub/sub layer (ADR 0010), decoding
each published message once per process instead of once per socket, and sending many group
messages in one Redis round trip (`group_send_many`).

The pub/sub layer receives a group's message once per process and puts the same bytes object
into the queue of every local channel in the group; each channel's `receive()` then decodes it
with msgpack on its own. A district's event reaches every wall, console and phone socket of the
district in a process, so the same bytes were decoded hundreds of times (a tenth of a Daphne's
time in the fan-out benchmark). Here the decoded message is kept, keyed by those bytes, for the
next sockets that receive them; each gets its own shallow copy of the top level, and the values
inside are shared read-only (the consumer never changes an event).

`group_send_many` also packs each event once, not once per group: a bulk batch's 1,000 events
go to five scopes each, in batch messages (a list of events) per scope, and packing every copy
cost ≈18 ms of a server's CPU per batch against ≈3 ms for each event once. msgpack writes a
list as its header followed by its items, so a batch message's bytes are its items' packed
bytes joined behind the headers; they are the same bytes `serialize` makes (tested).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from typing import Any

import msgpack
from channels_redis.pubsub import RedisPubSubChannelLayer as _RedisPubSubChannelLayer

# Messages published recently enough that another local socket may still have them queued.
# A message evicted early is simply decoded again.
DECODED_CACHE_SIZE = 256


class RedisPubSubChannelLayer(_RedisPubSubChannelLayer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decoded: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
        # One layer object serves every event loop of the process (one per thread).
        self._decoded_lock = threading.Lock()

    def deserialize(self, message: bytes) -> dict[str, Any]:
        # bytes hash once and cache the hash, and the queues hold the very same object, so
        # the lookup is an identity match after the first socket.
        with self._decoded_lock:
            decoded = self._decoded.get(message)
            if decoded is not None:
                self._decoded.move_to_end(message)
        if decoded is None:
            decoded = super().deserialize(message)
            with self._decoded_lock:
                self._decoded[message] = decoded
                if len(self._decoded) > DECODED_CACHE_SIZE:
                    self._decoded.popitem(last=False)
        return dict(decoded)

    async def group_send_many(self, messages: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """group_send of each (group, message), in order, as one pipeline of PUBLISH commands per
        Redis host instead of one round trip each: what the after-commit hook and the relay
        send (a bulk batch touches hundreds of groups). Built on the internals of
        channels_redis 4.3 (the version pinned; tests/realtime/test_channel_layer.py)."""
        layer = self._get_layer()
        serializer = self._serializer
        # Packed pieces by id(); the messages, and so the ids, live until the call returns.
        packed: dict[int, bytes] | None = (
            {} if not serializer.crypter and serializer.random_prefix_length <= 0 else None
        )
        by_shard: dict[Any, list[tuple[str, bytes]]] = defaultdict(list)
        for group, message in messages:
            channel = layer._get_group_channel_name(group)
            data = self.serialize(message) if packed is None else _pack(message, packed)
            by_shard[layer._get_shard(channel)].append((channel, data))
        for shard, batch in by_shard.items():
            async with shard._lock:
                shard._ensure_redis()
                async with shard._redis.pipeline(transaction=False) as pipe:
                    for channel, data in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()


_HEADERS = msgpack.Packer()


def _pack(message: dict[str, Any], packed: dict[int, bytes]) -> bytes:
    """msgpack.packb(message), reusing what was packed before in `packed`: the message itself,
    or the dict items of a list in it (a batch message's events)."""
    data = packed.get(id(message))
    if data is not None:
        return data
    parts = [_HEADERS.pack_map_header(len(message))]
    for key, value in message.items():
        parts.append(msgpack.packb(key))
        if type(value) is list and value and all(type(item) is dict for item in value):
            parts.append(_HEADERS.pack_array_header(len(value)))
            for item in value:
                piece = packed.get(id(item))
                if piece is None:
                    piece = packed[id(item)] = msgpack.packb(item)
                parts.append(piece)
        else:
            parts.append(msgpack.packb(value))
    data = packed[id(message)] = b"".join(parts)
    return data
