"""One-time links: tokens, expiry, single use under concurrency, voiding, rate limits, mails and no enumeration."""

import base64
import hashlib
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.delivery.inbox import Inbox
from bot.delivery.mailing import Mailing
from core.db import Base
from core.enums import Language, LinkPurpose
from core.errors import LinkInvalid, RateLimited, WeakSecondPassword
from core.i18n import core_messages
from core.jobs import MAIL
from core.links import (
    InvalidEmailAddress,
    LinkState,
    PasswordMismatch,
    confirm_email,
    error_text,
    hash_token,
    inspect_link,
    request_email_change,
    request_email_registration,
    request_second_password_reset,
    reset_second_password,
)
from core.models import InboundEvent, OneTimeLink, Student
from core.passwords import verify_password
from core.students import create_student

GOOD = "Madoguchi2026"
TOKEN_IN_URL = re.compile(r"https?://\S+/links/([A-Za-z0-9_-]+)\?lang=(ja|en)")


def add_student(core, number="24M1001", email="taro.yamada@example.ac.jp", *, verified=True,
                lang=Language.JA) -> Student:
    with core.transaction() as session:
        student = create_student(session, student_number=number, department="medicine", year=3,
                                 now=core.now(), email=email, language=lang)
        if not verified:
            student.email_verified_at = None
    return student


def drain(core) -> int:
    """Run the queued mail jobs through the inbox worker, as the web app's does; the number handled."""
    return Inbox(core, {MAIL: Mailing(core)}).drain()


def reset(core, number, lang):
    """A reset request, and the worker sending what it queued; the request's outcome."""
    outcome = request_second_password_reset(core, number, lang)
    drain(core)
    return outcome


def mailed_token(inbox, index=-1) -> str:
    match = TOKEN_IN_URL.search(inbox.body(inbox.messages[index]))
    assert match, "no link in the mail"
    return match.group(1)


def load_student(core, number="24M1001") -> Student:
    with core.transaction() as session:
        return session.scalars(select(Student).where(Student.student_number == number)).one()


def links_of(core) -> list[OneTimeLink]:
    with core.transaction() as session:
        return list(session.scalars(select(OneTimeLink).order_by(OneTimeLink.id)))


# --- tokens and storage -------------------------------------------------------------------------------


def test_token_has_at_least_128_bits_and_only_its_hash_is_stored(core, inbox):
    add_student(core)
    reset(core, "24M1001", "ja")
    token = mailed_token(inbox)

    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(raw) * 8 >= 128
    assert len(token) >= 43
    [link] = links_of(core)
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)
    with core.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                assert token not in repr(tuple(row)), f"raw token found in {table.name}"


def test_tokens_differ_between_requests(core, inbox, clock):
    for number in ("24M1001", "24M1002", "24M1003"):
        add_student(core, number, f"{number.lower()}@example.ac.jp")
        reset(core, number, "ja")
    tokens = {mailed_token(inbox, i) for i in range(3)}
    assert len(tokens) == 3


def test_link_url_is_built_from_the_configured_base_url(make_core, inbox):
    core = make_core(base_url="https://madoguchi.example.ac.jp")
    add_student(core)
    reset(core, "24M1001", "en")
    body = inbox.body(inbox.only())
    token = mailed_token(inbox)
    assert f"https://madoguchi.example.ac.jp/links/{token}?lang=en" in body


# --- mail content -------------------------------------------------------------------------------------


def test_reset_mail_in_japanese_has_link_expiry_and_guide_lines(core, inbox):
    add_student(core)
    reset(core, "24M1001", Language.JA)
    message = inbox.only()
    body = inbox.body(message)
    assert message["To"] == "taro.yamada@example.ac.jp"
    assert "第2パスワード" in message["Subject"]
    assert "ワンタイムURL" in body
    assert "30分以内" in body
    assert "11月24日（火）10:30まで" in body  # requested at 10:00 Japan time
    assert "お心当たりのない方" in body
    assert "送信専用" in body


