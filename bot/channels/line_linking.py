"""LINE account linking: the sign-in page, single-use nonces, linked and unlinked accounts, following state.

The flow (https://developers.line.biz/en/docs/messaging-api/linking-accounts/): the bot issues a link
token and sends our page's URL; the student signs in there with the student number and the second
password; we issue a nonce and send the browser to LINE's accountLink dialog; LINE then sends an
`accountLink` event with the nonce, which links the LINE user to the student.
"""

import hashlib
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.page_language import choose_language
from bot.settings import ChannelSettings
from core import lockouts
from core.conversations import chat_account, load_state, save_state
from core.conversations import linked_student_id as core_linked_student_id
from core.db import changed_rows
from core.enums import Language
from core.identifiers import normalize_student_number
from core.masking import mask_student_number, mask_token
from core.models import AccountLinkNonce, ChannelAccount, Student
from core.passwords import decoy_hash, verify_password
from core.services import Core
from core.students import find_student
from handlers.messages import say
from handlers.payloads import LinkAccount, UnlinkAccount, decode

log = logging.getLogger(__name__)

CHANNEL = "line"
NONCE_TTL = timedelta(minutes=10)
NONCE_BYTES = 24  # 192 bits; LINE asks for at least 128 bits, 10 to 255 characters
MAX_FAILURES = 5  # failed sign-ins per student number …
FAILURE_WINDOW = timedelta(minutes=15)  # … within this window, then the number is refused until they age out
MAX_FIELD = 128  # longer form values are cut before use (a second password has at most 64 characters)
# A LINE link token is URL-safe text; anything else did not come from LINE and is never echoed into a URL.
LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,128}")
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


# What a linking button (handlers.payloads: `link:start`, `link:unlink`) or a typed request asks for; a payload
# in the `link` namespace never reaches the pipeline.
LinkAction = LinkAccount | UnlinkAccount

# Typed requests, matched on the NFKC-normalized, lower-cased text without spaces. Unlinking is checked first.
_UNLINK_TYPED = re.compile(r"(連携(を)?(解除|やめ|取り?消)|unlink|disconnect(my)?(line)?account)")
_LINK_TYPED = re.compile(
    r"((line)?(アカウント|account)?(を|の)?連携(する|したい|して(ください)?|を?お願い(します|いたします)?)?|"
    r"(please)?(link|connect)(my)?(line)?account(please)?|accountlink(ing)?)[。.!！?？]*"
)
_ENGLISH = re.compile(r"[a-z]")
_SPACES = re.compile(r"\s+")


def typed_action(text: str) -> tuple[LinkAction, Language] | None:
    """The linking request a typed message makes (「アカウント連携」, 「連携解除」, "link my account"…), with
    the language it was typed in; None for anything else."""
    folded = _SPACES.sub("", unicodedata.normalize("NFKC", text).lower())
    lang = Language.EN if _ENGLISH.search(folded) and "連携" not in folded else Language.JA
    if _UNLINK_TYPED.search(folded):
        return UnlinkAccount(), lang
    if _LINK_TYPED.fullmatch(folded):
        return LinkAccount(), lang
    return None


def payload_action(payload: str) -> LinkAction | None:
    """The linking action of a `link:` payload; None for an unknown one (logged by the caller)."""
    tapped = decode(payload)
    return tapped if isinstance(tapped, LinkAccount | UnlinkAccount) else None


def conversation_id(user_id: str) -> str:
    """The conversation of a LINE user: one per user, as the pipeline keys it."""
    return f"{CHANNEL}:{user_id}"


# --- accounts -------------------------------------------------------------------------------------------


def account(session: Session, user_id: str, now: datetime) -> ChannelAccount:
    """The LINE user's account row, created (following) if missing."""
    return chat_account(session, CHANNEL, user_id, now)


def set_following(session: Session, user_id: str, following: bool, now: datetime) -> None:
    """Record a follow (or unblock) or an unfollow (block); reminders skip accounts not following."""
    row = account(session, user_id, now)
    row.following, row.updated_at = following, now


def linked_student_id(session: Session, user_id: str) -> int | None:
    """The student linked to this LINE user, or None."""
    return core_linked_student_id(session, CHANNEL, user_id)


def remember_student(session: Session, user_id: str, student_id: int | None, now: datetime) -> None:
    """Make the conversation know (or forget) the student, as the order form reads it from the state.

    An expired conversation is started afresh, exactly as the pipeline would, but with the student.
    """
    state = load_state(session, conversation_id(user_id), CHANNEL, user_id, now)
    if state.student_id != student_id:
        state.student_id = student_id
        save_state(session, state, now)


def unlink(session: Session, user_id: str, now: datetime) -> bool:
    """Forget the student linked to this LINE user; False if none was linked."""
    row = account(session, user_id, now)
    was_linked = row.student_id is not None
    row.student_id, row.linked_at, row.updated_at = None, None, now
    remember_student(session, user_id, None, now)
    return was_linked


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_nonce(session: Session, student_id: int, now: datetime) -> str:
    """A new single-use nonce for the student, valid NONCE_TTL; only its SHA-256 is stored."""
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    session.add(AccountLinkNonce(nonce_hash=_hash(nonce), channel=CHANNEL, student_id=student_id, created_at=now,
                                 expires_at=now + NONCE_TTL))
    return nonce


