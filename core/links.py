"""One-time links: mailed URLs for email registration, email change, second-password reset and signing in to the
web chat."""

import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from smtplib import SMTPException
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db import changed_rows
from core.enums import Language, LinkPurpose, LinkState, Service
from core.errors import (
    DomainError,
    InvalidEmailAddress,
    LinkInvalid,
    PasswordMismatch,
    RateLimited,
    WeakSecondPassword,
)
from core.formatting import format_short
from core.i18n import t
from core.identifiers import normalize_email, normalize_student_number
from core.jobs import MAIL, enqueue
from core.masking import mask_email, mask_student_number
from core.models import OneTimeLink, Student
from core.passwords import check_second_password
from core.profile import Contact, OpeningHours
from core.reminders import schedule_link_nudge
from core.services import Core
from core.students import find_student, set_second_password
from core.web_sessions import IDLE, SignedIn, start_session

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 bits from `secrets`; the requirement is at least 128
PER_MINUTE = 1
PER_HOUR = 3
EMAIL_PURPOSES = frozenset({LinkPurpose.EMAIL_REGISTRATION, LinkPurpose.EMAIL_CHANGE})
NUMBER_KEPT = 33  # of a queued number: one past the column's 32, so that a longer text still matches no one

# token_urlsafe(32) gives 43 characters; anything far off that shape is unknown without a query.
# How log lines name the links mailed to a student's registered address.
_PURPOSE_IN_LOGS = {LinkPurpose.SECOND_PASSWORD_RESET: "second-password reset", LinkPurpose.WEB_SIGN_IN: "web sign-in"}
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


class MailNotSent(Exception):
    """The mail server refused a link's mail; the job is retried."""


@dataclass(frozen=True)
class LinkNudge:
    """Where to remind a student that their reset link is about to expire: their own chat."""

    channel: str
    recipient: str
    conversation_id: str | None
    lang: str


@dataclass(frozen=True)
class ResetRequestOutcome:
    """The public answer to a reset request: the same whether or not a mail was sent, so it reveals nothing."""

    text: str


@dataclass(frozen=True)
class EmailLinkSent:
    """A confirmation link was mailed to `email`; `text` is the reply with the guide's checklist."""

    email: str
    expires_at: datetime
    text: str


@dataclass(frozen=True)
class LinkView:
    """What a link is and whether it can be used, without consuming it."""

    state: LinkState
    purpose: LinkPurpose | None = None
    student_number: str | None = None
    language: Language | None = None  # the student's preferred language
    email: str | None = None  # the address the link was mailed to
    expires_at: datetime | None = None


@dataclass(frozen=True)
class EmailConfirmation:
    """The outcome of opening an email link: newly confirmed, or already confirmed by an earlier opening."""

    email: str
    already_confirmed: bool


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored; the token itself never is."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link_url(core: Core, token: str, lang: Language | str) -> str:
    """The absolute URL of a link page, on the configured base URL and in the mail's language."""
    return core.url(f"links/{token}?lang={Language(lang).value}")


def request_second_password_reset(core: Core, student_number: str, lang: Language | str, *,
                                  nudge: LinkNudge | None = None) -> ResetRequestOutcome:
    """Queue the mail of a reset link to the student's registered address, if there is one; answer the same
    either way.

    The request does the same, constant work for every number (one queued `mail` job); the worker
    (`send_link_mail`) looks the student up, checks the rate limits, issues the link and mails it. Unknown
    students, students without a verified address and rate limits are only logged there, the student number
    masked, so neither the answer nor its time tells who exists. Mail only ever goes to the address on record.

    Args:
        core: the core services.
        student_number: as typed; it is normalized before it is queued.
        lang: the language of the mail and of the reply.
        nudge: where to remind the student before the link expires; only for a student the chat already
            knows asking for themselves (a nudge to anyone else would tell them the account exists).

    Returns:
        The public outcome, identical for every case.
    """
    lang = Language(lang)
    queue_link_mail(core, student_number, LinkPurpose.SECOND_PASSWORD_RESET, lang, nudge)
    return ResetRequestOutcome(_reset_reply(core, lang))


def sign_in_reply(core: Core, lang: Language | str) -> str:
    """What the chat says to any student number given for signing in: the same whoever it is."""
    lang = Language(lang)
    return t("links.reply.sign_in_requested", lang, **_contact_values(core, lang))


