"""config.asgi: what it does once, when a server process imports it."""

from __future__ import annotations

import gc


def test_the_asgi_module_freezes_what_lives_as_long_as_the_process():
    """config.asgi imports the URLconf and moves every object alive then out of the garbage
    collector's reach (gc.freeze), so full collections stop walking them."""
    import config.asgi
    from incidents.api import bulk

    assert config.asgi.application is not None
    assert gc.get_freeze_count() > 50_000
    # The views were imported before the freeze: a view class is in the permanent generation,
    # which gc.get_objects() does not list.
    assert not any(obj is bulk.IncidentBulkView for obj in gc.get_objects())


def test_the_asgi_module_collects_the_youngest_generation_less_often():
    import config.asgi

    assert gc.get_threshold()[0] == config.asgi.YOUNGEST_GENERATION_THRESHOLD == 20_000