def test_reset_mail_in_english(core, inbox):
    add_student(core)
    reset(core, "24M1001", Language.EN)
    message = inbox.only()
    body = inbox.body(message)
    assert "second password" in message["Subject"].lower()
    assert "within 30 minutes" in body
    assert "Tue, Nov 24, 10:30 (Japan time)" in body
    assert "did not request this" in body
    assert "send-only address" in body


# --- expiry and single use ----------------------------------------------------------------------------


def test_link_is_valid_until_just_before_30_minutes(core, inbox, clock):
    add_student(core)
    reset(core, "24M1001", "ja")
    token = mailed_token(inbox)
    clock.advance(minutes=29, seconds=59)
    assert inspect_link(core, token).state is LinkState.VALID
    reset_second_password(core, token, GOOD, GOOD)
    assert verify_password(load_student(core).second_password_hash, GOOD)


def test_link_expires_at_exactly_30_minutes(core, inbox, clock):
    add_student(core)
    reset(core, "24M1001", "ja")
    token = mailed_token(inbox)
    clock.advance(minutes=30)
    assert inspect_link(core, token).state is LinkState.EXPIRED
    with pytest.raises(LinkInvalid) as raised:
        reset_second_password(core, token, GOOD, GOOD)
    assert raised.value.reason == "expired"
    assert load_student(core).second_password_hash is None


def test_link_works_only_once(core, inbox):
    add_student(core)
    reset(core, "24M1001", "ja")
    token = mailed_token(inbox)
    reset_second_password(core, token, GOOD, GOOD)
    assert inspect_link(core, token).state is LinkState.USED
    with pytest.raises(LinkInvalid) as raised:
        reset_second_password(core, token, "Another2026x", "Another2026x")
    assert raised.value.reason == "used"
    assert verify_password(load_student(core).second_password_hash, GOOD)


def test_unknown_token_is_unknown(core):
    assert inspect_link(core, "x" * 43).state is LinkState.UNKNOWN
    assert inspect_link(core, "../../etc").state is LinkState.UNKNOWN
    with pytest.raises(LinkInvalid) as raised:
        reset_second_password(core, "x" * 43, GOOD, GOOD)
    assert raised.value.reason == "unknown"
    with pytest.raises(LinkInvalid):
        confirm_email(core, "x" * 43)


def test_a_link_only_does_its_own_purpose(core, inbox):
    student = add_student(core)
    reset(core, "24M1001", "ja")
    reset_token = mailed_token(inbox)
    with pytest.raises(LinkInvalid):
        confirm_email(core, reset_token)
    request_email_change(core, student, "new@example.ac.jp", "ja")
    change_token = mailed_token(inbox)
    with pytest.raises(LinkInvalid):
        reset_second_password(core, change_token, GOOD, GOOD)


def _race(target, *tokens_and_args):
    """Run `target(*args)` in two threads released together; return (results, errors)."""
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        barrier.wait()
        try:
            results.append(target(*tokens_and_args))
        except Exception as exc:  # collected for the assertions
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


def test_two_concurrent_resets_with_one_link_exactly_one_succeeds(core, inbox):
    add_student(core)
    reset(core, "24M1001", "ja")
    token = mailed_token(inbox)

    results, errors = _race(reset_second_password, core, token, GOOD, GOOD)

    assert len(results) == 1 and len(errors) == 1, errors
    assert isinstance(errors[0], LinkInvalid) and errors[0].reason == "used"
    [link] = links_of(core)
    assert link.used_at is not None


def test_two_concurrent_email_confirmations_confirm_once(core, inbox):
    student = add_student(core, email=None)
    request_email_registration(core, student, "taro@example.ac.jp", "ja")
    token = mailed_token(inbox)

    results, errors = _race(confirm_email, core, token)

    assert errors == []
    assert sorted(result.already_confirmed for result in results) == [False, True]