def request_web_sign_in(core: Core, student_number: str, lang: Language | str) -> None:
    """Queue the mail of a sign-in link to the student's registered university address, if there is one.

    The same, constant work for every number (one queued `mail` job), like `request_second_password_reset`;
    an unknown number, no verified address or a rate limit is only logged by the worker, the number masked.
    """
    queue_link_mail(core, student_number, LinkPurpose.WEB_SIGN_IN, Language(lang))


def queue_link_mail(core: Core, student_number: str, purpose: LinkPurpose, lang: Language,
                    nudge: LinkNudge | None = None) -> str:
    """Queue one `mail` job for a link of `purpose` to the number's registered address; the job's key.

    Nothing here depends on whether the student exists: one short transaction with the same statements (the
    key's lookup and the insert) for any number. The job holds only what the worker needs: the normalized
    number (cut to one character past the column's length, so a long text still matches no one), the purpose,
    the language, and the nudge's chat address when there is one.
    """
    number = normalize_student_number(student_number)[:NUMBER_KEPT]
    key = f"{purpose.value}:{secrets.token_hex(16)}"  # a request of its own: never merged with another
    payload: dict[str, Any] = {"purpose": purpose.value, "number": number, "lang": lang.value}
    if nudge is not None:
        payload["nudge"] = asdict(nudge)
    with core.transaction() as session:
        enqueue(session, MAIL, key, payload, core.now())
    log.info("%s for %s queued as job %s", _PURPOSE_IN_LOGS[purpose], mask_student_number(number), key)
    return key


def send_link_mail(core: Core, payload: dict[str, Any], record: Callable[[Session], object]) -> None:
    """The worker's side of a queued link mail: issue a link of the job's purpose and mail it to the student's
    registered, verified address, if there is one.

    An unknown student, no verified address or a rate limit ends the job without a mail, only logged (the
    number masked). `record(session)` marks the job sent in the same transaction as the new link, so that a
    retry of the job after that commit sends nothing more. The mail goes out inside that transaction, after
    `record` and before the commit: if sending fails, everything is rolled back (no link stored, the older
    link still valid, nothing counted against the limits, the job not marked) and the failure is raised for
    the worker to retry. Should the process die between the mail's sending and the commit, the mailed link
    was never stored (opening it says it is unknown) and the job is taken up again when its lease runs out:
    the student receives a second mail whose link works. The other order (commit, then mail) would instead
    lose the mail for good when the process dies in between.

    Raises:
        Exception: whatever sending the mail or the database raised (the job is retried).
    """
    purpose, lang = LinkPurpose(payload["purpose"]), Language(payload["lang"])
    what, masked = _PURPOSE_IN_LOGS[purpose], mask_student_number(payload["number"])
    job = payload.get("job")  # named by each line here, as by the request's line beside its conversation
    try:
        with core.transaction() as session:
            student = find_student(session, payload["number"])
            if student is None:
                log.info("%s for unknown student %s: no mail (job %s)", what, masked, job)
                return
            if not student.email or student.email_verified_at is None:
                log.info("%s for %s: no registered email, no mail (job %s)", what, masked, job)
                return
            email = student.email
            link, token = _store_link(core, session, student.id, purpose, email)
            if payload.get("nudge"):
                _schedule_nudge(session, link, core.now(), LinkNudge(**payload["nudge"]))
            record(session)
            _mail_link(core, link, token, lang)
    except RateLimited as limited:
        log.info("%s for %s: rate limited until %s (job %s)", what, masked, limited.retry_after, job)
        return
    except SMTPException as error:
        # Only the error's kind goes on: an SMTP error's text can hold the address, and the worker keeps it.
        log.warning("%s for %s: the mail to %s was not sent (%s), retried (job %s)", what, masked,
                    mask_email(email), type(error).__name__, job)
        raise MailNotSent(f"{what} mail not sent: {type(error).__name__}") from None
    log.info("%s link for %s mailed to %s, expires %s (job %s)", what, masked, mask_email(email), link.expires_at,
             job)


def sign_in_with_link(core: Core, token: str) -> tuple[str, SignedIn]:
    """Consume a sign-in link and start the browser's session: the cookie's token and who it signs in.

    Raises:
        LinkInvalid: the link is unknown, used, superseded, expired or not a sign-in link.
    """
    now = core.now()
    with core.transaction() as session:
        link = _valid_link(session, token, LinkPurpose.WEB_SIGN_IN, now)
        if not _consume(session, link.id, now):  # used at this very moment by another request
            raise LinkInvalid(LinkState.USED.value)
        student = link.student
        cookie = start_session(session, student, "email", now)
        return cookie, SignedIn(student.id, student.student_number, now + IDLE)


