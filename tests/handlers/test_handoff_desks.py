"""What a student who asks for a person reads, for each state of the desk, called directly: a person is promised
only when one can answer now (with the queue position and, given enough history, the expected wait); otherwise
the call center's phone and the menu. The satisfaction button's answer is kept."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from core import staff
from core.clock import TOKYO
from core.enums import Language
from core.handoffs import ClosedHow, Reason, close, open_ticket, take
from core.models import HandoffTicket
from handlers import handoff
from handlers.payloads import Rating
from intents.types import Intent
from tests.handlers.conftest import all_text, payloads

TUESDAY_MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
FRIDAY_EVENING = datetime(2026, 11, 20, 17, 30, tzinfo=TOKYO)  # closed, and Monday the 23rd is a holiday
CALL_CENTER_PHONE = "082-207-4262"
PASSWORD = "correct horse battery"

# What promises a person now: the connecting texts and the queue line.
PROMISES = {Language.JA: ("おつなぎします", "おつなぎしています", "順番待ち"),
            Language.EN: ("I'm connecting you", "in the queue")}
CONNECTING = {Language.JA: "担当者におつなぎします", Language.EN: "I'm connecting you to a staff member"}
# The state's own sentence, in each language.
SAYS = {
    "none": {Language.JA: "このチャットでは、担当者におつなぎすることができません",
             Language.EN: "I cannot connect you to a staff member in this chat"},
    "away": {Language.JA: "担当者が席を外しています", Language.EN: "no staff member is at the chat desk right now"},
    "closed": {Language.JA: "ただいまコールセンターの受付時間外です", Language.EN: "The call center is closed now"},
}


def agent(core, *, seen: datetime | None = None, email: str = "yamada@example.ac.jp") -> None:
    """A staff account with the agent role; at the web inbox at `seen` when given."""
    with core.transaction() as session:
        account = staff.create_account(session, email, PASSWORD, core.now(), role=staff.Role.AGENT,
                                       display_name="山田")
        if seen is not None:
            staff.at_desk(session, account, seen)


def ask(make_ctx, lang: Language, now: datetime):
    return handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, lang=lang, now=now))


def assert_no_person_promised(replies, lang: Language, state: str) -> None:
    text = all_text(replies)
    assert SAYS[state][lang] in text, text
    for promise in PROMISES[lang]:
        assert promise not in text, f"{state} promises a person: {promise!r} in\n{text}"
    assert CALL_CENTER_PHONE in text, "the call center's phone is given"
    assert "intent:payment_methods" in payloads(replies) and "intent:login_help" in payloads(replies), \
        "the menu is offered"
    assert handoff.CANCEL_WAIT in payloads(replies)


def waiting_tickets(core) -> list[str]:
    with core.transaction() as session:
        return list(session.scalars(select(HandoffTicket.conversation_id).where(HandoffTicket.status == "waiting")))


@pytest.mark.parametrize("lang", list(Language))
def test_with_no_desk_at_all_the_student_is_told_to_call(core, make_ctx, lang):
    assert core.agents_on_slack is False
    replies = ask(make_ctx, lang, TUESDAY_MORNING)
    assert_no_person_promised(replies, lang, "none")
    assert waiting_tickets(core) == ["web:u"], "the request is kept for when a desk exists"


@pytest.mark.parametrize("lang", list(Language))
def test_in_hours_with_nobody_at_the_web_inbox_the_student_is_told_so(core, make_ctx, lang):
    agent(core, seen=TUESDAY_MORNING - timedelta(minutes=5))  # the inbox was open, five minutes ago
    replies = ask(make_ctx, lang, TUESDAY_MORNING)
    assert_no_person_promised(replies, lang, "away")


def staff_the_desk(core, desk: str, seen: datetime) -> None:
    """Slack's agents' channel, or an agent who had the web inbox open at `seen`."""
    if desk == "slack":
        core.agents_on_slack = True
    else:
        agent(core, seen=seen)


@pytest.mark.parametrize("lang", list(Language))
@pytest.mark.parametrize("desk", ["slack", "web inbox"])
def test_off_hours_the_student_hears_when_and_gets_the_phone(core, make_ctx, lang, desk):
    staff_the_desk(core, desk, seen=FRIDAY_EVENING)  # at the inbox after hours: still no promise
    replies = ask(make_ctx, lang, FRIDAY_EVENING)
    assert_no_person_promised(replies, lang, "closed")
    assert ("11月24日（火）9:00以降" if lang is Language.JA else "from Tue, Nov 24, 9:00") in all_text(replies)


@pytest.mark.parametrize("lang", list(Language))
@pytest.mark.parametrize("desk", ["slack", "web inbox"])
def test_in_hours_with_a_desk_the_student_is_connected_and_told_the_queue_position(core, make_ctx, lang, desk):
    staff_the_desk(core, desk, seen=TUESDAY_MORNING - timedelta(seconds=30))
    replies = ask(make_ctx, lang, TUESDAY_MORNING)
    text = all_text(replies)
    assert CONNECTING[lang] in text
    assert ("順番待ち：1番目です。" if lang is Language.JA else "You are number 1 in the queue.") in text
    assert ("目安" if lang is Language.JA else "expected wait") not in text, "no wait told without history"
    assert CALL_CENTER_PHONE not in text
    assert payloads(replies) == [handoff.CANCEL_WAIT]


def past_takes(core, minutes: tuple[int, ...], *, before: datetime = TUESDAY_MORNING) -> None:
    """Tickets of other students taken after waiting `minutes` each, opened a quarter of an hour apart before
    `before` (within the call center's hours unless `before` is not)."""
    with core.transaction() as session:
        for index, wait in enumerate(minutes):
            opened = before - timedelta(minutes=15 * (index + 1))
            ticket, _ = open_ticket(session, conversation_id=f"line:PAST{index}", channel="line",
                                    user_id=f"PAST{index}", student_id=None, lang=Language.JA, reason=Reason.ASKED,
                                    topic=None, bot_said=None, now=opened)
            assert take(session, ticket.id, "UAGENT1", opened + timedelta(minutes=wait)).taken
            close(session, ticket.id, ClosedHow.RESOLVED, opened + timedelta(minutes=wait + 10), agent="UAGENT1")


@pytest.mark.parametrize(("lang", "expected"), [
    (Language.JA, "順番待ち：2番目です（お待ちいただく時間の目安：約8分）"),
    (Language.EN, "You are number 2 in the queue (expected wait: about 8 min)"),
])
def test_with_enough_history_the_expected_wait_is_the_median_times_the_position(core, make_ctx, lang, expected):
    core.agents_on_slack = True
    past_takes(core, (2, 4, 10))  # median 4 minutes
    with core.transaction() as session:  # another student asked a minute earlier
        open_ticket(session, conversation_id="line:AHEAD", channel="line", user_id="AHEAD", student_id=None,
                    lang=Language.JA, reason=Reason.ASKED, topic=None, bot_said=None,
                    now=TUESDAY_MORNING - timedelta(minutes=1))
    text = all_text(ask(make_ctx, lang, TUESDAY_MORNING))
    assert CONNECTING[lang] in text and expected in text


def test_tickets_that_waited_overnight_tell_nothing_about_the_wait_now(core, make_ctx):
    core.agents_on_slack = True
    past_takes(core, (2, 4, 10))  # opened this morning in hours
    with core.transaction() as session:  # opened after Friday's closing, taken at Tuesday's opening
        for index in range(3):
            opened = FRIDAY_EVENING + timedelta(minutes=index)
            ticket, _ = open_ticket(session, conversation_id=f"line:NIGHT{index}", channel="line",
                                    user_id=f"NIGHT{index}", student_id=None, lang=Language.JA,
                                    reason=Reason.ASKED, topic=None, bot_said=None, now=opened)
            assert take(session, ticket.id, "UAGENT1", TUESDAY_MORNING - timedelta(minutes=1)).taken
    text = all_text(ask(make_ctx, Language.JA, TUESDAY_MORNING))
    assert "順番待ち：1番目です（お待ちいただく時間の目安：約4分）" in text


def test_two_past_takes_are_too_few_to_tell_a_wait(core, make_ctx):
    core.agents_on_slack = True
    past_takes(core, (2, 4))
    text = all_text(ask(make_ctx, Language.JA, TUESDAY_MORNING))
    assert "順番待ち：1番目です。" in text and "目安" not in text


def test_asking_again_while_waiting_keeps_one_ticket_and_says_so_with_the_queue(core, make_ctx):
    core.agents_on_slack = True
    ask(make_ctx, Language.JA, TUESDAY_MORNING)
    again = all_text(ask(make_ctx, Language.JA, TUESDAY_MORNING + timedelta(minutes=1)))
    assert "ただいま担当者におつなぎしています" in again and "順番待ち：1番目です" in again
    assert waiting_tickets(core) == ["web:u"]


# --- the satisfaction question -----------------------------------------------------------------------------


def resolved_ticket(core) -> int:
    with core.transaction() as session:
        ticket, _ = open_ticket(session, conversation_id="web:u", channel="web", user_id="u", student_id=None,
                                lang=Language.JA, reason=Reason.ASKED, topic=None, bot_said=None, now=TUESDAY_MORNING)
        take(session, ticket.id, "staff:1", TUESDAY_MORNING, "山田")
        close(session, ticket.id, ClosedHow.RESOLVED, TUESDAY_MORNING, agent="staff:1", name="山田")
        return ticket.id


def satisfaction(core, ticket_id: int) -> str | None:
    with core.transaction() as session:
        return session.get(HandoffTicket, ticket_id).satisfaction


@pytest.mark.parametrize(("lang", "answer", "thanks"), [
    (Language.JA, "good", "ご回答ありがとうございます"),
    (Language.EN, "bad", "Thank you for your answer"),
])
def test_the_feedback_button_keeps_the_answer_once(core, make_ctx, lang, answer, thanks):
    ticket_id = resolved_ticket(core)
    replies = handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, lang=lang,
                                           payload=handoff.feedback_payload(Rating(answer)), now=TUESDAY_MORNING))
    assert thanks in all_text(replies) and "intent:payment_methods" in payloads(replies)
    assert satisfaction(core, ticket_id) == answer

    other = "bad" if answer == "good" else "good"
    handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, lang=lang, payload=handoff.feedback_payload(Rating(other)),
                                 now=TUESDAY_MORNING))
    assert satisfaction(core, ticket_id) == answer, "a second tap changes nothing"
    assert waiting_tickets(core) == [], "a feedback tap opens no ticket"


def test_the_feedback_buttons_are_the_ones_the_closing_message_offers(core, make_ctx):
    assert [button.payload for button in handoff.feedback_buttons(Language.JA)] == [
        "handoff:feedback:good", "handoff:feedback:bad"]
    ticket_id = resolved_ticket(core)
    tapped = handoff.feedback_buttons(Language.EN)[1]
    handoff.human_agent(make_ctx(Intent.HUMAN_AGENT, lang=Language.EN, payload=tapped.payload, now=TUESDAY_MORNING))
    assert satisfaction(core, ticket_id) == "bad"
