"""The configured channel layer (Redis under `make test`, in-process in the demo) delivers."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings


def test_a_group_message_reaches_a_member_channel():
    layer = get_channel_layer()
    # Redis pub/sub when REDIS_URL is set (docs/decisions/0010-channel-layer-redis-pubsub.md).
    expected_backend = "RedisPubSubChannelLayer" if settings.REDIS_URL else "InMemoryChannelLayer"
    assert type(layer).__name__ == expected_backend

    async def roundtrip() -> dict[str, object]:
        channel = await layer.new_channel()
        await layer.group_add("district.440309", channel)
        await layer.group_send("district.440309", {"type": "situation.ping", "seq": 1})
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        await layer.group_discard("district.440309", channel)
        return message

    assert async_to_sync(roundtrip)() == {"type": "situation.ping", "seq": 1}


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis layer (make test sets REDIS_URL)")
def test_a_group_message_is_decoded_once_for_all_local_members():
    """realtime.layers: the sockets of a process that share a group get the one decoded
    message (each its own top-level dict), not a msgpack decode each."""
    layer = get_channel_layer()
    events = [{"id": n, "payload": {"text": "积水 " * 20}} for n in range(3)]

    async def fan_out() -> list[dict[str, object]]:
        channels = [await layer.new_channel() for _ in range(3)]
        for channel in channels:
            await layer.group_add("street.440309001", channel)
        await layer.group_send("street.440309001", {"type": "outbox.events", "events": events})
        received = [
            await asyncio.wait_for(layer.receive(channel), timeout=5) for channel in channels
        ]
        for channel in channels:
            await layer.group_discard("street.440309001", channel)
        return received

    first, second, third = async_to_sync(fan_out)()
    assert first == second == third == {"type": "outbox.events", "events": events}
    assert first["events"] is second["events"] is third["events"]
    first["type"] = "changed by one socket"
    assert second["type"] == third["type"] == "outbox.events"


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis layer (make test sets REDIS_URL)")
def test_many_group_messages_go_in_one_call_and_keep_their_order():
    """realtime.layers.group_send_many: what the after-commit hook and the relay use."""
    layer = get_channel_layer()

    async def send_and_receive() -> tuple[list[object], list[object]]:
        street, community = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("scope.street.440309001", street)
        await layer.group_add("scope.community.440309001001", community)
        await layer.group_send_many(
            [
                ("scope.street.440309001", {"type": "outbox.event", "n": 1}),
                ("scope.community.440309001001", {"type": "outbox.event", "n": 2}),
                ("scope.street.440309001", {"type": "outbox.event", "n": 3}),
            ]
        )
        got_street = [
            (await asyncio.wait_for(layer.receive(street), timeout=5))["n"] for _ in range(2)
        ]
        got_community = [(await asyncio.wait_for(layer.receive(community), timeout=5))["n"]]
        await layer.group_discard("scope.street.440309001", street)
        await layer.group_discard("scope.community.440309001001", community)
        return got_street, got_community

    assert async_to_sync(send_and_receive)() == ([1, 3], [2])


def test_group_send_many_packs_each_event_once_into_the_bytes_serialize_makes():
    """A batch message's bytes are built from its events packed once each (realtime.layers):
    byte for byte what the layer's own serialize makes, for short and long lists and for an
    event sent on its own."""
    import msgpack

    from realtime.layers import RedisPubSubChannelLayer, _pack

    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:9/0"])  # never connects
    events = [
        {
            "type": "outbox.event",
            "id": n,
            "payload": {"说明": "道路积水", "at": None, "where": [114.03, 22.65 + n], "ok": True},
            "seqs": {"district:440309": n, "street:440309001": n // 2},
        }
        for n in range(40)
    ]
    messages = [
        {"type": "outbox.events", "events": events[:20]},  # array16 header
        {"type": "outbox.events", "events": events[10:14]},  # fixarray, shares events
        events[3],
        events[3],
        {"type": "outbox.events", "events": events[20:]},
    ]
    packed: dict[int, bytes] = {}
    for message in messages:
        data = _pack(message, packed)
        assert data == layer.serialize(message)
        assert msgpack.unpackb(data) == message
    assert all(id(event) in packed for event in events)
