"""The configured channel layer (Redis under `make test`, in-process in the demo) delivers."""

from __future__ import annotations

import asyncio

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
