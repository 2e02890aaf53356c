"""`madoguchi line richmenu`: deploy LINE's rich menus, show what is live, and draw their pictures."""

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.cli.support import fail

if TYPE_CHECKING:
    from bot.channels.line.richmenu_api import RichMenuAdmin


@click.group()
def line() -> None:
    """LINE: the rich menu under the chat."""


@line.group()
def richmenu() -> None:
    """The rich menu: one per language, the Japanese one the default."""


def _admin() -> "RichMenuAdmin":
    """The rich menu client of the configured LINE channel, or exit naming what is missing."""
    # Imported here, as the other commands' heavy parts are: `madoguchi --help` loads neither Pillow nor the SDK.
    from bot.channels.line.richmenu_api import RichMenuAdmin, RichMenuError
    from bot.runtime import StartupError, load_channel_settings

    try:
        return RichMenuAdmin(load_channel_settings())
    except (StartupError, RichMenuError) as error:
        fail(error)


@richmenu.command()
def deploy() -> None:
    """Create the menus (Japanese and English), upload their pictures, make the Japanese one the default, point
    the aliases madoguchi-ja and madoguchi-en at them, and delete the menus of ours they replace.

    Running it again with the same design changes nothing.
    """
    from bot.channels.line.richmenu import DEFAULT_LANGUAGE, alias
    from bot.channels.line.richmenu_api import RichMenuError
    from bot.channels.line.richmenu_image import FontMissing

    admin = _admin()
    try:
        done = admin.deploy()
    except (RichMenuError, FontMissing) as error:
        fail(error)
    finally:
        admin.close()
    for lang, menu_id in done.menus.items():
        state = "created" if menu_id in done.created else "kept: the same design is live"
        click.echo(f"rich menu {lang.value}: {menu_id} ({state}), alias {alias(lang)}")
    click.echo(f"default rich menu: {done.menus[DEFAULT_LANGUAGE]} ({DEFAULT_LANGUAGE.value})")
    if done.deleted:
        moved = "; students who had them now have the new ones" if done.moved else ""
        click.echo(f"deleted {len(done.deleted)} replaced menu(s): {', '.join(done.deleted)}{moved}")


@richmenu.command()
def show() -> None:
    """List the rich menus LINE has, the default and the aliases."""
    from bot.channels.line.richmenu_api import RichMenuError

    admin = _admin()
    try:
        live = admin.live()
    except RichMenuError as error:
        fail(error)
    finally:
        admin.close()
    names = {menu.id: menu.name for menu in live.menus}
    default = f"{live.default} ({names.get(live.default, 'not listed')})" if live.default else \
        "none: run `madoguchi line richmenu deploy`"
    click.echo(f"default rich menu: {default}")
    click.echo(f"rich menus ({len(live.menus)}):")
    for menu in live.menus:
        marks = [mark for mark, on in (("default", menu.id == live.default), ("ours", menu.lang is not None)) if on]
        marks += [f"alias {name}" for name, menu_id in sorted(live.aliases.items()) if menu_id == menu.id]
        click.echo(f"  {menu.id}  {menu.name}  chat bar {menu.chat_bar_text!r}  [{', '.join(marks)}]")
    click.echo(f"aliases ({len(live.aliases)}):")
    for name, menu_id in sorted(live.aliases.items()):
        click.echo(f"  {name} -> {menu_id}")


@richmenu.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write richmenu-ja.png and richmenu-en.png into.")
def render(out: Path) -> None:
    """Draw the menus' pictures into a folder, to look at them before a deploy."""
    from bot.channels.line.richmenu_image import FontMissing
    from bot.channels.line.richmenu_image import render as draw
    from core.enums import Language

    try:
        out.mkdir(parents=True, exist_ok=True)
        for lang in Language:
            path = out / f"richmenu-{lang.value}.png"
            path.write_bytes(draw(lang))
            click.echo(f"{path}")
    except (FontMissing, OSError) as error:
        fail(error)
