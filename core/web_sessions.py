"""Browsers signed in to the web chat: a random token in the browser's cookie, its SHA-256 in the database, an idle
and an absolute timeout, and sign-out. Who a web chat's student is comes from here, never from what was typed."""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.clock import require_aware
from core.db import changed_rows
from core.masking import mask_student_number
from core.models import Student, WebSession

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
IDLE = timedelta(minutes=60)  # without a message for this long, the browser is signed out
ABSOLUTE = timedelta(hours=12)  # and after this long whatever happens: a shared computer forgets by the evening
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often (one write per message is waste)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A browser's session: who it is and until when it lasts if used."""

    student_id: int
    student_number: str
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(session: Session, student: Student, via: str, now: datetime) -> str:
    """A new signed-in session for `student`; the token for the browser's cookie (only its hash is stored)."""
    now = require_aware(now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(WebSession(token_hash=_hash(token), student_id=student.id, via=via, created_at=now,
                           last_seen_at=now, expires_at=now + ABSOLUTE))
    session.flush()
    log.info("web sign-in of %s by %s", mask_student_number(student.student_number), via)
    return token


def signed_in(session: Session, token: str | None, now: datetime) -> SignedIn | None:
    """The student a cookie's token signs in, or None: no token, unknown, signed out, idle too long or past its
    absolute end. A live session's idle clock restarts."""
    if not token or len(token) > 200:
        return None
    now = require_aware(now)
    row = session.scalars(select(WebSession).where(WebSession.token_hash == _hash(token))).one_or_none()
    if row is None or row.ended_at is not None or now >= row.expires_at or now - row.last_seen_at >= IDLE:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    student = session.get(Student, row.student_id)
    if student is None:
        return None
    return SignedIn(student.id, student.student_number, min(row.expires_at, row.last_seen_at + IDLE))


def end_session(session: Session, token: str | None, now: datetime) -> bool:
    """Sign a browser out; True if it was signed in."""
    if not token:
        return False
    ended = changed_rows(session, update(WebSession).where(WebSession.token_hash == _hash(token),
                                                           WebSession.ended_at.is_(None))
                         .values(ended_at=require_aware(now)).execution_options(synchronize_session=False))
    return bool(ended)
