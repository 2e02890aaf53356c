"""The app a serving process runs: what start-up loaded is kept out of the garbage collector's full passes."""

import gc

from bot.runtime import serving_app
from bot.settings import ChannelSettings
from core.settings import Settings


def test_what_start_up_loaded_is_frozen_for_the_garbage_collector(core, pipeline_for):
    gc.unfreeze()
    try:
        app = serving_app(core, Settings(_env_file=None), pipeline_for(core),  # type: ignore[call-arg]
                          ChannelSettings(_env_file=None))  # type: ignore[call-arg]
        # The model and the dictionaries are older than the app: frozen with it, so a full pass walks none of them.
        assert gc.get_freeze_count() > 10_000
        assert app.state.loop_turns is not None or core.engine.dialect.name != "sqlite"
    finally:
        gc.unfreeze()
