"""Start-up: read settings, prepare the database on first run, and build the core and the pipeline."""

import gc
import logging
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.delivery.scheduler import Scheduler
from bot.handoff.agents import queue_opening_digest
from bot.ops import logs
from bot.pipeline import Pipeline
from bot.settings import ChannelSettings
from bot.wiring import build_handlers
from core import migrate
from core.models import Student
from core.profile import ProfileError
from core.services import Core, build_core
from core.settings import SchedulerMode, Settings, secret_value
from core.students import load_demo_students

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger(__name__)


class StartupError(Exception):
    """A setting, the profile or the database is not usable; the message says which and why."""


def load_settings() -> Settings:
    """Settings from the environment and .env.

    Raises:
        StartupError: naming each bad setting by its environment variable.
    """
    return _read(Settings)


def load_channel_settings() -> ChannelSettings:
    """LINE and Slack settings from the environment and .env.

    Raises:
        StartupError: naming each bad setting by its environment variable.
    """
    return _read(ChannelSettings)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def _read(kind: type[SettingsT]) -> SettingsT:
    try:
        return kind()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}" for error in exc.errors()
        )
        raise StartupError(f"bad setting(s): {problems}") from exc


def prepare(settings: Settings, *, migrate_sqlite: bool = True) -> Core:
    """Build the core; on SQLite create and migrate the database; load demo students into an empty one.

    Raises:
        StartupError: for a bad profile, or a non-SQLite database behind the code's migrations.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        core = build_core(settings)
    except ProfileError as exc:
        raise StartupError(str(exc)) from exc
    # Log lines of every command mask student numbers by this university's pattern, not the shipped one.
    logs.use_student_number_pattern(core.profile.student_number_pattern)
    if core.engine.dialect.name == "sqlite" and migrate_sqlite:
        migrate.upgrade(core.engine)
    elif migrate.current_revision(core.engine) != migrate.head_revision():
        raise StartupError(
            f"the database is at migration {migrate.current_revision(core.engine)!r}, the code needs "
            f"{migrate.head_revision()!r}: run `madoguchi db upgrade` first"
        )
    if settings.demo_data:
        try:
            with core.transaction() as session:
                if session.scalar(select(func.count()).select_from(Student)) == 0:
                    result = load_demo_students(session, core.profile, core.now())
                    log.info("loaded %d demo students into the empty database", result.created)
        except IntegrityError:  # two processes started at once on an empty database: the other loaded them
            log.info("demo students loaded by another process")
    return core


def build_pipeline(core: Core, settings: Settings) -> Pipeline:
    """The conversation pipeline with the trained intent model (trained now if missing or stale)."""
    from intents import load_understander  # imported here: loading the model is start-up work

    return Pipeline(core, load_understander(settings.nlu_model_path), *build_handlers())


def embedded_scheduler(core: Core, settings: Settings, *, wanted: bool = True) -> Scheduler | None:
    """The reminder scheduler `madoguchi serve` runs beside the web app (not started yet), or None when
    SCHEDULER=off or `--no-scheduler` leaves it to `madoguchi scheduler`."""
    if not wanted or settings.scheduler is SchedulerMode.OFF:
        return None
    return Scheduler(core, digest=partial(queue_opening_digest, core))


def web_app_from_environment() -> "Starlette":
    """The app of one worker of `madoguchi serve --workers N` (uvicorn's factory, called in each worker).

    Settings come from the environment, like `serve`'s; `serve` has already migrated the database, loaded
    the demo data and trained the intent model, so a worker only checks and loads them. A worker runs the
    inbox worker but never a reminder scheduler: `serve` itself or `madoguchi scheduler` runs that one.
    """
    from bot.web.metrics import forget_process_on_shutdown

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    core = prepare(settings, migrate_sqlite=False)
    app = serving_app(core, settings, build_pipeline(core, settings), load_channel_settings())
    forget_process_on_shutdown(app)
    return app


def serving_app(core: Core, settings: Settings, pipeline: Pipeline, channel_settings: ChannelSettings) -> "Starlette":
    """The web app a serving process runs: the channels whose credentials are set, the inbox worker, and
    `/metrics` behind METRICS_TOKEN when it is set."""
    from bot.web.app import create_app

    app = create_app(core, pipeline, channel_settings=channel_settings, run_worker=True)
    app.state.metrics_token = secret_value(settings.metrics_token) or None
    # What start-up loaded (the intent model, the Japanese dictionary, catalogs, the guide) lives as long as the
    # process: moved out of the garbage collector's sight, so that its full passes no longer walk it all. Each
    # took 90-140 ms, every few seconds under load, during which no message was answered.
    gc.collect()
    gc.freeze()
    return app
