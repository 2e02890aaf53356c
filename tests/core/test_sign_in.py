"""Signing in to the web chat (SQLite and PostgreSQL): the mailed one-time link (only to a registered address,
stored hashed, single use, expiring, rate-limited), the session it starts (idle and absolute end, sign-out), and
the chat's answer to a student number: the same for every number, with the work done after it."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.delivery.inbox import Inbox
from bot.delivery.mailing import Mailing
from core.enums import Language, LinkPurpose
from core.errors import LinkInvalid
from core.jobs import MAIL
from core.links import hash_token, request_second_password_reset, request_web_sign_in, sign_in_with_link
from core.models import OneTimeLink, WebSession
from core.students import create_student
from core.web_sessions import ABSOLUTE, IDLE, end_session, signed_in

NUMBER, EMAIL = "24M1001", "taro.yamada@students.example.ac.jp"


@pytest.fixture
def student(core):
    with core.transaction() as session:
        return create_student(session, student_number=NUMBER, department="medicine", year=3, now=core.now(),
                              email=EMAIL).id


def token_of(inbox) -> str:
    body = inbox.body(inbox.messages[-1])
    return body.split("/links/")[1].split("?")[0]


def mail_sign_in(core, number, lang) -> None:
    """A sign-in link asked for, and the worker sending what that queued."""
    request_web_sign_in(core, number, lang)
    Inbox(core, {MAIL: Mailing(core)}).drain()


def mail_reset(core, number, lang) -> None:
    request_second_password_reset(core, number, lang)
    Inbox(core, {MAIL: Mailing(core)}).drain()


def links(core) -> list[OneTimeLink]:
    with core.transaction() as session:
        found = list(session.scalars(select(OneTimeLink)))
        session.expunge_all()
        return found


def test_a_sign_in_link_goes_only_to_the_registered_address_stored_hashed(core, inbox, student):
    mail_sign_in(core, "２４ｍ１００１", Language.JA)  # typed any way
    [mail] = inbox.messages
    assert mail["To"] == EMAIL and "チャットへのサインイン" in mail["Subject"]
    token = token_of(inbox)
    [link] = links(core)
    assert link.purpose is LinkPurpose.WEB_SIGN_IN and link.token_hash == hash_token(token)
    assert token not in str(vars(link)) and link.expires_at - link.created_at == timedelta(minutes=30)


@pytest.mark.parametrize("number", ["99Z9999", "25M1002"])
def test_no_mail_for_an_unknown_number_or_one_without_a_registered_address(core, inbox, number):
    with core.transaction() as session:
        create_student(session, student_number="25M1002", department="medicine", year=1, now=core.now())
    mail_sign_in(core, number, Language.JA)
    assert inbox.messages == [] and links(core) == []


def test_sign_in_requests_are_rate_limited_per_student_and_kept_apart_from_resets(core, inbox, clock, student):
    mail_sign_in(core, NUMBER, Language.JA)
    mail_sign_in(core, NUMBER, Language.JA)  # within the minute: nothing more
    assert len(inbox.messages) == 1
    mail_reset(core, NUMBER, Language.JA)  # another purpose has its own limits
    assert len(inbox.messages) == 2
    for _ in range(3):
        clock.advance(minutes=2)
        mail_sign_in(core, NUMBER, Language.JA)
    assert len([link for link in links(core) if link.purpose is LinkPurpose.WEB_SIGN_IN]) == 3  # 3 an hour


def test_a_link_signs_in_once_and_the_session_lasts_until_idle_or_its_end(core, inbox, clock, student):
    mail_sign_in(core, NUMBER, Language.EN)
    token = token_of(inbox)
    cookie, who = sign_in_with_link(core, token)
    assert who.student_id == student and who.student_number == NUMBER
    with pytest.raises(LinkInvalid) as again:
        sign_in_with_link(core, token)
    assert again.value.reason == "used"
    with core.transaction() as session:
        assert signed_in(session, cookie, core.now()).student_id == student
        row = session.scalars(select(WebSession)).one()
        assert row.token_hash != cookie and len(cookie) >= 43  # 256 bits, only the hash stored
    clock.advance(minutes=50)
    with core.transaction() as session:
        assert signed_in(session, cookie, core.now()) is not None  # used: the idle clock starts again
    clock.advance(minutes=IDLE // timedelta(minutes=1) + 1)
    with core.transaction() as session:
        assert signed_in(session, cookie, core.now()) is None, "idle too long"


def test_a_session_ends_at_its_absolute_end_and_on_sign_out(core, inbox, clock, student):
    mail_sign_in(core, NUMBER, Language.JA)
    cookie, _ = sign_in_with_link(core, token_of(inbox))
    end = clock.now() + ABSOLUTE
    while clock.now() + timedelta(minutes=50) < end:  # a message every 50 minutes keeps it alive...
        clock.advance(minutes=50)
        with core.transaction() as session:
            assert signed_in(session, cookie, core.now()) is not None
    clock.advance(minutes=50)
    with core.transaction() as session:  # ...until its absolute end, however active
        assert signed_in(session, cookie, core.now()) is None

    clock.advance(minutes=2)
    mail_sign_in(core, NUMBER, Language.JA)
    cookie, _ = sign_in_with_link(core, token_of(inbox))
    with core.transaction() as session:
        assert end_session(session, cookie, core.now()) is True
        assert signed_in(session, cookie, core.now()) is None
        assert end_session(session, cookie, core.now()) is False
        assert signed_in(session, "not-a-token", core.now()) is None and signed_in(session, None, core.now()) is None


def test_an_expired_link_a_reset_link_and_an_unknown_token_sign_no_one_in(core, inbox, clock, student):
    mail_sign_in(core, NUMBER, Language.JA)
    expired = token_of(inbox)
    clock.advance(minutes=31)
    with pytest.raises(LinkInvalid) as refused:
        sign_in_with_link(core, expired)
    assert refused.value.reason == "expired"
    mail_reset(core, NUMBER, Language.JA)
    reset = token_of(inbox)
    for token in (reset, "x" * 43, "../../etc"):
        with pytest.raises(LinkInvalid):
            sign_in_with_link(core, token)
    with core.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebSession)) == 0