def request_email_registration(core: Core, student: Student, email: str, lang: Language | str) -> EmailLinkSent:
    """Mail a confirmation link to the address the student wants to register.

    Args:
        core: the core services.
        student: the identified student.
        email: the address as typed; surrounding spaces are removed.
        lang: the language of the mail and of the reply.

    Returns:
        Where the mail went, when its link expires and the reply text with the guide's checklist.

    Raises:
        InvalidEmailAddress: if the address is malformed.
        RateLimited: after 1 request in the last minute or 3 in the last hour; `retry_after` says when.
    """
    return _request_email_link(core, student, email, lang, LinkPurpose.EMAIL_REGISTRATION)


def request_email_change(core: Core, student: Student, new_email: str, lang: Language | str) -> EmailLinkSent:
    """Mail a confirmation link to the new address; the registered one stays until the link is opened.

    Args:
        core: the core services.
        student: the identified student.
        new_email: the new address as typed.
        lang: the language of the mail and of the reply.

    Returns:
        Where the mail went, when its link expires and the reply text with the guide's checklist.

    Raises:
        InvalidEmailAddress: if the address is malformed or is the one already registered.
        RateLimited: after 1 request in the last minute or 3 in the last hour; `retry_after` says when.
    """
    return _request_email_link(core, student, new_email, lang, LinkPurpose.EMAIL_CHANGE)


def open_link(session: Session, student_id: int, purpose: LinkPurpose, now: datetime) -> OneTimeLink | None:
    """The student's newest link of `purpose` that can still be used, or None."""
    return session.scalars(select(OneTimeLink).where(
        OneTimeLink.student_id == student_id, OneTimeLink.purpose == purpose, OneTimeLink.used_at.is_(None),
        OneTimeLink.voided_at.is_(None), OneTimeLink.expires_at > now).order_by(OneTimeLink.id.desc())).first()


def inspect_link(core: Core, token: str) -> LinkView:
    """What a link is and whether it is still valid; does not consume it.

    Args:
        core: the core services.
        token: the token from the URL.

    Returns:
        The link's view; state UNKNOWN (and nothing else) when no such link exists.
    """
    if not _TOKEN_SHAPE.match(token):
        return LinkView(LinkState.UNKNOWN)
    with core.transaction() as session:
        link = _find_link(session, token)
        if link is None:
            return LinkView(LinkState.UNKNOWN)
        student = link.student
        return LinkView(state=_state(link, core.now()), purpose=link.purpose,
                        student_number=student.student_number, language=student.preferred_language,
                        email=link.email, expires_at=link.expires_at)


def confirm_email(core: Core, token: str) -> EmailConfirmation:
    """Consume an email registration or change link and make its address the student's verified one.

    Opening a used link again answers `already_confirmed` while that address is still the registered one,
    because mail scanners often open links before the student does.

    Args:
        core: the core services.
        token: the token from the URL.

    Returns:
        The confirmed address and whether an earlier opening had already confirmed it.

    Raises:
        LinkInvalid: with reason expired, used, superseded or unknown.
    """
    now = core.now()
    with core.transaction() as session:
        link = _find_link(session, token) if _TOKEN_SHAPE.match(token) else None
        if link is None or link.purpose not in EMAIL_PURPOSES:
            raise LinkInvalid(LinkState.UNKNOWN.value)
        if not _consume(session, link.id, now):
            session.refresh(link)  # another request may have just used it
            student = link.student
            if link.used_at is not None and student.email == link.email and student.email_verified_at:
                return EmailConfirmation(email=link.email, already_confirmed=True)
            raise LinkInvalid(_state(link, now).value)
        student = session.scalars(select(Student).where(Student.id == link.student_id)
                                  .with_for_update().execution_options(populate_existing=True)).one()
        student.email, student.email_verified_at, student.updated_at = link.email, now, now
        # A reset link mailed to the previous address must not outlive the change.
        session.execute(
            update(OneTimeLink)
            .where(OneTimeLink.student_id == student.id,
                   OneTimeLink.purpose == LinkPurpose.SECOND_PASSWORD_RESET,
                   OneTimeLink.email != link.email,
                   OneTimeLink.used_at.is_(None), OneTimeLink.voided_at.is_(None))
            .values(voided_at=now).execution_options(synchronize_session=False))
        log.info("email of %s confirmed as %s by link %s", mask_student_number(student.student_number),
                 mask_email(link.email), link.id)
        return EmailConfirmation(email=link.email, already_confirmed=False)