def test_two_concurrent_requests_pass_the_rate_limit_once(core, inbox):
    student = add_student(core, email=None)

    results, errors = _race(request_email_registration, core, student, "taro@example.ac.jp", "ja")

    assert len(results) == 1 and len(errors) == 1, errors
    assert isinstance(errors[0], RateLimited)
    assert len(inbox.messages) == 1
    assert len(links_of(core)) == 1


# --- voiding and rate limits --------------------------------------------------------------------------


def test_a_new_request_voids_the_older_link_of_the_same_purpose(core, inbox, clock):
    student = add_student(core)
    request_email_change(core, student, "new@example.ac.jp", "ja")
    change_token = mailed_token(inbox)
    reset(core, "24M1001", "ja")
    first = mailed_token(inbox)
    clock.advance(minutes=1)
    reset(core, "24M1001", "ja")
    second = mailed_token(inbox)

    assert inspect_link(core, first).state is LinkState.SUPERSEDED
    with pytest.raises(LinkInvalid) as raised:
        reset_second_password(core, first, GOOD, GOOD)
    assert raised.value.reason == "superseded"
    assert inspect_link(core, change_token).state is LinkState.VALID  # another purpose is left alone
    reset_second_password(core, second, GOOD, GOOD)


def test_one_request_per_minute(core, inbox, clock):
    student = add_student(core, email=None)
    request_email_registration(core, student, "taro@example.ac.jp", "ja")
    clock.advance(seconds=59)
    with pytest.raises(RateLimited) as raised:
        request_email_registration(core, student, "taro@example.ac.jp", "ja")
    assert raised.value.retry_after == clock.now() + timedelta(seconds=1)
    assert len(inbox.messages) == 1
    clock.advance(seconds=1)
    request_email_registration(core, student, "taro@example.ac.jp", "ja")
    assert len(inbox.messages) == 2


def test_three_requests_per_hour(core, inbox, clock):
    student = add_student(core, email=None)
    start = clock.now()
    for _ in range(3):
        request_email_registration(core, student, "taro@example.ac.jp", "ja")
        clock.advance(minutes=10)
    with pytest.raises(RateLimited) as raised:
        request_email_registration(core, student, "taro@example.ac.jp", "ja")
    assert raised.value.retry_after == start + timedelta(hours=1)
    clock.set(start + timedelta(minutes=59, seconds=59))
    with pytest.raises(RateLimited):
        request_email_registration(core, student, "taro@example.ac.jp", "ja")
    clock.set(start + timedelta(hours=1))
    request_email_registration(core, student, "taro@example.ac.jp", "ja")
    assert len(inbox.messages) == 4


def test_rate_limited_reset_sends_nothing_and_answers_the_same(core, inbox, clock):
    add_student(core)
    first = reset(core, "24M1001", "ja")
    clock.advance(seconds=30)
    second = reset(core, "24M1001", "ja")
    assert first == second
    assert len(inbox.messages) == 1
    assert len(links_of(core)) == 1


def test_rate_limited_text_names_the_time(core):
    error = RateLimited(retry_after=core.now() + timedelta(minutes=1))
    assert "10:01" in error_text(error, "ja")
    assert "10:01" in error_text(error, "en")


# --- no account enumeration ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_reset_answers_the_same_for_every_student_and_mails_only_the_registered_address(core, inbox, lang):
    add_student(core, "24M1001", "taro.yamada@example.ac.jp")
    add_student(core, "24M1002", None)
    add_student(core, "24M1003", "unverified@example.ac.jp", verified=False)

    registered = reset(core, "２４ｍ１００１", lang)  # full-width, as typed on phones
    assert [m["To"] for m in inbox.messages] == ["taro.yamada@example.ac.jp"]

    unknown = reset(core, "99Z9999", lang)
    no_email = reset(core, "24M1002", lang)
    unverified = reset(core, "24M1003", lang)
    garbage = reset(core, "taro.yamada@example.ac.jp", lang)

    assert registered == unknown == no_email == unverified == garbage
    assert registered.text == unknown.text
    assert len(inbox.messages) == 1, "only the student with a registered address gets mail"


