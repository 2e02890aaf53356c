"""`madoguchi actions`: the Rasa action server (Procfile `actions`), and `--write-domain` to regenerate the domain."""

import logging
from pathlib import Path

import click

from bot.rasa.domain import DOMAIN_FILE, PATTERNS_FILE, RULES_FILE

DEFAULT_PORT = 5055  # Rasa's default action endpoint port (endpoints.yml)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Port of the action endpoint.")
@click.option("--write-domain", is_flag=True,
              help="Write the domain and rules generated from intents/, forms and catalogs, then exit.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --write-domain: the folder to write to (default: bot/rasa).")
def actions(host: str, port: int, write_domain: bool, out_dir: Path | None) -> None:
    """Run the Rasa action server (`POST /webhook`, `GET /health`) with this deployment's core and database."""
    if write_domain:
        from bot.rasa.domain import write_domain as write

        domain_file = out_dir / DOMAIN_FILE.name if out_dir else DOMAIN_FILE
        rules_file = out_dir / "data" / RULES_FILE.name if out_dir else RULES_FILE
        patterns_file = out_dir / "data" / PATTERNS_FILE.name if out_dir else PATTERNS_FILE
        for path in write(domain_file, rules_file, patterns_file):
            click.echo(f"wrote {path}")
        return
    import uvicorn

    from bot.cli.support import fail
    from bot.ops import logs
    from bot.runtime import StartupError, load_channel_settings, load_settings, prepare

    try:
        settings = load_settings()
        logs.configure(settings.log_level, settings.log_format)
        core = prepare(settings)
        # A handoff promises a person only where one can answer: Slack's agents' channel counts when it is set.
        core.agents_on_slack = load_channel_settings().agents_enabled
        from bot.rasa.actions import create_app  # imported here: rasa_sdk and Sanic load only for this command
        from intents import load_understander

        app = create_app(core, load_understander(settings.nlu_model_path))
    except (StartupError, ValueError) as error:
        fail(error)
    click.echo(f"madoguchi action server on http://{host}:{port}/webhook  (health: /health)")
    logging.getLogger(__name__).info("Rasa action server for %s", core.engine.url.render_as_string(hide_password=True))
    # The Sanic app is an ASGI app: uvicorn serves it in this process, as `madoguchi serve` does the web app
    # (rasa-sdk's own runner would pickle the app into worker processes, and the core cannot be pickled).
    # A reset or sign-in link requested here is a queued `mail` job: this process sends those itself (only
    # those: a channel's events are the web app's), in a thread of their own, so no answer waits for a mail.
    from bot.delivery.mailing import mail_worker

    mail = mail_worker(core)
    mail.start()
    try:
        uvicorn.run(app, host=host, port=port, log_config=None)
    finally:
        mail.stop()
