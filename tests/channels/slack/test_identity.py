"""Slack users known as students by their Slack profile's email, end to end: a signed event in, users.info
on the fake Slack Web API (validated against the spec), the link in channel_accounts, and what the order and
order-status answers then ask. The 24-hour re-check is driven by the test clock; nothing sleeps."""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.channels.slack_identity import LookupFailed, email_to_match
from core.enums import Language
from core.models import ChannelAccount, Conversation, Student
from core.students import create_student, load_demo_students
from handlers.messages import say
from tests.channels.slack import payloads
from tests.channels.slack.payloads import OTHER_DM, OTHER_STUDENT, STUDENT, TEAM
from tests.channels.slack.shown import texts

TARO = "24M1001"
TARO_EMAIL = "taro.yamada@students.example.ac.jp"  # 24M1001's verified email in the demo data
IDENTIFY_ON_SLACK = say("order.identify_slack", Language.JA)
ASK_ORDER_NUMBER = say("status.ask_number", Language.JA)
NO_ORDERS_YET = say("status.recent_none", Language.JA)


@pytest.fixture
def students(slack_server) -> dict[str, int]:
    """The demo students, by student number → id."""
    with slack_server.core.transaction() as session:
        load_demo_students(session, slack_server.core.profile, slack_server.core.now())
        return {student.student_number: student.id for student in session.scalars(select(Student))}


def ask(slack_server, text: str, *, user: str = STUDENT, channel: str = payloads.DM) -> str:
    """Send a direct message and return everything the answer shows."""
    assert slack_server.send_event(payloads.im_message(text, user=user, channel=channel)).status_code == 200
    posts = slack_server.deliver()
    assert posts, f"no answer to {text!r}"
    return "\n".join(texts(post) for post in posts)


def account(slack_server, user: str = STUDENT) -> ChannelAccount | None:
    """The user's channel_accounts row, detached."""
    with slack_server.core.transaction() as session:
        row = session.scalars(select(ChannelAccount).where(ChannelAccount.channel == "slack",
                                                           ChannelAccount.external_id == user)).one_or_none()
        session.expunge_all()
        return row


def lookups(slack_server, user: str = STUDENT) -> int:
    """How many times the bot asked Slack for the user's profile."""
    return sum(call.params.get("user") == user for call in slack_server.fake.attempts("users.info"))


def test_a_profile_email_equal_to_a_verified_email_links_the_student(slack_server, students, caplog):
    caplog.set_level(logging.INFO, logger="bot.channels.slack_identity")
    slack_server.fake.set_profile(STUDENT, "Taro.Yamada@Students.Example.ac.jp")  # case differs from ours
    asked_at = slack_server.clock.now()

    answer = ask(slack_server, "成績証明書を申請したい")

    row = account(slack_server)
    assert row is not None and row.student_id == students[TARO]
    assert row.linked_at == row.updated_at == asked_at
    # The order form goes on to the certificate without asking who the student is.
    assert "何通" in answer and IDENTIFY_ON_SLACK not in answer and "学籍番号" not in answer
    [call] = slack_server.fake.attempts("users.info")
    assert call.ok and call.params == {"user": STUDENT}
    logged = caplog.text
    assert "T***@Students.Example.ac.jp" in logged and "Taro.Yamada" not in logged and STUDENT not in logged


def test_a_linked_student_is_shown_their_own_orders_without_giving_a_number(slack_server, students):
    slack_server.fake.set_profile(STUDENT, TARO_EMAIL)
    assert NO_ORDERS_YET in ask(slack_server, "注文の状況を教えて")


def test_an_unlinked_user_is_asked_for_an_order_number_instead(slack_server, students):
    answer = ask(slack_server, "注文の状況を教えて")  # the fake's default profile email is no student's
    assert ASK_ORDER_NUMBER in answer and NO_ORDERS_YET not in answer
    row = account(slack_server)
    assert row is not None and row.student_id is None and row.linked_at is None


@pytest.mark.parametrize("email", ["nobody@students.example.ac.jp", "shared@students.example.ac.jp",
                                   "unverified@students.example.ac.jp", "taro.yamada@students.example.ac.jp.evil",
                                   "ｔａｒｏ.yamada@students.example.ac.jp"],
                         ids=["no-student", "shared-by-two", "unverified", "longer-domain", "full-width"])
def test_an_email_that_is_not_exactly_one_students_verified_email_links_no_one(slack_server, students, email):
    now = slack_server.core.now()
    with slack_server.core.transaction() as session:
        for number in ("26M0001", "26M0002"):  # two students registered with one address
            create_student(session, student_number=number, department="medicine", year=1, now=now,
                           email="shared@students.example.ac.jp")
        unverified = create_student(session, student_number="26M0003", department="medicine", year=1, now=now,
                                    email="unverified@students.example.ac.jp")
        unverified.email_verified_at = None  # registered, but not (or no longer) verified
    slack_server.fake.set_profile(STUDENT, email)

    answer = ask(slack_server, "成績証明書を申請したい")

    row = account(slack_server)
    assert row is not None and row.student_id is None
    assert IDENTIFY_ON_SLACK in answer