def test_reset_text_follows_the_guide(core):
    text = reset(core, "99Z9999", "ja").text
    assert "30分以内" in text
    assert "許可リスト" in text and "no-reply@madoguchi.invalid" in text
    assert "082-207-4262" in text


def test_reset_answers_the_same_when_the_mail_cannot_be_sent_and_the_retry_mails_once(core, inbox, clock):
    add_student(core)
    expected = reset(core, "99Z9999", "ja")

    class Broken:
        def send(self, message):
            raise ConnectionRefusedError("smtp down")

    working, core.mailer = core.mailer, Broken()
    assert reset(core, "24M1001", "ja") == expected
    assert links_of(core) == [], "a link that was never mailed is not kept"
    [job] = [job for job in mail_jobs(core) if job.status != "done"]  # the unknown number's is done
    assert (job.status, job.attempts, job.sent_parts) == ("pending", 1, 0)

    core.mailer = working  # the mail server is back: the retry mails one link
    clock.advance(seconds=2)
    assert drain(core) == 1 and drain(core) == 0
    assert len(inbox.messages) == 1 and len(links_of(core)) == 1
    assert inspect_link(core, mailed_token(inbox)).state is LinkState.VALID


def mail_jobs(core) -> list[InboundEvent]:
    with core.transaction() as session:
        return list(session.scalars(select(InboundEvent).where(InboundEvent.channel == MAIL)))


# --- email registration and change --------------------------------------------------------------------


def test_email_registration_mails_the_new_address_and_confirms(core, inbox, clock):
    student = add_student(core, email=None)
    sent = request_email_registration(core, student, "  taro@example.ac.jp ", "ja")
    assert sent.email == "taro@example.ac.jp"
    assert sent.expires_at == clock.now() + timedelta(minutes=30)
    assert "taro@example.ac.jp" in sent.text and "半角英数文字" in sent.text and "迷惑メールフィルタ" in sent.text
    message = inbox.only()
    assert message["To"] == "taro@example.ac.jp"
    assert "メールアドレス" in message["Subject"]
    token = mailed_token(inbox)
    assert inspect_link(core, token).purpose is LinkPurpose.EMAIL_REGISTRATION
    assert load_student(core).email is None, "nothing changes before the link is opened"

    clock.advance(minutes=5)
    result = confirm_email(core, token)

    assert result.email == "taro@example.ac.jp" and not result.already_confirmed
    student = load_student(core)
    assert student.email == "taro@example.ac.jp"
    assert student.email_verified_at == clock.now()
    assert confirm_email(core, token).already_confirmed  # a mail scanner opened it first


def test_email_change_goes_to_the_new_address_and_keeps_the_old_until_confirmed(core, inbox):
    student = add_student(core, email="old@example.ac.jp")
    sent = request_email_change(core, student, "new@example.ac.jp", "en")
    assert "within 30 minutes" in sent.text and "allow list" in sent.text
    assert inbox.only()["To"] == "new@example.ac.jp"
    assert load_student(core).email == "old@example.ac.jp"
    confirm_email(core, mailed_token(inbox))
    assert load_student(core).email == "new@example.ac.jp"


def test_email_change_voids_a_reset_link_mailed_to_the_old_address(core, inbox, clock):
    student = add_student(core, email="old@example.ac.jp")
    reset(core, "24M1001", "ja")
    reset_token = mailed_token(inbox)
    request_email_change(core, student, "new@example.ac.jp", "ja")
    confirm_email(core, mailed_token(inbox))
    assert inspect_link(core, reset_token).state is LinkState.SUPERSEDED


