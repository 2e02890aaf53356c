"""Signing a browser in to the web chat: the mailed link's page (GET shows a button, POST signs in, so that a
mail scanner opening the link signs no one in), the session cookie, and sign-out."""

import logging
from dataclasses import replace
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.enums import Language
from core.links import sign_in_with_link
from core.masking import mask_student_number
from core.services import Core
from core.web_sessions import ABSOLUTE, SignedIn, end_session, signed_in
from handlers.turn import IncomingMessage

log = logging.getLogger(__name__)

COOKIE = "madoguchi_session"


def session_token(request: Request) -> str | None:
    """The browser's session token, from its cookie."""
    return request.cookies.get(COOKIE)


def current(core: Core, request: Request) -> SignedIn | None:
    """Who this browser is signed in as (the session's idle clock restarts), or None."""
    token = session_token(request)
    if not token:
        return None
    with core.transaction() as session:
        return signed_in(session, token, core.now())


def with_student(core: Core, request: Request, message: IncomingMessage) -> IncomingMessage:
    """The message with the browser's signed-in student: the only way the web chat knows a student."""
    who = current(core, request)
    return replace(message, signed_in_student=who.student_id if who else None)


def same_origin(request: Request, core: Core) -> bool:
    """False when the browser says the POST comes from another site's page: a site must not sign a visitor in as
    someone else with a link of its own. A browser says so by `Sec-Fetch-Site` (our pages send no referrer, so
    their Origin may be `null`), else by its Origin; a client that sends neither (not a browser) passes."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")  # "none": the user's own navigation, not another page
    origin = request.headers.get("origin")
    base = urlsplit(core.base_url)
    return origin is None or origin == f"{base.scheme}://{base.netloc}"


def masked_number(who: SignedIn | None) -> str | None:
    """`24M***1` for the page's "signed in as"."""
    return mask_student_number(who.student_number) if who else None


def secure_cookies(core: Core) -> bool:
    """Cookies are sent only over https when the service is served over it."""
    return core.base_url.startswith("https://")


def back_to_the_chat(core: Core, session_cookie: str, lang: Language) -> RedirectResponse:
    """A browser just signed in (by a mailed link or single sign-on): its session cookie, and back to the chat,
    which goes on where it was (`?signed_in=1` makes the page tell the chat)."""
    response = RedirectResponse(f"/?signed_in=1&lang={lang.value}", status_code=303)
    response.set_cookie(COOKIE, session_cookie, max_age=int(ABSOLUTE.total_seconds()), httponly=True,
                        samesite="lax", secure=secure_cookies(core), path="/")
    return response


async def sign_in(request: Request, core: Core, token: str, lang: Language) -> Response:
    """POST of a sign-in link's page: consume the link and sign the browser in."""
    cookie, who = await run_in_threadpool(sign_in_with_link, core, token)
    log.info("browser signed in to the web chat as %s", mask_student_number(who.student_number))
    return back_to_the_chat(core, cookie, lang)


async def sign_out(request: Request) -> Response:
    """POST /signout: end the browser's session and forget its cookie; the chat stays, as an anonymous one."""
    core: Core = request.app.state.core
    token = session_token(request)

    def end() -> bool:
        with core.transaction() as session:
            return end_session(session, token, core.now())

    ended = await run_in_threadpool(end) if token else False
    response = JSONResponse({"signed_out": ended})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(core))
    return response