def redeem_nonce(session: Session, nonce: str, user_id: str, now: datetime) -> int | None:
    """Link the LINE user to the nonce's student and use the nonce up; the student's id, or None for an
    unknown, used or expired nonce. The conditional update makes a nonce count once under any concurrency."""
    row = session.scalars(select(AccountLinkNonce).where(AccountLinkNonce.nonce_hash == _hash(nonce),
                                                         AccountLinkNonce.channel == CHANNEL)).one_or_none()
    if row is None:
        return None
    taken = changed_rows(session, update(AccountLinkNonce).where(
        AccountLinkNonce.id == row.id, AccountLinkNonce.used_at.is_(None), AccountLinkNonce.expires_at > now,
    ).values(used_at=now))
    if taken != 1:
        return None
    linked = account(session, user_id, now)
    linked.student_id, linked.linked_at, linked.following, linked.updated_at = row.student_id, now, True, now
    remember_student(session, user_id, row.student_id, now)
    return row.student_id


# --- signing in -------------------------------------------------------------------------------------------


def authenticate(session: Session, student_number: str, password: str) -> Student | None:
    """The student whose second password this is; None for an unknown number or a wrong password alike."""
    student = find_student(session, student_number) if student_number else None
    stored = student.second_password_hash if student is not None else None
    matches = verify_password(stored or decoy_hash(), password)
    return student if matches and stored else None


class SignIn(StrEnum):
    """What the page tells the student after a submission."""

    LINKED = "linked"
    REFUSED = "refused"  # unknown student or wrong password: the same answer for both
    LOCKED = "locked"


@dataclass(frozen=True)
class SignInResult:
    """The outcome and, when linked, the nonce to hand to LINE."""

    outcome: SignIn
    nonce: str | None = None


class LinkPage:
    """GET and POST /line/link?linkToken=…: the sign-in form of the account-link flow."""

    def __init__(self, core: Core, settings: ChannelSettings) -> None:
        self.core, self.settings = core, settings
        access = urlsplit(settings.line_access_base_url)
        # The successful POST redirects to LINE: this page's form may end there (CSP form-action covers
        # redirects). Everything else is as strict as the app's default policy.
        self.csp = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                    f"frame-ancestors 'none'; form-action 'self' {access.scheme}://{access.netloc}")

    async def endpoint(self, request: Request) -> Response:
        """Show the form, or check a submission and send the browser on to LINE."""
        token = request.query_params.get("linkToken", "")
        lang = choose_language(request, None)
        if not LINK_TOKEN.fullmatch(token):
            log.info("LINE link page: missing or malformed link token")
            return self._render(request, "line_link_invalid.html", lang, token="", status_code=400)
        if request.method != "POST":
            return self._form(request, lang, token)
        form = await request.form()
        number = normalize_student_number(str(form.get("student_number") or "")[:MAX_FIELD])
        password = str(form.get("password") or "")[:MAX_FIELD]
        result = await run_in_threadpool(self.sign_in, number, password)
        if result.outcome is SignIn.LOCKED:
            return self._form(request, lang, token, error=say("line.page.locked", lang), number=number,
                              status_code=429)
        if result.outcome is SignIn.REFUSED:
            return self._form(request, lang, token, error=say("line.page.refused", lang), number=number)
        query = urlencode({"linkToken": token, "nonce": result.nonce})
        target = f"{self.settings.line_access_base_url.rstrip('/')}/dialog/bot/accountLink?{query}"
        log.info("LINE link page: signed in, on to LINE with link token %s", mask_token(token))
        return RedirectResponse(target, status_code=303, headers={**PAGE_HEADERS, "Content-Security-Policy": self.csp})

    def sign_in(self, student_number: str, password: str) -> SignInResult:
        """Check the student number and second password; on success a new nonce for that student.

        Neither the password nor the number is logged unmasked. Failures count per student number, known or
        not, in the database: every worker process and a restarted one see the same count (core.lockouts).
        """
        now = self.core.now()
        keys = [lockouts.key(lockouts.LINE_LINK, student_number)]
        # One transaction: the lockout's check serializes the attempts on this number until the failure is
        # recorded or the keys cleared, so concurrent workers cannot squeeze in more than MAX_FAILURES.
        with self.core.transaction() as session:
            if lockouts.throttled(session, keys, now, MAX_FAILURES, FAILURE_WINDOW):
                log.warning("LINE link page: %s refused, too many failed sign-ins",
                            mask_student_number(student_number))
                return SignInResult(SignIn.LOCKED)
            student = authenticate(session, student_number, password)
            if student is None:
                lockouts.record_failure(session, keys, now)
                log.info("LINE link page: sign-in failed for %s", mask_student_number(student_number))
                return SignInResult(SignIn.REFUSED)
            lockouts.clear(session, keys, now)
            nonce = issue_nonce(session, student.id, now)
        return SignInResult(SignIn.LINKED, nonce)

    def _form(self, request: Request, lang: Language, token: str, *, error: str = "", number: str = "",
              status_code: int = 200) -> Response:
        # The password field is always empty: a submitted password is never echoed back.
        return self._render(request, "line_link_form.html", lang, token=token, error=error, number=number,
                            status_code=status_code)

    def _render(self, request: Request, template: str, lang: Language, *, token: str, status_code: int = 200,
                **context: object) -> Response:
        other = Language.EN if lang is Language.JA else Language.JA
        switch = "?" + urlencode({**({"linkToken": token} if token else {}), "lang": other.value})
        return request.app.state.templates.TemplateResponse(
            request, template, {"lang": lang.value, "other_lang": other.value, "switch_href": switch,
                                "t": partial(say, lang=lang), "title": say("line.page.title", lang), **context},
            status_code=status_code, headers={**PAGE_HEADERS, "Content-Security-Policy": self.csp})
