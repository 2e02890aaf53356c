"""Staff accounts for the /admin pages: passwords (argon2id), sign-in with throttling, and server-side sessions."""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core import lockouts
from core.db import changed_rows
from core.errors import InvalidEmailAddress
from core.identifiers import normalize_email
from core.masking import mask_email
from core.models import StaffAccount, StaffSession
from core.passwords import common_passwords, decoy_hash, hash_password, password_needs_rehash, verify_password

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256  # bounds hashing cost and pasted garbage
MAX_FAILURES = 5  # failed sign-ins per account and per client address …
FAILURE_WINDOW = timedelta(minutes=15)  # … within this window, then sign-ins are refused until they age out
IDLE_TIMEOUT = timedelta(hours=8)
ABSOLUTE_TIMEOUT = timedelta(hours=24)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often (one write per page view is waste)
TOKEN_BYTES = 32
MAX_NAME_LENGTH = 64
AT_DESK_WITHIN = timedelta(seconds=90)  # an agent whose inbox page was live this recently is at the desk
DESK_TOUCH_EVERY = timedelta(seconds=20)  # the inbox's live stream writes presence at most this often


class Role(StrEnum):
    """What a staff account may do: an admin sees the dashboard and may also answer; an agent answers only."""

    ADMIN = "admin"
    AGENT = "agent"


class StaffError(ValueError):
    """A staff account operation refused, with a message fit for the operator."""


class LoginOutcome(StrEnum):
    """How a sign-in attempt ended; INVALID is the one answer for an unknown email and a wrong password."""

    OK = "ok"
    INVALID = "invalid"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a sign-in and, when it is OK, the new session's token (for the cookie only)."""

    outcome: LoginOutcome
    token: str | None = None
    account_id: int | None = None


def _account_key(email: str) -> str:
    """What an account is stored and found by: the email as typed, trimmed and lower-cased. A lookup takes any
    text (a sign-in with a malformed address is one more failure, never an error); create_account checks the
    address with core.identifiers.normalize_email first."""
    return email.strip().lower()


