"""One-time link pages: GET /links/{token} confirms an email, shows the reset form or the sign-in button; POST sets
the password or signs the browser in to the web chat."""

import logging
from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.page_language import choose_language
from bot.web import signin
from core.enums import Language, LinkPurpose
from core.errors import LinkInvalid, WeakSecondPassword
from core.formatting import format_short
from core.i18n import t
from core.links import (
    EMAIL_PURPOSES,
    LinkState,
    LinkView,
    PasswordMismatch,
    confirm_email,
    inspect_link,
    reset_second_password,
)
from core.masking import mask_student_number
from core.services import Core

log = logging.getLogger(__name__)

# The URL carries a secret: never cache the page, never send it on as a referrer.
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
INVALID_STATUS = {LinkState.EXPIRED: 410, LinkState.USED: 410, LinkState.SUPERSEDED: 410, LinkState.UNKNOWN: 404}
# The rules listed under the form, in the guide's order, then ours.
RULE_KEYS = ("length", "upper", "lower", "digit", "alnum_only", "no_student_number", "not_common")


def routes() -> list[BaseRoute]:
    """The link pages."""
    return [Route("/links/{token}", link_page, methods=["GET", "POST"], name="link_page")]


async def link_page(request: Request) -> Response:
    """Answer one opening of a one-time link: confirm, show the reset form, set the password, or explain."""
    core: Core = request.app.state.core
    token: str = request.path_params["token"]
    view = await run_in_threadpool(inspect_link, core, token)
    lang = choose_language(request, view.language)
    log.info("link page %s: %s link, %s", request.method, view.purpose or "no", view.state)
    if view.purpose in EMAIL_PURPOSES:
        # Opening the link is the confirmation (the guide's step 7); a POST here means the same.
        return await _confirm(request, core, token, lang, view)
    if view.purpose is LinkPurpose.WEB_SIGN_IN and view.state is LinkState.VALID:
        if request.method != "POST":  # a button, so that a mail scanner opening the link signs no one in
            return _render(request, "link_sign_in.html", lang, title=t("links.sign_in.title", lang),
                           number=mask_student_number(view.student_number or ""),
                           expires_at=format_short(view.expires_at, lang) if view.expires_at else "")
        if not signin.same_origin(request, core):  # another site's form posting someone's link: no sign-in
            return _invalid(request, lang, LinkState.UNKNOWN, view.purpose)
        try:
            return await signin.sign_in(request, core, token, lang)
        except LinkInvalid as invalid:
            return _invalid(request, lang, LinkState(invalid.reason), view.purpose)
    if view.state is not LinkState.VALID or view.purpose is not LinkPurpose.SECOND_PASSWORD_RESET:
        return _invalid(request, lang, view.state, view.purpose)
    if request.method != "POST":
        return _reset_form(request, lang, view, errors=[])
    return await _reset(request, core, token, lang, view)


async def _confirm(request: Request, core: Core, token: str, lang: Language, view: LinkView) -> Response:
    try:
        result = await run_in_threadpool(confirm_email, core, token)
    except LinkInvalid as invalid:
        return _invalid(request, lang, LinkState(invalid.reason), view.purpose)
    title_key = "links.confirm.already_title" if result.already_confirmed else "links.confirm.title"
    return _render(request, "link_confirmed.html", lang, title=t(title_key, lang), email=result.email,
                   already_confirmed=result.already_confirmed)


async def _reset(request: Request, core: Core, token: str, lang: Language, view: LinkView) -> Response:
    form = await request.form()
    password, confirmation = str(form.get("password") or ""), str(form.get("password_confirmation") or "")
    try:
        await run_in_threadpool(reset_second_password, core, token, password, confirmation)
    except LinkInvalid as invalid:
        return _invalid(request, lang, LinkState(invalid.reason), view.purpose)
    except PasswordMismatch as mismatch:
        errors = [t("links.reset.mismatch", lang), *_rule_messages(mismatch.violations, lang)]
        return _reset_form(request, lang, view, errors=errors)
    except WeakSecondPassword as weak:
        return _reset_form(request, lang, view, errors=_rule_messages(weak.violations, lang))
    return _render(request, "link_reset_done.html", lang, title=t("links.reset.done_title", lang))


def _rule_messages(violations: tuple[str, ...], lang: Language) -> list[str]:
    return [t(f"passwords.rules.{code}", lang) for code in violations]


def _reset_form(request: Request, lang: Language, view: LinkView, *, errors: list[str]) -> Response:
    # The form is always rendered empty: a submitted password is never echoed back.
    expires_at = format_short(view.expires_at, lang) if view.expires_at else ""
    return _render(request, "link_reset_form.html", lang, title=t("links.reset.title", lang), errors=errors,
                   rules=[t(f"links.reset.rules.{key}", lang) for key in RULE_KEYS], expires_at=expires_at)


def _invalid(request: Request, lang: Language, state: LinkState, purpose: LinkPurpose | None) -> Response:
    if purpose in EMAIL_PURPOSES:
        hints = [t("links.invalid.how_to_email", lang)]
    elif purpose is LinkPurpose.WEB_SIGN_IN:
        hints = [t("links.invalid.how_to_sign_in", lang)]
    elif purpose is LinkPurpose.SECOND_PASSWORD_RESET:
        hints = [t("links.invalid.how_to_reset", lang)]
    else:  # an unknown link could have been either
        hints = [t("links.invalid.how_to_reset", lang), t("links.invalid.how_to_email", lang)]
    return _render(request, "link_invalid.html", lang, status_code=INVALID_STATUS.get(state, 410),
                   title=t(f"links.invalid.{state.value}.title", lang), state=state.value, hints=hints)


def _render(request: Request, template: str, lang: Language, *, status_code: int = 200,
            **context: object) -> Response:
    other = Language.EN if lang is Language.JA else Language.JA
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request, template, {"lang": lang.value, "other_lang": other.value, "t": partial(t, lang=lang), **context},
        status_code=status_code, headers=PAGE_HEADERS)