def test_a_used_email_link_is_used_once_the_address_changed_again(core, inbox, clock):
    student = add_student(core, email="old@example.ac.jp")
    request_email_change(core, student, "first@example.ac.jp", "ja")
    first = mailed_token(inbox)
    confirm_email(core, first)
    clock.advance(minutes=2)
    request_email_change(core, student, "second@example.ac.jp", "ja")
    confirm_email(core, mailed_token(inbox))
    with pytest.raises(LinkInvalid) as raised:
        confirm_email(core, first)
    assert raised.value.reason == "used"


def test_expired_email_link_does_not_confirm(core, inbox, clock):
    student = add_student(core, email=None)
    request_email_registration(core, student, "taro@example.ac.jp", "ja")
    clock.advance(minutes=30)
    with pytest.raises(LinkInvalid) as raised:
        confirm_email(core, mailed_token(inbox))
    assert raised.value.reason == "expired"
    assert load_student(core).email is None


@pytest.mark.parametrize(("typed", "reason"), [
    ("ｔａｒｏ＠example.ac.jp", "full_width"),
    ("taro @example.ac.jp", "spaces"),
    ("taro.example.ac.jp", "format"),
    ("taro@localhost", "format"),
    ("taro..y@example.ac.jp", "format"),
    ("taro@example.ac.jp\r\nBcc: x@example.com", "spaces"),
])
def test_bad_addresses_are_refused_with_the_checklist_reason(core, inbox, typed, reason):
    student = add_student(core, email=None)
    with pytest.raises(InvalidEmailAddress) as raised:
        request_email_registration(core, student, typed, "ja")
    assert raised.value.reason == reason
    assert error_text(raised.value, "ja")
    assert inbox.messages == [] and links_of(core) == []


def test_changing_to_the_registered_address_is_refused(core, inbox):
    student = add_student(core, email="taro@example.ac.jp")
    with pytest.raises(InvalidEmailAddress) as raised:
        request_email_change(core, student, "Taro@Example.ac.jp", "ja")
    assert raised.value.reason == "same_as_current"
    assert inbox.messages == []


# --- second-password reset ----------------------------------------------------------------------------


def test_a_weak_password_does_not_consume_the_link(core, inbox):
    add_student(core)
    reset(core, "24M1001", "ja")
    token = mailed_token(inbox)

    with pytest.raises(WeakSecondPassword) as raised:
        reset_second_password(core, token, "abc", "abc")
    assert raised.value.violations == ("too_short", "no_upper", "no_digit")
    with pytest.raises(WeakSecondPassword) as raised:
        reset_second_password(core, token, "Pass24M1001", "Pass24M1001")
    assert "contains_student_number" in raised.value.violations
    with pytest.raises(PasswordMismatch) as mismatch:
        reset_second_password(core, token, GOOD, GOOD + "x")
    assert mismatch.value.violations == ()
    with pytest.raises(PasswordMismatch) as mismatch:
        reset_second_password(core, token, "abc", "abd")
    assert "too_short" in mismatch.value.violations

    assert inspect_link(core, token).state is LinkState.VALID
    assert load_student(core).second_password_hash is None
    reset_second_password(core, token, GOOD, GOOD)
    stored = load_student(core).second_password_hash
    assert stored and GOOD not in stored and verify_password(stored, GOOD)


# --- messages -----------------------------------------------------------------------------------------


def test_every_links_and_mail_key_exists_in_both_languages_with_the_same_placeholders():
    catalog = core_messages()
    ours = ("links.", "mail.")
    ja = {key for key in catalog.keys(Language.JA) if key.startswith(ours)}
    en = {key for key in catalog.keys(Language.EN) if key.startswith(ours)}
    assert ja == en
    assert len(ja) > 40
    for key in sorted(ja):
        assert catalog.placeholders(key, Language.JA) == catalog.placeholders(key, Language.EN), key
