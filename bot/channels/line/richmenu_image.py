"""The rich menu's picture: a grid of tiles, each a glyph, its label and a small caption, drawn with Pillow.

The Japanese font comes from Debian's packages (fonts-ipafont-gothic), found at run time: the known paths first,
then fontconfig's list of fonts that cover Japanese.
"""

import io
import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bot.channels.line.richmenu import HEIGHT, WIDTH, Bounds, Icon, Tile, grid, tiles
from core.enums import Language

FONT_PACKAGE = "fonts-ipafont-gothic"
KNOWN_FONTS = (
    Path("/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf"),  # proportional: English reads better
    Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"),
    Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"),  # Debian's alternative for the default gothic
)
MAX_BYTES = 1_000_000  # LINE takes rich menu images of up to 1 MB

BACKGROUND, CARD, BORDER = "#E9EEF5", "#FFFFFF", "#C9D3E0"
INK, MUTED, ON_ACCENT = "#14213D", "#556072", "#FFFFFF"
ACCENT, PERSON_ACCENT, LANGUAGE_ACCENT = "#1F5AA6", "#1B7F55", "#B4470F"
GAP = 14  # between the cards, and around them
LABEL_SIZE, CAPTION_SIZE = 80, 46  # pixels: about 12 and 7 points on a phone as wide as the image
DISK = 200  # the glyph's disk
STROKE = 12  # the glyphs' line width


class FontMissing(Exception):
    """No Japanese font is installed to draw the menu with."""


@cache
def font_path() -> Path:
    """The Japanese font to draw with.

    Raises:
        FontMissing: none is installed (the message names the Debian package to install).
    """
    for path in KNOWN_FONTS:
        if path.is_file():
            return path
    for path in _fontconfig_japanese():
        if path.is_file():
            return path
    raise FontMissing(f"no Japanese font found to draw the rich menu: install Debian's package {FONT_PACKAGE} "
                      f"(apt-get install {FONT_PACKAGE})")