def check_password(password: str) -> list[str]:
    """What is wrong with a proposed staff password, in plain words; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"too long: use at most {MAX_PASSWORD_LENGTH} characters")
    if password.lower() in common_passwords() or not password.strip():
        problems.append("too common: choose a password that is not on lists of common passwords")
    return problems


def check_display_name(name: str) -> str:
    """A display name as stored (trimmed).

    Raises:
        StaffError: when it is empty, too long, or looks like an email (students and transcripts show it).
    """
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_LENGTH:
        raise StaffError(f"display name must be 1 to {MAX_NAME_LENGTH} characters")
    if "@" in name:
        raise StaffError("display name must not be an email address: students and transcripts show it")
    return name


def create_account(session: Session, email: str, password: str, now: datetime, *, role: Role = Role.ADMIN,
                   display_name: str | None = None) -> StaffAccount:
    """Add a staff account with an argon2id hash of `password` (the password itself is never stored).

    Raises:
        StaffError: for a malformed email, an email already in use, a password `check_password` refuses,
            or a bad display name (an agent needs one: students see it).
    """
    try:
        email = _account_key(normalize_email(email))
    except InvalidEmailAddress:
        raise StaffError(f"not an email address: {_account_key(email)!r}") from None
    problems = check_password(password)
    if problems:
        raise StaffError("password " + "; ".join(problems))
    if display_name is None and role is Role.AGENT:
        raise StaffError("an agent needs a display name (--name): students see it on replies")
    name = check_display_name(display_name) if display_name is not None else None
    if find_account(session, email) is not None:
        raise StaffError(f"a staff account for {email} already exists")
    account = StaffAccount(email=email, password_hash=hash_password(password), created_at=now, role=role.value,
                           display_name=name)
    session.add(account)
    session.flush()
    log.info("staff account %s created (%s)", mask_email(email), role.value)
    return account


def shown_name(account: StaffAccount) -> str:
    """How an account appears to students, other agents and in transcripts: its display name, never its email."""
    return account.display_name or f"#{account.id}"


def is_admin(account: StaffAccount) -> bool:
    """Whether the account may see the dashboard (agents see only the inbox)."""
    return account.role == Role.ADMIN.value


def enabled_by_role(session: Session) -> dict[str, int]:
    """How many enabled staff accounts each role has (a role with none is left out)."""
    rows = session.execute(select(StaffAccount.role, func.count()).where(StaffAccount.disabled_at.is_(None))
                           .group_by(StaffAccount.role)).all()
    return {role: count for role, count in rows}


def may_answer(session: Session) -> int:
    """How many enabled staff accounts may answer students in the inbox (admins may, agents do)."""
    return session.scalar(select(func.count()).select_from(StaffAccount)
                          .where(StaffAccount.disabled_at.is_(None))) or 0


def at_desk(session: Session, account: StaffAccount, now: datetime) -> None:
    """Note that the account has the inbox open now (written at most every DESK_TOUCH_EVERY)."""
    if account.desk_seen_at is None or now - account.desk_seen_at >= DESK_TOUCH_EVERY:
        account.desk_seen_at = now


def leave_desk(session: Session, account_id: int) -> None:
    """The account is no longer at the desk (signed out)."""
    session.execute(update(StaffAccount).where(StaffAccount.id == account_id).values(desk_seen_at=None))


def agents_at_desk(session: Session, now: datetime) -> int:
    """How many enabled accounts had the inbox open within AT_DESK_WITHIN."""
    return session.scalar(select(func.count()).select_from(StaffAccount).where(
        StaffAccount.disabled_at.is_(None), StaffAccount.desk_seen_at > now - AT_DESK_WITHIN)) or 0


def find_account(session: Session, email: str) -> StaffAccount | None:
    """The account with this email (any case), or None."""
    return session.scalars(select(StaffAccount).where(StaffAccount.email == _account_key(email))).one_or_none()


def list_accounts(session: Session) -> list[StaffAccount]:
    """Every staff account, by email."""
    return list(session.scalars(select(StaffAccount).order_by(StaffAccount.email)))


def disable_account(session: Session, email: str, now: datetime) -> StaffAccount:
    """Disable an account and end its sessions at once (disabling twice keeps the first time).

    Raises:
        StaffError: when no account has this email.
    """
    account = find_account(session, email)
    if account is None:
        raise StaffError(f"no staff account for {_account_key(email)}")
    account.disabled_at = account.disabled_at or now
    ended = changed_rows(session, delete(StaffSession).where(StaffSession.account_id == account.id))
    log.info("staff account %s disabled, %d session(s) ended", mask_email(account.email), ended)
    return account


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _throttle_keys(email: str, address: str | None) -> list[str]:
    keys = [lockouts.key(lockouts.STAFF_ACCOUNT, email)]
    if address:
        keys.append(lockouts.key(lockouts.STAFF_ADDRESS, address))
    return keys


def is_throttled(session: Session, email: str, address: str | None, now: datetime) -> bool:
    """True while the account or the client address has had MAX_FAILURES failures within FAILURE_WINDOW."""
    return lockouts.throttled(session, _throttle_keys(_account_key(email), address), now, MAX_FAILURES,
                              FAILURE_WINDOW)


def login(session: Session, email: str, password: str, address: str | None, now: datetime) -> LoginResult:
    """Check a staff sign-in and, if it is right, start a session.

    An unknown email, a disabled account and a wrong password all give INVALID after the same argon2 work;
    each failure counts against the account and the client address. While either is throttled, the password
    is not even checked.

    Args:
        session: the database session (the caller's transaction).
        email: the email as typed.
        password: the password as typed; never logged or stored.
        address: the client's IP address, or None when unknown.
        now: the current time.

    Returns:
        The outcome, with the session token when it is OK.
    """
    email = _account_key(email)[:320]
    if is_throttled(session, email, address, now):
        log.warning("staff sign-in refused for %s from %s: too many failures", mask_email(email), address or "-")
        return LoginResult(LoginOutcome.THROTTLED)
    account = find_account(session, email) if email else None
    password = password[:MAX_PASSWORD_LENGTH + 1]
    good = verify_password(account.password_hash if account else decoy_hash(), password)
    if account is None or account.disabled_at is not None or not good:
        lockouts.record_failure(session, _throttle_keys(email, address), now)
        log.warning("staff sign-in failed for %s from %s", mask_email(email), address or "-")
        return LoginResult(LoginOutcome.INVALID)
    if password_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)  # parameters were raised since it was set
    # Only the account's failures: the address's may be guesses at other accounts.
    lockouts.clear(session, [lockouts.key(lockouts.STAFF_ACCOUNT, email)], now)
    account.last_login_at = now
    token = start_session(session, account, now)
    log.info("staff sign-in for %s from %s", mask_email(email), address or "-")
    return LoginResult(LoginOutcome.OK, token=token, account_id=account.id)


def start_session(session: Session, account: StaffAccount, now: datetime) -> str:
    """A new session for the account; returns its token (only the SHA-256 is stored). Expired ones are swept."""
    session.execute(delete(StaffSession).where(
        StaffSession.account_id == account.id,
        (StaffSession.last_seen_at <= now - IDLE_TIMEOUT) | (StaffSession.created_at <= now - ABSOLUTE_TIMEOUT)))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(StaffSession(account_id=account.id, token_hash=_hash_token(token), created_at=now, last_seen_at=now))
    return token


def session_account(session: Session, token: str | None, now: datetime) -> StaffAccount | None:
    """The active account a session token belongs to, or None (unknown, expired, or the account disabled).

    A live session's idle timer is restarted; an expired one is deleted.
    """
    if not token or len(token) > 128:
        return None
    row = session.scalars(select(StaffSession).where(StaffSession.token_hash == _hash_token(token))).one_or_none()
    if row is None:
        return None
    account = session.get(StaffAccount, row.account_id)
    expired = now - row.last_seen_at >= IDLE_TIMEOUT or now - row.created_at >= ABSOLUTE_TIMEOUT
    if account is None or account.disabled_at is not None or expired:
        session.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return account


def end_session(session: Session, token: str | None) -> bool:
    """Delete the session of this token (sign-out); False if there was none."""
    if not token:
        return False
    return bool(changed_rows(session, delete(StaffSession).where(StaffSession.token_hash == _hash_token(token))))


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session's forms: derived from the session's secret, so it needs no storage and
    nobody without the (HttpOnly) session cookie can compute it."""
    return hashlib.sha256(f"csrf:{session_token}".encode()).hexdigest()


def same_secret(expected: str | None, given: str | None) -> bool:
    """Compare two secrets in constant time; False when either is missing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