def reset_second_password(core: Core, token: str, password: str, password_confirmation: str) -> None:
    """Set a new second password through a reset link; the link is consumed only if the password is accepted.

    Args:
        core: the core services.
        token: the token from the URL.
        password: the new second password.
        password_confirmation: the same, typed again.

    Raises:
        LinkInvalid: with reason expired, used, superseded or unknown.
        PasswordMismatch: if the two entries differ (with the rules the first entry breaks).
        WeakSecondPassword: with the broken rule codes, if the entries match but break rules.
    """
    now = core.now()
    with core.transaction() as session:
        link = _valid_link(session, token, LinkPurpose.SECOND_PASSWORD_RESET, now)
        student = link.student
        violations = tuple(check_second_password(password, student.student_number))
        if password != password_confirmation:
            raise PasswordMismatch(violations)
        if violations:
            raise WeakSecondPassword(violations)
        if not _consume(session, link.id, now):
            session.refresh(link)
            raise LinkInvalid(_state(link, now).value)
        set_second_password(session, student, password, now)
        log.info("second password of %s reset by link %s", mask_student_number(student.student_number), link.id)


def error_text(error: DomainError, lang: Language | str) -> str:
    """The student-facing text for an error raised here (RateLimited, InvalidEmailAddress, LinkInvalid).

    Raises:
        KeyError: for any other error, which has its messages elsewhere.
    """
    if isinstance(error, RateLimited):
        return t("links.errors.rate_limited", lang, per_hour=PER_HOUR,
                 retry_at=format_short(error.retry_after, lang))
    if isinstance(error, InvalidEmailAddress):
        return t(f"links.errors.invalid_email.{error.reason}", lang)
    if isinstance(error, LinkInvalid):
        return t(f"links.invalid.{error.reason}.body", lang)
    raise KeyError(error.code)


def _request_email_link(core: Core, student: Student, email: str, lang: Language | str,
                        purpose: LinkPurpose) -> EmailLinkSent:
    lang = Language(lang)
    address = normalize_email(email)
    masked = mask_student_number(student.student_number)
    with core.transaction() as session:
        if purpose is LinkPurpose.EMAIL_CHANGE:
            current = session.get(Student, student.id)
            if current is not None and current.email_verified_at and (current.email or "").lower() == \
                    address.lower():
                raise InvalidEmailAddress("same_as_current")
        try:
            expires_at = _issue_link(core, session, student.id, purpose, address, lang)
        except RateLimited as limited:
            log.info("%s link for %s: rate limited until %s", purpose.value, masked, limited.retry_after)
            raise
    log.info("%s link for %s mailed to %s, expires %s", purpose.value, masked, mask_email(address), expires_at)
    text = "\n\n".join((t("links.reply.email_link_sent", lang, email=address,
                          minutes=core.profile.one_time_link_minutes,
                          expires_at=format_short(expires_at, lang)),
                        t("links.reply.checklist", lang, **_contact_values(core, lang))))
    return EmailLinkSent(email=address, expires_at=expires_at, text=text)


def _issue_link(core: Core, session: Session, student_id: int, purpose: LinkPurpose, email: str,
                lang: Language) -> datetime:
    """Check the rate limits, void older links of the purpose, store a new one and mail it.

    The mail goes out inside the transaction: if sending fails, nothing is stored, the older link stays valid
    and the failed attempt does not count against the limits.
    """
    link, token = _store_link(core, session, student_id, purpose, email)
    _mail_link(core, link, token, lang)
    return link.expires_at


def _store_link(core: Core, session: Session, student_id: int, purpose: LinkPurpose,
                email: str) -> tuple[OneTimeLink, str]:
    """Check the rate limits, void older links of the purpose and store a new one (flushed, not committed);
    the link and its token, which is never stored.

    Raises:
        RateLimited: after 1 link of the purpose in the last minute or 3 in the last hour.
    """
    now = core.now()
    # Locking the student row serializes concurrent requests on PostgreSQL; SQLite's BEGIN IMMEDIATE
    # already holds the database's write lock.
    session.execute(select(Student.id).where(Student.id == student_id).with_for_update()).one()
    _check_rate(session, student_id, purpose, now)
    session.execute(
        update(OneTimeLink)
        .where(OneTimeLink.student_id == student_id, OneTimeLink.purpose == purpose,
               OneTimeLink.used_at.is_(None), OneTimeLink.voided_at.is_(None))
        .values(voided_at=now).execution_options(synchronize_session=False))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = OneTimeLink(student_id=student_id, purpose=purpose, token_hash=hash_token(token), email=email,
                       created_at=now, expires_at=now + timedelta(minutes=core.profile.one_time_link_minutes))
    session.add(link)
    session.flush()
    return link, token