@pytest.mark.parametrize("failure", ["ratelimited", "server-error", "user-not-found", "no-email-scope"])
def test_a_failed_lookup_keeps_the_link_and_the_answer_still_comes(slack_server, students, caplog, failure):
    fake, clock = slack_server.fake, slack_server.clock
    fake.set_profile(STUDENT, TARO_EMAIL)
    ask(slack_server, "こんにちは")
    linked = account(slack_server)
    assert linked is not None and linked.student_id == students[TARO]

    clock.advance(hours=25)  # the link is due for its daily check
    if failure == "ratelimited":
        fake.fail_next(1, status=429, retry_after=30, method="users.info")
    elif failure == "server-error":
        fake.fail_next(1, status=500, method="users.info")
    elif failure == "user-not-found":
        fake.fail_next(1, status=200, error="user_not_found", method="users.info")
    else:
        fake.set_profile(STUDENT, None)  # Slack leaves the email out when users:read.email is missing
    caplog.set_level(logging.WARNING, logger="bot.channels.slack_identity")

    answer = ask(slack_server, "注文の状況を教えて")

    assert NO_ORDERS_YET in answer  # still known as 24M1001
    assert _same_row(account(slack_server), linked)
    [warning] = [record for record in caplog.records if record.name == "bot.channels.slack_identity"]
    assert "U0ST…" in warning.getMessage() and STUDENT not in warning.getMessage()
    assert "@" not in warning.getMessage()
    # A failure is not remembered as a check: the next message asks Slack again.
    fake.set_profile(STUDENT, TARO_EMAIL)
    asked_at = clock.now()
    ask(slack_server, "こんにちは")
    assert lookups(slack_server) == 3 and account(slack_server).updated_at == asked_at


def _same_row(row: ChannelAccount | None, before: ChannelAccount) -> bool:
    """The row still says what it said before (same student, same timestamps)."""
    return row is not None and (row.student_id, row.linked_at, row.updated_at) == (
        before.student_id, before.linked_at, before.updated_at)


def test_the_profile_is_read_at_most_once_a_day_and_a_changed_email_unlinks(slack_server, students, caplog):
    fake, clock = slack_server.fake, slack_server.clock
    fake.set_profile(STUDENT, TARO_EMAIL)
    assert NO_ORDERS_YET in ask(slack_server, "注文の状況を教えて")
    linked_at = clock.now()

    clock.advance(hours=23, minutes=59)
    fake.set_profile(STUDENT, "taro.new@example.com")  # the student changed the email in Slack
    assert NO_ORDERS_YET in ask(slack_server, "注文の状況を教えて")
    assert lookups(slack_server) == 1  # within the day: no second users.info

    asked_at = clock.advance(minutes=1)
    caplog.set_level(logging.INFO, logger="bot.channels.slack_identity")
    answer = ask(slack_server, "注文の状況を教えて")

    assert lookups(slack_server) == 2
    assert ASK_ORDER_NUMBER in answer and NO_ORDERS_YET not in answer
    row = account(slack_server)
    assert row is not None and row.student_id is None and row.linked_at is None
    assert row.updated_at == asked_at and row.created_at == linked_at
    assert "unlinked" in caplog.text and "taro.new" not in caplog.text and "t***@example.com" in caplog.text


def test_an_unlink_reaches_a_conversation_that_is_still_open(slack_server, students):
    fake, core = slack_server.fake, slack_server.core
    fake.set_profile(STUDENT, TARO_EMAIL)
    assert "何通" in ask(slack_server, "成績証明書を申請したい")
    # The order form is open when the daily check comes due and finds the email changed.
    with core.transaction() as session:
        session.execute(update(ChannelAccount).where(ChannelAccount.external_id == STUDENT)
                        .values(updated_at=core.now() - timedelta(hours=25)))
    fake.set_profile(STUDENT, "taro.new@example.com")

    answer = ask(slack_server, "2通")

    assert IDENTIFY_ON_SLACK in answer
    with core.transaction() as session:
        conversation = session.get(Conversation, f"slack:{TEAM}:{STUDENT}")
        assert conversation is not None and conversation.student_id is None


def test_each_slack_user_is_linked_on_their_own(slack_server, students):
    slack_server.fake.set_profile(STUDENT, TARO_EMAIL)
    slack_server.fake.set_profile(OTHER_STUDENT, "emily.tanaka@students.example.ac.jp")

    ask(slack_server, "こんにちは")
    ask(slack_server, "hello", user=OTHER_STUDENT, channel=OTHER_DM)

    assert account(slack_server).student_id == students[TARO]
    assert account(slack_server, OTHER_STUDENT).student_id == students["22N2002"]


def test_a_link_made_today_is_kept_for_a_new_conversation(slack_server, students):
    slack_server.fake.set_profile(STUDENT, TARO_EMAIL)
    ask(slack_server, "こんにちは")
    slack_server.clock.advance(hours=2)  # the conversation has expired; the link has not

    assert NO_ORDERS_YET in ask(slack_server, "注文の状況を教えて")
    assert lookups(slack_server) == 1


def test_the_help_command_reads_no_profile(slack_server):
    assert slack_server.send_form(payloads.slash_command("help")).status_code == 200
    assert slack_server.deliver()
    assert slack_server.fake.attempts("users.info") == [] and account(slack_server) is None


@pytest.mark.parametrize(("user", "expected"), [
    ({"is_bot": True, "profile": {"email": "bot@example.com"}}, None),
    ({"deleted": True, "profile": {"email": TARO_EMAIL}}, None),
    ({"is_email_confirmed": False, "profile": {"email": TARO_EMAIL}}, None),
    ({"is_email_confirmed": True, "profile": {"email": TARO_EMAIL}}, TARO_EMAIL),
    ({"profile": {"email": TARO_EMAIL}}, TARO_EMAIL),
], ids=["bot", "deactivated", "unconfirmed", "confirmed", "plain"])
def test_only_a_person_with_a_confirmed_address_can_be_a_student(user, expected):
    assert email_to_match(user) == expected


@pytest.mark.parametrize("profile", [{}, {"email": ""}, {"email": None}], ids=["absent", "empty", "null"])
def test_a_profile_without_email_is_a_failed_lookup_not_an_answer(profile):
    with pytest.raises(LookupFailed, match=r"users:read\.email"):
        email_to_match({"profile": profile})

