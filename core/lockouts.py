"""Lockouts after failed sign-ins, kept in the database so every worker process and every restart sees them."""

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from core.models import SignInFailure

# A failure is kept this long and no longer (the keys are hashes of emails, addresses and student numbers, which
# are cheap to guess back): every lockout's window must fit in it. Raise it when a longer window is needed.
LONGEST_WINDOW = timedelta(minutes=15)

# The scopes of the keys. The staff ones keep the names the table had before it was shared ("account:<email>",
# "address:<ip>"): a stored SHA-256 cannot be re-keyed, so renaming them would forget the failures counted so far.
STAFF_ACCOUNT = "account"
STAFF_ADDRESS = "address"
LINE_LINK = "line-link"

ADVISORY_SPACE = 0x4C4F434B  # "LOCK": the first half of the PostgreSQL advisory locks of lockouts (see _lock)


def key(scope: str, value: str) -> str:
    """The key of `value` within one lockout's scope, e.g. key(LINE_LINK, "22M3456") → "line-link:22M3456"."""
    return f"{scope}:{value}"


def _hashed(keys: Iterable[str]) -> list[str]:
    return sorted({hashlib.sha256(one.encode("utf-8")).hexdigest() for one in keys})


def _check_window(window: timedelta) -> None:
    if window > LONGEST_WINDOW:
        raise ValueError(f"a lockout window of {window} is longer than failures are kept ({LONGEST_WINDOW}): "
                         "raise core.lockouts.LONGEST_WINDOW")


def throttled(session: Session, keys: Iterable[str], now: datetime, limit: int, window: timedelta) -> bool:
    """True while any of `keys` has had `limit` failures within `window` before `now`.

    Call it first in the transaction that checks the password and then records the failure or clears the keys:
    it takes the keys' lock for the rest of that transaction, so concurrent workers check one after another and
    each sees the failures recorded before it (several cannot all see fewer than `limit` and all go on).
    """
    _check_window(window)
    hashed = _hashed(keys)
    _lock(session, hashed)
    since = now - window
    for key_hash in hashed:
        failures = session.scalar(select(func.count()).select_from(SignInFailure)
                                  .where(SignInFailure.key_hash == key_hash, SignInFailure.at > since))
        if (failures or 0) >= limit:
            return True
    return False


def _lock(session: Session, hashed: list[str]) -> None:
    """Serialize the transactions that check these keys until they end. SQLite needs nothing: a writing
    transaction holds the database's one write lock from its start (core.db). On PostgreSQL, where READ
    COMMITTED would let two transactions count the same rows, a transaction-level advisory lock per key, taken
    in sorted order so two transactions never wait for each other's. The two-key form keeps them apart from
    the one-key advisory locks of conversations (core.turns) and of the scheduler (bot.delivery.scheduler)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key_hash in hashed:  # sorted by _hashed; two keys sharing 32 bits only wait for each other, harmlessly
        session.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"),
                        {"space": ADVISORY_SPACE, "key": int(key_hash[:8], 16) - 2**31})


def record_failure(session: Session, keys: Iterable[str], now: datetime) -> None:
    """Count one failure against each key. Failures no window counts any more go at the same time."""
    sweep(session, now)
    session.add_all(SignInFailure(key_hash=key_hash, at=now) for key_hash in _hashed(keys))


def clear(session: Session, keys: Iterable[str], now: datetime | None = None) -> None:
    """Forget the keys' failures (after a successful sign-in); with `now`, aged-out failures of any key too."""
    if now is not None:
        sweep(session, now)
    session.execute(delete(SignInFailure).where(SignInFailure.key_hash.in_(_hashed(keys))))


def sweep(session: Session, now: datetime) -> None:
    """Delete the failures older than LONGEST_WINDOW, which no lockout counts; rows another transaction is
    deleting are left to it rather than waited for."""
    aged = (select(SignInFailure.id).where(SignInFailure.at <= now - LONGEST_WINDOW)
            .with_for_update(skip_locked=True).scalar_subquery())
    session.execute(delete(SignInFailure).where(SignInFailure.id.in_(aged)))