def _mail_link(core: Core, link: OneTimeLink, token: str, lang: Language) -> None:
    subject, body = _link_mail(core, link.purpose, lang, link_url(core, token, lang), link.expires_at)
    core.send_mail(to=link.email, subject=subject, body=body)


def _schedule_nudge(session: Session, link: OneTimeLink, now: datetime, nudge: LinkNudge) -> None:
    schedule_link_nudge(session, link, now, channel=nudge.channel, recipient=nudge.recipient,
                        conversation_id=nudge.conversation_id, lang=nudge.lang)


def _check_rate(session: Session, student_id: int, purpose: LinkPurpose, now: datetime) -> None:
    # Counted per purpose: anyone who knows a student number can request resets, and that must not use up
    # the student's own email registration or change.
    recent = select(OneTimeLink.created_at).where(
        OneTimeLink.student_id == student_id, OneTimeLink.purpose == purpose,
        OneTimeLink.created_at > now - timedelta(hours=1))
    created = sorted(session.scalars(recent))
    minute_ago = now - timedelta(minutes=1)
    in_last_minute = [at for at in created if at > minute_ago]
    if len(in_last_minute) >= PER_MINUTE:
        raise RateLimited(retry_after=in_last_minute[-PER_MINUTE] + timedelta(minutes=1))
    if len(created) >= PER_HOUR:
        raise RateLimited(retry_after=created[-PER_HOUR] + timedelta(hours=1))


def _consume(session: Session, link_id: int, now: datetime) -> bool:
    """Mark a link used if it still can be; True for exactly one of any number of concurrent callers."""
    return changed_rows(session, update(OneTimeLink)
                        .where(OneTimeLink.id == link_id, OneTimeLink.used_at.is_(None),
                               OneTimeLink.voided_at.is_(None), OneTimeLink.expires_at > now)
                        .values(used_at=now).execution_options(synchronize_session=False)) == 1


def _valid_link(session: Session, token: str, purpose: LinkPurpose, now: datetime) -> OneTimeLink:
    """The still valid link of `purpose` with this token.

    Raises:
        LinkInvalid: expired, used or superseded; unknown for no such link or one of another purpose.
    """
    link = _find_link(session, token) if _TOKEN_SHAPE.match(token) else None
    if link is None or link.purpose is not purpose:
        raise LinkInvalid(LinkState.UNKNOWN.value)
    state = _state(link, now)
    if state is not LinkState.VALID:
        raise LinkInvalid(state.value)
    return link


def _find_link(session: Session, token: str) -> OneTimeLink | None:
    return session.scalars(select(OneTimeLink).where(OneTimeLink.token_hash == hash_token(token))).one_or_none()


def _state(link: OneTimeLink, now: datetime) -> LinkState:
    if link.used_at is not None:
        return LinkState.USED
    if link.voided_at is not None:
        return LinkState.SUPERSEDED
    if now >= link.expires_at:
        return LinkState.EXPIRED
    return LinkState.VALID


def _link_mail(core: Core, purpose: LinkPurpose, lang: Language, url: str,
               expires_at: datetime) -> tuple[str, str]:
    service = core.profile.service_name(lang)
    subject = t(f"mail.{purpose.value}.subject", lang, service=service)
    body = t(f"mail.{purpose.value}.body", lang, service=service, url=url,
             minutes=core.profile.one_time_link_minutes, expires_at=format_short(expires_at, lang))
    footer = t("mail.footer", lang, **_contact_values(core, lang))
    return subject, f"{body}\n\n{footer}\n"


def _reset_reply(core: Core, lang: Language) -> str:
    return t("links.reply.reset_requested", lang, **_contact_values(core, lang))


def _contact_values(core: Core, lang: Language) -> dict[str, object]:
    contact: Contact = core.profile.contact(Service.CALL_CENTER)
    return {"sender": parseaddr(core.mail_from)[1] or core.mail_from,
            "minutes": core.profile.one_time_link_minutes,
            "call_center": contact.name(lang), "call_center_phone": contact.phone or "-",
            "call_center_hours": hours_text(contact.hours, lang)}


def hours_text(hours: OpeningHours, lang: Language) -> str:
    """An office's hours as the mails write them (平日 9:00〜17:00 / weekdays 9:00–17:00)."""
    if hours.always:
        return t("mail.hours.always", lang)
    # Written as the guide writes them: 9:00, not 09:00.
    return t(f"mail.hours.{hours.days}", lang, open=f"{hours.open.hour}:{hours.open.minute:02d}",
             close=f"{hours.close.hour}:{hours.close.minute:02d}")
