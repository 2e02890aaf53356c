"""The web chat page: GET / serves the chat window in the visitor's language (its texts from the core catalog)."""

from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.channels.web import MAX_TEXT
from bot.page_language import choose_language
from bot.web import signin
from core.enums import Language, Service
from core.i18n import t
from core.services import Core

LANG_COOKIE = "chat_lang"
LANG_COOKIE_SECONDS = 365 * 24 * 3600
# Texts the script shows by itself (sender names, the typing indicator, errors); the rest is in the HTML.
SCRIPT_KEYS = ("you", "bot", "agent", "note", "typing", "failed", "too_long", "start_over_confirm")


def routes() -> list[BaseRoute]:
    """The chat page."""
    return [Route("/", chat_page, methods=["GET"], name="chat_page")]


def page_language(request: Request) -> Language:
    """`?lang=ja|en` (the page's switch), else the language chosen before (a cookie), else Accept-Language,
    else Japanese."""
    return choose_language(request, cookie=LANG_COOKIE)


def chat_page(request: Request) -> Response:
    """The chat window; a `?lang=` choice is remembered in a cookie so later visits open in it."""
    core: Core = request.app.state.core
    lang = page_language(request)
    other = Language.EN if lang is Language.JA else Language.JA
    text = partial(t, lang=lang)
    strings = {key: text(f"chat_page.{key}") for key in SCRIPT_KEYS if key != "too_long"}
    strings["too_long"] = text("chat_page.too_long", limit=MAX_TEXT)
    response = request.app.state.templates.TemplateResponse(request, "chat.html", {
        "lang": lang.value, "other_lang": other.value, "t": text, "strings": strings, "max_text": MAX_TEXT,
        "title": core.profile.contact(Service.CHAT_SUPPORT).name(lang),
        "welcome": text("chat_page.welcome", service=core.profile.service_name(lang)),
        "base_url": core.base_url,
        "signed_in_as": signin.masked_number(signin.current(core, request)),
        "sign_on": request.app.state.channel_settings.oidc_enabled,
    }, headers={"Cache-Control": "no-cache", "Vary": "Accept-Language, Cookie"})
    if request.query_params.get("lang") == lang.value:
        response.set_cookie(LANG_COOKIE, lang.value, max_age=LANG_COOKIE_SECONDS, samesite="lax", httponly=True)
    return response
