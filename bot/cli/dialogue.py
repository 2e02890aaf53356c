"""`madoguchi dialogue eval`: play conversation files through the whole bot and report what passed."""

import json
import tempfile
from pathlib import Path

import click


@click.group()
def dialogue() -> None:
    """Play scripted conversations through the bot."""


@dialogue.command("eval")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a report.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file; default: the configured nlu_model_path (trained when missing or stale).")  # fmt: skip
def eval_command(files: tuple[Path, ...], as_json: bool, model_path: Path | None) -> None:
    """Play every conversation of FILES (YAML, see benchmarks/dialogue/README.md), each in a fresh temporary
    database with the demo students, and report the conversations and turns that passed (exit status 1 if
    any conversation failed)."""
    from bot.pipeline import Pipeline
    from bot.runtime import StartupError, load_settings
    from bot.stories import DEFAULT_NOW, StoryError, StoryPlayer, fresh_start, load_stories, report
    from bot.wiring import build_handlers
    from core import migrate
    from core.clock import FixedClock
    from core.db import make_engine
    from core.mail import OutboxMailer
    from core.services import build_core
    from core.settings import Settings
    from intents.understander import load_understander

    try:
        stories = [story for file in files for story in load_stories(file)]
        understander = load_understander(model_path or load_settings().nlu_model_path)
    except (StoryError, StartupError) as error:
        raise click.ClickException(str(error)) from error
    with tempfile.TemporaryDirectory(prefix="madoguchi-dialogue-") as folder:
        settings = Settings(data_dir=Path(folder), _env_file=None)
        engine = make_engine(f"sqlite:///{folder}/dialogue.sqlite3")
        migrate.upgrade(engine)
        clock = FixedClock(DEFAULT_NOW)
        core = build_core(settings, clock=clock, mailer=OutboxMailer(Path(folder) / "outbox"), engine=engine)
        player = StoryPlayer(Pipeline(core, understander, *build_handlers()), clock, fresh_start)
        results = [player.play(story) for story in stories]
        engine.dispose()
    failed = sum(not result.passed for result in results)
    if as_json:
        click.echo(json.dumps({
            "conversations": len(results), "conversations_passed": sum(result.passed for result in results),
            "turns": sum(len(result.steps) for result in results),
            "turns_passed": sum(not step.failures for result in results for step in result.steps),
            "failed": [{"name": result.story.name, "source": result.story.source,
                        "steps": [{"said": step.said, "failures": step.failures, "replied": step.shown}
                                  for step in result.steps if step.failures]}
                       for result in results if not result.passed],
        }, ensure_ascii=False))
    else:
        click.echo(report(results))
    if failed:
        raise SystemExit(1)  # a script can tell that a conversation failed
