"""Passwords: the second-password rules (the guide's five, plus a length cap, no student number and no common
password) and argon2id hashing for second and staff passwords."""

import re
import secrets
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

COMMON_PASSWORDS = Path(__file__).parent / "data" / "common_passwords.txt"
MIN_LENGTH = 8  # the guide: 8文字以上
MAX_LENGTH = 64  # ours: bounds hashing cost and pasted garbage

# Rule codes, in the order check_second_password reports them.
RULES = ("too_short", "too_long", "no_upper", "no_lower", "no_digit", "invalid_char",
         "contains_student_number", "too_common")

_HALF_WIDTH_ALNUM = re.compile(r"[A-Za-z0-9]*")


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased, read once."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def check_second_password(password: str, student_number: str | None = None) -> list[str]:
    """The rules a proposed second password breaks, as codes in RULES order; empty when it is valid.

    Only half-width ASCII counts: a full-width Ａ or ０ is neither an upper-case letter nor a digit here,
    it is an `invalid_char`, exactly as the service rejects it.
    """
    violations: list[str] = []
    if len(password) < MIN_LENGTH:
        violations.append("too_short")
    if len(password) > MAX_LENGTH:
        violations.append("too_long")
    if not re.search(r"[A-Z]", password):
        violations.append("no_upper")
    if not re.search(r"[a-z]", password):
        violations.append("no_lower")
    if not re.search(r"[0-9]", password):
        violations.append("no_digit")
    if not _HALF_WIDTH_ALNUM.fullmatch(password):
        violations.append("invalid_char")
    if student_number and student_number.strip() and student_number.strip().lower() in password.lower():
        violations.append("contains_student_number")
    if password.lower() in common_passwords():
        violations.append("too_common")
    return violations


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    """An argon2id hash of a password (a student's second password, a staff password); never the password."""
    return _hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if `password` matches `stored_hash`; False for no hash, a wrong password or a broken hash."""
    if not stored_hash:
        return False
    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (hash the password again at sign-in)."""
    return _hasher().check_needs_rehash(stored_hash)


@cache
def decoy_hash() -> str:
    """A hash of a random value, verified against when the account is unknown, so that an unknown account
    costs as much time as a wrong password and the two refusals cannot be told apart."""
    return hash_password(secrets.token_urlsafe(16))
