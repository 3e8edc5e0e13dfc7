"""What the app's lifespan does around a server it starts itself."""

from __future__ import annotations

import gc

from mirix.api.app import GEN0_THRESHOLD, create_app


async def test_objects_alive_at_startup_are_left_out_of_garbage_collection_until_shutdown(server, settings):
    # ``server`` has migrated the database; the app starts a second server of its own on it.
    app = create_app(settings)
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 50_000  # modules, mappers, models: a full collection skips them
        assert gc.get_threshold() == (GEN0_THRESHOLD, *before[1:])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


async def test_a_server_handed_in_freezes_nothing(server):
    app = create_app(server=server)
    before = gc.get_threshold()
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == before
