"""The LINE rich menu: its tiles (the chat's menu tree, in both languages, within LINE's limits), its pictures
(saved under test-artifacts/), and `madoguchi line richmenu deploy / show / render` against the fake platform,
which validates every call against the Messaging API spec and keeps the menus, the default, aliases and links."""

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from bot.channels.line import richmenu, richmenu_image
from bot.channels.line.richmenu import HEIGHT, WIDTH, MenuSwitch, tiles
from bot.channels.line_render import utf16_units
from bot.cli.commands import main
from core.enums import Language
from tests.channels.line.conftest import ACCESS_TOKEN, CHANNEL_SECRET
from tests.channels.line.fake_richmenu import DATA_PREFIX, MAX_IMAGE_BYTES
from tests.channels.line.webhooks import user_id

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
TOPICS = {"intent:login_help", "intent:second_password_reset", "intent:payment_methods", "intent:pickup_timing",
          "intent:order_certificate", "intent:order_status", "intent:contact", "handoff:asked"}
LINE_VARIABLES = ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "LINE_API_BASE_URL", "LINE_DATA_API_BASE_URL")


@pytest.fixture
def cli(monkeypatch, tmp_path, fake_line):
    """Run `madoguchi …` with LINE pointed at the fake (no .env: run from an empty folder)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINE_CHANNEL_SECRET", CHANNEL_SECRET)
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", ACCESS_TOKEN)
    monkeypatch.setenv("LINE_API_BASE_URL", fake_line.url)
    monkeypatch.setenv("LINE_DATA_API_BASE_URL", fake_line.data_url)

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    return run


def ours(fake):
    return sorted(fake.richmenus.named("madoguchi"), key=lambda menu: menu.request["name"])


# --- the menu -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", list(Language))
def test_the_menu_is_the_chats_menu_tree_within_lines_limits(lang):
    body = richmenu.request(lang, "v1")
    payloads = [area["action"]["data"] for area in body["areas"]]
    other = "en" if lang is Language.JA else "ja"
    assert set(payloads) == TOPICS | {f"lang:{other}"} and len(payloads) == 9
    assert body["size"] == {"width": 2500, "height": 1686} and body["name"] == f"madoguchi-{lang.value}-v1"
    assert 1 <= utf16_units(body["chatBarText"]) <= 14
    for area in body["areas"]:
        action = area["action"]
        assert action["type"] == "postback" and 1 <= utf16_units(action["label"]) <= 20
        assert action["displayText"] == action["label"], "the chat shows the tapped tile as the quick reply does"
    # The tap areas tile the whole picture, without overlapping.
    assert sum(area["bounds"]["width"] * area["bounds"]["height"] for area in body["areas"]) == WIDTH * HEIGHT
    assert {(area["bounds"]["x"], area["bounds"]["y"]) for area in body["areas"]} == {
        (x, y) for x in (0, 833, 1666) for y in (0, 562, 1124)}


def test_the_labels_come_from_the_catalogs_with_the_other_language_as_caption():
    ja, en = tiles(Language.JA), tiles(Language.EN)
    assert [tile.button.label for tile in ja][:2] == ["ログインできない", "第2パスワードを忘れた"]
    assert [tile.caption for tile in ja][:2] == ["Can't log in", "Forgot 2nd password"]
    assert [tile.caption for tile in en][:2] == ["ログインできない", "第2パスワードを忘れた"]
    assert (ja[-1].button.label, ja[-1].caption) == ("English", "英語に切り替える")
    assert (en[-1].button.label, en[-1].caption) == ("日本語", "Switch to Japanese")


def test_a_menu_switch_round_trips_through_its_stored_call():
    switch = MenuSwitch(user_id(), Language.EN)
    assert MenuSwitch.from_part(switch.part()) == switch
    assert MenuSwitch.from_part({"messages": [{"type": "text", "text": "hi"}]}) is None
    assert MenuSwitch.from_part({"richMenu": {"to": "U1", "lang": "fr"}}) is None


def test_our_menus_are_told_by_their_names():
    assert richmenu.language_of("madoguchi-en-3f2a9c1b0d4e") is Language.EN
    assert richmenu.language_of("madoguchi-ja-") is Language.JA
    assert richmenu.language_of("campaign-ja-1") is None and richmenu.language_of("madoguchi") is None


# --- the pictures -----------------------------------------------------------------------------------------------


def test_render_writes_both_pictures_to_test_artifacts(cli):
    output = cli("line", "richmenu", "render", "--out", str(ARTIFACTS))
    for lang in Language:
        path = ARTIFACTS / f"richmenu-{lang.value}.png"
        assert str(path) in output
        data = path.read_bytes()
        assert len(data) <= MAX_IMAGE_BYTES
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.size in {(2500, 1686), (2500, 843)}
        # Not a blank picture: the tiles, glyphs and labels make many colours.
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50


def test_a_missing_font_is_one_line_naming_the_debian_package(cli, monkeypatch, tmp_path):
    monkeypatch.setattr(richmenu_image, "KNOWN_FONTS", (tmp_path / "none.ttf",))
    monkeypatch.setattr(richmenu_image, "_fontconfig_japanese", lambda: [])
    richmenu_image.font_path.cache_clear()
    try:
        output = cli("line", "richmenu", "render", "--out", str(tmp_path / "out"), code=2)
    finally:
        richmenu_image.font_path.cache_clear()
    assert output.strip() == ("madoguchi: no Japanese font found to draw the rich menu: install Debian's package "
                              "fonts-ipafont-gothic (apt-get install fonts-ipafont-gothic)")


# --- deploy and show ---------------------------------------------------------------------------------------------


def test_deploy_creates_both_menus_uploads_to_the_data_host_and_sets_the_default(cli, fake_line):
    output = cli("line", "richmenu", "deploy")
    ja, en = ours(fake_line)[1], ours(fake_line)[0]  # sorted by name: en before ja
    assert ja.request["name"].startswith("madoguchi-ja-") and en.request["name"].startswith("madoguchi-en-")
    assert fake_line.richmenus.default == ja.id
    assert fake_line.richmenus.aliases == {"madoguchi-ja": ja.id, "madoguchi-en": en.id}
    uploads = [call for call in fake_line.calls if call.path.endswith("/content")]
    assert [call.path for call in uploads] == [f"{DATA_PREFIX}/v2/bot/richmenu/{ja.id}/content",
                                               f"{DATA_PREFIX}/v2/bot/richmenu/{en.id}/content"]
    assert all(call.headers["content-type"] == "image/png" for call in uploads)
    assert all(call.headers["authorization"] == f"Bearer {ACCESS_TOKEN}" for call in fake_line.calls)
    assert f"rich menu ja: {ja.id} (created), alias madoguchi-ja" in output
    assert f"default rich menu: {ja.id} (ja)" in output


def test_deploying_twice_leaves_one_set_and_changes_nothing(cli, fake_line):
    cli("line", "richmenu", "deploy")
    first = {menu.id for menu in ours(fake_line)}
    output = cli("line", "richmenu", "deploy")
    assert {menu.id for menu in ours(fake_line)} == first and len(fake_line.richmenus.menus) == 2
    assert len(fake_line.calls_to("/v2/bot/richmenu")) == 2, "the second deploy created nothing"
    assert "kept: the same design is live" in output and "deleted" not in output


def test_a_new_design_replaces_only_our_old_menus_and_keeps_their_students(cli, fake_line):
    menus = fake_line.richmenus
    old_ja = menus.add(richmenu.request(Language.JA, "old"))
    old_en = menus.add(richmenu.request(Language.EN, "old"))
    campaign = menus.add({**richmenu.request(Language.JA, "x"), "name": "campaign-2025"})  # not ours
    menus.default, menus.aliases = old_ja, {"madoguchi-ja": old_ja, "madoguchi-en": old_en, "campaign": campaign}
    english, other = user_id(), user_id()
    menus.users = {english: old_en, other: campaign}

    output = cli("line", "richmenu", "deploy")

    new_ja, new_en = menus.aliases["madoguchi-ja"], menus.aliases["madoguchi-en"]
    assert set(menus.menus) == {new_ja, new_en, campaign}, "the old ones deleted, the campaign's kept"
    assert menus.default == new_ja and menus.aliases["campaign"] == campaign
    assert menus.users == {english: new_en, other: campaign}, "the English student keeps an English menu"
    assert f"deleted 2 replaced menu(s): {old_ja}, {old_en}; students who had them now have the new ones" in output
    cli("line", "richmenu", "deploy")
    assert set(menus.menus) == {new_ja, new_en, campaign}


def test_show_lists_the_menus_the_default_and_the_aliases(cli, fake_line):
    assert "default rich menu: none: run `madoguchi line richmenu deploy`" in cli("line", "richmenu", "show")
    cli("line", "richmenu", "deploy")
    ja, en = fake_line.richmenus.aliases["madoguchi-ja"], fake_line.richmenus.aliases["madoguchi-en"]
    lines = cli("line", "richmenu", "show").splitlines()
    ja_name = fake_line.richmenus.menus[ja].request["name"]
    assert lines[0] == f"default rich menu: {ja} ({ja_name})"
    assert lines[1] == "rich menus (2):"
    assert f"  {ja}  {ja_name}  chat bar 'メニュー'  [default, ours, alias madoguchi-ja]" in lines
    assert any(line.startswith(f"  {en}  madoguchi-en-") and line.endswith("[ours, alias madoguchi-en]")
               for line in lines)
    assert lines[-3:] == ["aliases (2):", f"  madoguchi-en -> {en}", f"  madoguchi-ja -> {ja}"]


@pytest.mark.parametrize("command", ["deploy", "show"])
def test_without_line_credentials_the_commands_say_what_to_set(cli, monkeypatch, command):
    for name in LINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    output = cli("line", "richmenu", command, code=2)
    assert output.strip() == ("madoguchi: LINE is not configured: set LINE_CHANNEL_SECRET and "
                              "LINE_CHANNEL_ACCESS_TOKEN")


def test_an_error_from_line_is_one_line(cli, fake_line):
    fake_line.access_token = "another-token"
    output = cli("line", "richmenu", "deploy", code=2)
    assert output.strip() == ("madoguchi: LINE answered HTTP 401 to GET /v2/bot/richmenu/list: Authentication "
                              "failed. Confirm that the access token in the authorization header is valid.")
    fake_line.access_token = None
    fake_line.fail_next("/v2/bot/user/all/richmenu", 500, message="boom")
    assert cli("line", "richmenu", "show", code=2).strip() == (
        "madoguchi: LINE answered HTTP 500 to GET /v2/bot/user/all/richmenu: boom")


def test_an_unreachable_line_is_one_line(cli, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv("LINE_API_BASE_URL", f"http://127.0.0.1:{free_port()}")
    output = cli("line", "richmenu", "show", code=2)
    assert output.startswith("madoguchi: cannot reach LINE at http://127.0.0.1:") and output.count("\n") == 1


# --- the fake checks what LINE checks -----------------------------------------------------------------------------


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(("host", "content_type", "image", "expected"), [
    ("api", "image/png", _png((2500, 1686)), "ServerNotFound"),  # the picture goes to the data host only
    ("data", "image/png", _png((2500, 843)), "the menu is PNG of 2500×1686"),
    ("data", "image/jpeg", _png((2500, 1686)), "the menu is JPEG"),
    ("data", "application/json", b"{}", "Content-Type"),
    ("data", "image/png", b"\x89PNG" + b"0" * (MAX_IMAGE_BYTES + 1), "at most 1 MB"),
])
def test_the_fake_refuses_a_picture_line_would_refuse(fake_line, host, content_type, image, expected):
    import httpx

    auth = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    menu_id = httpx.post(fake_line.url + "/v2/bot/richmenu", json=richmenu.request(Language.JA, "t"),
                         headers=auth).json()["richMenuId"]
    base = fake_line.data_url if host == "data" else fake_line.url
    answer = httpx.post(f"{base}/v2/bot/richmenu/{menu_id}/content", content=image,
                        headers={**auth, "Content-Type": content_type})
    assert answer.status_code >= 400
    assert any(expected in violation for violation in fake_line.violations), fake_line.violations
    fake_line.violations.clear()
    assert httpx.post(f"{fake_line.url}/v2/bot/user/all/richmenu/{menu_id}", headers=auth).status_code == 400
    assert any("before its picture was uploaded" in violation for violation in fake_line.violations)
    fake_line.violations.clear()


def test_the_fake_validates_rich_menu_objects_against_the_spec(fake_line):
    import httpx

    body = {**richmenu.request(Language.JA, "t"), "chatBarText": "メニュー" * 4}
    httpx.post(fake_line.url + "/v2/bot/richmenu", json=body, headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})
    assert any("InvalidRequestBody" in violation for violation in fake_line.violations), fake_line.violations
    fake_line.violations.clear()