def _fontconfig_japanese() -> list[Path]:
    """Fonts fontconfig says cover Japanese, gothic (sans-serif) ones first; none without fontconfig."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        listed = subprocess.run([fc_list, ":lang=ja", "file"], capture_output=True, text=True, timeout=10,
                                check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    paths = [Path(line.strip().rstrip(":")) for line in listed.splitlines() if line.strip()]
    return sorted(paths, key=lambda path: "gothic" not in path.name.lower() and "sans" not in path.name.lower())


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path()), size)


def _fitted(draw: ImageDraw.ImageDraw, text: str, size: int, width: int) -> ImageFont.FreeTypeFont:
    """The font at `size`, or smaller until `text` fits in `width` pixels."""
    font = _font(size)
    while size > 20 and draw.textlength(text, font=font) > width:
        size -= 4
        font = _font(size)
    return font


def render(lang: Language) -> bytes:
    """The menu of `lang` as a PNG of WIDTH×HEIGHT pixels.

    Raises:
        FontMissing: no Japanese font is installed.
    """
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for tile, bounds in zip(tiles(lang), grid(), strict=True):
        _tile(draw, tile, bounds)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _accent(icon: Icon) -> str:
    return {Icon.PERSON: PERSON_ACCENT, Icon.GLOBE: LANGUAGE_ACCENT}.get(icon, ACCENT)


def _tile(draw: ImageDraw.ImageDraw, tile: Tile, bounds: Bounds) -> None:
    """A card inside the tap area: the glyph on a disk, the label, and the caption under it."""
    left, top = bounds.x + GAP // 2 + (GAP // 2 if bounds.x == 0 else 0), bounds.y + GAP // 2 + (
        GAP // 2 if bounds.y == 0 else 0)
    right = bounds.x + bounds.width - GAP // 2 - (GAP // 2 if bounds.x + bounds.width == WIDTH else 0)
    bottom = bounds.y + bounds.height - GAP // 2 - (GAP // 2 if bounds.y + bounds.height == HEIGHT else 0)
    accent = _accent(tile.icon)
    draw.rounded_rectangle((left, top, right, bottom), radius=36, fill=CARD, outline=BORDER, width=3)
    draw.rounded_rectangle((left, top, right, top + 14), radius=7, fill=accent)  # a band in the tile's colour
    centre_x, room = (left + right) // 2, right - left - 70
    disk_y = top + 75 + DISK // 2
    draw.ellipse((centre_x - DISK // 2, disk_y - DISK // 2, centre_x + DISK // 2, disk_y + DISK // 2), fill=accent)
    GLYPHS[tile.icon](draw, centre_x, disk_y)
    label = _fitted(draw, tile.button.label, LABEL_SIZE, room)
    draw.text((centre_x, disk_y + DISK // 2 + 90), tile.button.label, font=label, fill=INK, anchor="mm",
              stroke_width=1, stroke_fill=INK)  # IPA Gothic has no bold: a thin stroke of the ink makes it bolder
    caption = _fitted(draw, tile.caption, CAPTION_SIZE, room)
    draw.text((centre_x, disk_y + DISK // 2 + 175), tile.caption, font=caption, fill=MUTED, anchor="mm")


# --- the glyphs: simple line drawings in white, centred on (x, y), about 120 pixels across ----------------------


def _key(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    draw.ellipse((x - 58, y - 30, x - 2, y + 26), outline=ON_ACCENT, width=STROKE)
    draw.line((x - 4, y - 2, x + 60, y - 2), fill=ON_ACCENT, width=STROKE)
    draw.line((x + 54, y - 2, x + 54, y + 28), fill=ON_ACCENT, width=STROKE)
    draw.line((x + 30, y - 2, x + 30, y + 22), fill=ON_ACCENT, width=STROKE)


def _lock(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    draw.arc((x - 34, y - 62, x + 34, y + 6), start=180, end=360, fill=ON_ACCENT, width=STROKE)
    draw.line((x - 29, y - 28, x - 29, y - 8), fill=ON_ACCENT, width=STROKE)
    draw.line((x + 28, y - 28, x + 28, y - 8), fill=ON_ACCENT, width=STROKE)
    draw.rounded_rectangle((x - 52, y - 12, x + 52, y + 58), radius=10, fill=ON_ACCENT)
    draw.ellipse((x - 10, y + 10, x + 10, y + 30), fill=ACCENT)


def _document(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    draw.rounded_rectangle((x - 44, y - 60, x + 44, y + 60), radius=8, outline=ON_ACCENT, width=STROKE)
    for row in (-28, 0, 28):
        draw.line((x - 24, y + row, x + 24, y + row), fill=ON_ACCENT, width=8)


def _yen(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    draw.text((x, y + 4), "¥", font=_font(150), fill=ON_ACCENT, anchor="mm", stroke_width=3, stroke_fill=ON_ACCENT)


def _box(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    draw.rectangle((x - 56, y - 30, x + 56, y + 56), outline=ON_ACCENT, width=STROKE)
    draw.line((x - 62, y - 30, x - 40, y - 58, x + 40, y - 58, x + 62, y - 30), fill=ON_ACCENT, width=STROKE)
    draw.line((x - 20, y - 30, x - 20, y + 4, x + 20, y + 4, x + 20, y - 30), fill=ON_ACCENT, width=8)


def _status(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    draw.ellipse((x - 54, y - 54, x + 20, y + 20), outline=ON_ACCENT, width=STROKE)
    draw.line((x + 12, y + 12, x + 54, y + 54), fill=ON_ACCENT, width=STROKE + 6)


def _phone(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    draw.rounded_rectangle((x - 36, y - 62, x + 36, y + 62), radius=14, outline=ON_ACCENT, width=STROKE)
    draw.line((x - 14, y - 44, x + 14, y - 44), fill=ON_ACCENT, width=6)
    draw.ellipse((x - 8, y + 36, x + 8, y + 52), fill=ON_ACCENT)


def _person(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    draw.ellipse((x - 30, y - 64, x + 30, y - 4), fill=ON_ACCENT)
    draw.chord((x - 62, y + 6, x + 62, y + 126), start=180, end=360, fill=ON_ACCENT)


def _globe(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    draw.ellipse((x - 60, y - 60, x + 60, y + 60), outline=ON_ACCENT, width=STROKE - 2)
    draw.ellipse((x - 26, y - 60, x + 26, y + 60), outline=ON_ACCENT, width=8)
    draw.line((x - 60, y, x + 60, y), fill=ON_ACCENT, width=8)
    draw.line((x - 50, y - 30, x + 50, y - 30), fill=ON_ACCENT, width=6)
    draw.line((x - 50, y + 30, x + 50, y + 30), fill=ON_ACCENT, width=6)


GLYPHS: dict[Icon, Callable[[ImageDraw.ImageDraw, int, int], None]] = {
    Icon.KEY: _key, Icon.LOCK: _lock, Icon.DOCUMENT: _document, Icon.YEN: _yen, Icon.BOX: _box,
    Icon.STATUS: _status, Icon.PHONE: _phone, Icon.PERSON: _person, Icon.GLOBE: _globe,
}
