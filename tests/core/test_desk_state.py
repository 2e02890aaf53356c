"""Who can answer a handoff, at the core: the desk's state (Slack's agents' channel, staff accounts and their
presence at the web inbox, the call center's hours), the queue's order, the expected wait, the satisfaction
answer, a ticket's timeline and a take that two agents race for."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core import staff
from core.clock import TOKYO
from core.enums import Language
from core.handoffs import (
    ClosedHow,
    DeskState,
    Reason,
    Satisfaction,
    TicketStatus,
    add_note,
    close,
    desk_revision,
    desk_state,
    expected_wait,
    open_ticket,
    queue_position,
    rate,
    relay_from_agent,
    relay_from_student,
    satisfaction_since,
    take,
    timeline,
)
from core.models import HandoffTicket, StaffAccount
from tests.conftest import at_once

# The dates of tests/handlers/test_handoff.py: a Tuesday morning in the call center's hours (9:00-17:00 on
# business days), and a Friday evening after it closed (Monday the 23rd is 勤労感謝の日).
TUESDAY_MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
FRIDAY_EVENING = datetime(2026, 11, 20, 17, 30, tzinfo=TOKYO)
PASSWORD = "correct horse battery"


def state(core, now: datetime, *, slack: bool = False) -> DeskState:
    with core.transaction() as session:
        return desk_state(session, core.calendar, now, slack=slack)


def account(core, email: str, *, role: staff.Role = staff.Role.AGENT, name: str | None = "山田",
            seen: datetime | None = None) -> int:
    """A staff account (at the inbox at `seen`, when given); its id."""
    with core.transaction() as session:
        created = staff.create_account(session, email, PASSWORD, core.now(), role=role, display_name=name)
        if seen is not None:
            staff.at_desk(session, created, seen)
        return created.id


def new_ticket(session, conversation: str, now: datetime) -> HandoffTicket:
    ticket, _ = open_ticket(session, conversation_id=conversation, channel="line", user_id=conversation,
                            student_id=None, lang=Language.JA, reason=Reason.ASKED, topic=None, bot_said=None,
                            now=now)
    return ticket


# --- the desk's state ----------------------------------------------------------------------------------------


def test_with_no_slack_channel_and_no_staff_account_there_is_no_desk_at_any_hour(core):
    assert state(core, TUESDAY_MORNING) is DeskState.NONE
    assert state(core, FRIDAY_EVENING) is DeskState.NONE


def test_slacks_agents_channel_is_open_in_hours_and_closed_outside_them(core):
    assert state(core, TUESDAY_MORNING, slack=True) is DeskState.OPEN
    assert state(core, FRIDAY_EVENING, slack=True) is DeskState.CLOSED
    assert state(core, datetime(2026, 11, 23, 10, 0, tzinfo=TOKYO), slack=True) is DeskState.CLOSED, "a holiday"
    assert state(core, datetime(2026, 11, 24, 8, 59, tzinfo=TOKYO), slack=True) is DeskState.CLOSED
    assert state(core, datetime(2026, 11, 24, 9, 0, tzinfo=TOKYO), slack=True) is DeskState.OPEN


def test_a_staff_account_nobody_has_open_is_away_in_hours_and_closed_outside_them(core):
    account(core, "yamada@example.ac.jp")
    assert state(core, TUESDAY_MORNING) is DeskState.AWAY
    assert state(core, FRIDAY_EVENING) is DeskState.CLOSED


def test_an_agent_at_the_inbox_within_90_seconds_opens_the_desk(core):
    account(core, "yamada@example.ac.jp", seen=TUESDAY_MORNING)
    assert state(core, TUESDAY_MORNING) is DeskState.OPEN
    assert state(core, TUESDAY_MORNING + timedelta(seconds=89)) is DeskState.OPEN
    assert state(core, TUESDAY_MORNING + timedelta(seconds=91)) is DeskState.AWAY, "the page was closed"


def test_presence_does_not_open_the_desk_outside_the_call_centers_hours(core):
    account(core, "yamada@example.ac.jp", seen=FRIDAY_EVENING)
    assert state(core, FRIDAY_EVENING) is DeskState.CLOSED


def test_an_admin_at_the_inbox_answers_too(core):
    account(core, "sato@example.ac.jp", role=staff.Role.ADMIN, name=None, seen=TUESDAY_MORNING)
    assert state(core, TUESDAY_MORNING) is DeskState.OPEN


def test_signing_out_leaves_the_desk(core):
    agent = account(core, "yamada@example.ac.jp", seen=TUESDAY_MORNING)
    with core.transaction() as session:
        staff.leave_desk(session, agent)
    assert state(core, TUESDAY_MORNING) is DeskState.AWAY


def test_presence_is_written_at_most_every_20_seconds_but_keeps_the_desk_open(core):
    agent = account(core, "yamada@example.ac.jp", seen=TUESDAY_MORNING)
    with core.transaction() as session:
        staff.at_desk(session, session.get(StaffAccount, agent), TUESDAY_MORNING + timedelta(seconds=10))
    with core.transaction() as session:
        assert session.get(StaffAccount, agent).desk_seen_at == TUESDAY_MORNING
        staff.at_desk(session, session.get(StaffAccount, agent), TUESDAY_MORNING + timedelta(seconds=60))
    assert state(core, TUESDAY_MORNING + timedelta(seconds=140)) is DeskState.OPEN


def test_a_disabled_account_is_no_desk_even_with_its_inbox_open(core):
    account(core, "yamada@example.ac.jp", seen=TUESDAY_MORNING)
    with core.transaction() as session:
        staff.disable_account(session, "yamada@example.ac.jp", TUESDAY_MORNING)
    assert state(core, TUESDAY_MORNING) is DeskState.NONE
    assert state(core, TUESDAY_MORNING, slack=True) is DeskState.OPEN, "Slack's channel is a desk by itself"

    account(core, "sato@example.ac.jp")
    assert state(core, TUESDAY_MORNING) is DeskState.AWAY, "an enabled account that is not at the inbox"


def test_slack_keeps_the_desk_open_when_nobody_has_the_inbox_open(core):
    account(core, "yamada@example.ac.jp")
    assert state(core, TUESDAY_MORNING, slack=True) is DeskState.OPEN


# --- the queue and the expected wait -----------------------------------------------------------------------


def test_the_queue_is_ordered_by_opening_and_counts_only_waiting_tickets(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        later = new_ticket(session, "line:U3", now + timedelta(minutes=2))
        first = new_ticket(session, "line:U1", now)
        same_time = new_ticket(session, "line:U2", now)  # opened at the same moment: the lower id first
        taken = new_ticket(session, "line:U0", now - timedelta(minutes=5))
        take(session, taken.id, "UAGENT1", now)
        assert [queue_position(session, t) for t in (first, same_time, later)] == [1, 2, 3]
        assert queue_position(session, taken) is None, "a ticket an agent has is in no queue"

        close(session, first.id, ClosedHow.WITHDRAWN, now)
        session.refresh(first)
        assert queue_position(session, first) is None
        assert [queue_position(session, t) for t in (same_time, later)] == [1, 2]


def taken_after(session, conversation: str, opened: datetime, minutes: float) -> None:
    """A ticket an agent took `minutes` after it opened."""
    ticket = new_ticket(session, conversation, opened)
    assert take(session, ticket.id, "UAGENT1", opened + timedelta(minutes=minutes)).taken
    close(session, ticket.id, ClosedHow.RESOLVED, opened + timedelta(minutes=minutes + 5), agent="UAGENT1")


def test_the_expected_wait_needs_three_recent_takes(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        assert expected_wait(session, now, 1) is None
        taken_after(session, "line:A", now - timedelta(hours=3), 2)
        taken_after(session, "line:B", now - timedelta(hours=2), 4)
        taken_after(session, "line:OLD", now - timedelta(days=31), 3)  # too long ago to count
        assert expected_wait(session, now, 1) is None, "two recent waits are too few to say"
        withdrawn = new_ticket(session, "line:W", now - timedelta(hours=1))
        close(session, withdrawn.id, ClosedHow.WITHDRAWN, now)  # never taken: no wait to learn from
        assert expected_wait(session, now, 1) is None


def test_the_expected_wait_is_the_median_of_recent_waits_times_the_position(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        for index, minutes in enumerate((2, 4, 10)):
            taken_after(session, f"line:R{index}", now - timedelta(hours=5 - index), minutes)
        taken_after(session, "line:OLD", now - timedelta(days=31), 60)  # outside the 30 days: not counted
        assert expected_wait(session, now, 1) == timedelta(minutes=4)
        assert expected_wait(session, now, 3) == timedelta(minutes=12)


def test_given_the_calendar_only_tickets_opened_in_hours_count(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        for index, minutes in enumerate((2, 4, 10)):
            taken_after(session, f"line:R{index}", now - timedelta(minutes=50 - 15 * index), minutes)
        for index in range(3):  # opened after Friday's closing, taken at Tuesday's opening: 87 hours
            taken_after(session, f"line:N{index}", FRIDAY_EVENING + timedelta(minutes=index), 87 * 60)
        assert expected_wait(session, now, 1, core.calendar) == timedelta(minutes=4)
        assert expected_wait(session, now, 1) > timedelta(hours=40), "without the calendar every wait counts"


def test_the_expected_wait_counts_only_the_latest_twenty_takes(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        taken_after(session, "line:EARLIEST", now - timedelta(days=2), 3)  # the 21st most recent: left out
        for index in range(20):
            taken_after(session, f"line:T{index}", now - timedelta(hours=20 - index), 1 if index % 2 else 3)
        # With the earliest the median of 21 waits would be 3 min; of the latest 20 it is (1 + 3) / 2.
        assert expected_wait(session, now, 1) == timedelta(minutes=2)


def test_an_agents_takeover_is_no_wait_to_learn_from(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        for index in range(3):  # `/madoguchi takeover`: the agent opens the ticket and takes it in one go
            at = now - timedelta(hours=index + 1)
            ticket, _ = open_ticket(session, conversation_id=f"line:T{index}", channel="line", user_id="T",
                                    student_id=None, lang=Language.JA, reason=Reason.AGENT, topic=None,
                                    bot_said=None, now=at)
            take(session, ticket.id, "UAGENT1", at)
        assert expected_wait(session, now, 1) is None, "no student waited: nothing to tell the next one"


# --- the satisfaction answer ---------------------------------------------------------------------------------


def test_a_rating_is_kept_once_and_only_on_a_resolved_ticket(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        ticket = new_ticket(session, "line:U1", now)
        assert not rate(session, "line:U1", "good"), "an open ticket is not rated"
        take(session, ticket.id, "UAGENT1", now)
        close(session, ticket.id, ClosedHow.HANDED_BACK, now, agent="UAGENT1")
        assert not rate(session, "line:U1", "good"), "a ticket handed back is not rated"
        withdrawn = new_ticket(session, "line:U2", now)
        close(session, withdrawn.id, ClosedHow.WITHDRAWN, now)
        assert not rate(session, "line:U2", "bad"), "nor one the student stopped waiting for"

        resolved = new_ticket(session, "line:U1", now)
        take(session, resolved.id, "UAGENT1", now)
        close(session, resolved.id, ClosedHow.RESOLVED, now, agent="UAGENT1")
        assert not rate(session, "line:OTHER", "good"), "another conversation's answer"
        assert rate(session, "line:U1", "bad")
        assert not rate(session, "line:U1", "good"), "a second tap changes nothing"
    with core.transaction() as session:
        ratings = dict(session.execute(select(HandoffTicket.id, HandoffTicket.satisfaction)).all())
        assert ratings == {ticket.id: None, withdrawn.id: None, resolved.id: "bad"}


def test_satisfaction_since_counts_resolved_tickets_and_their_answers(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        for index, answer in enumerate(("good", "good", "bad", None)):
            ticket = new_ticket(session, f"line:S{index}", now - timedelta(hours=index))
            take(session, ticket.id, "UAGENT1", now - timedelta(hours=index))
            close(session, ticket.id, ClosedHow.RESOLVED, now - timedelta(hours=index), agent="UAGENT1")
            if answer:
                assert rate(session, f"line:S{index}", answer)
        old = new_ticket(session, "line:OLD", now - timedelta(days=3))
        close(session, old.id, ClosedHow.RESOLVED, now - timedelta(days=3), agent="UAGENT1")
        assert rate(session, "line:OLD", "bad")
        back = new_ticket(session, "line:BACK", now)
        close(session, back.id, ClosedHow.HANDED_BACK, now, agent="UAGENT1")

        assert satisfaction_since(session, now - timedelta(days=1)) == Satisfaction(resolved=4, good=2, bad=1)
        counted = satisfaction_since(session, now - timedelta(days=7))
        assert (counted.resolved, counted.good, counted.bad) == (5, 2, 2)
        assert satisfaction_since(session, now + timedelta(minutes=1)).resolved == 0


# --- the timeline ----------------------------------------------------------------------------------------------


def test_the_timeline_shows_the_events_with_the_agents_display_name_among_the_messages(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        ticket = new_ticket(session, "line:U1", now)
        revision = desk_revision(session)
        relay_from_student(session, ticket, "ログインできません", "line:U1:e1", now)
        assert desk_revision(session) > revision, "a message changes the desk's revision"
        revision = desk_revision(session)
        assert take(session, ticket.id, "staff:7", now + timedelta(minutes=1), "山田").taken
        assert desk_revision(session) > revision, "a take changes the desk's revision"
        relay_from_agent(session, ticket, "確認します", "山田", "web:reply:k1", now + timedelta(minutes=2),
                         signed=True)
        add_note(session, ticket, "本人確認済み", "山田", "web:note:k2", now + timedelta(minutes=3))
        assert close(session, ticket.id, ClosedHow.RESOLVED, now + timedelta(minutes=4), agent="staff:7", name="山田")
        lines = [(m.direction, m.author, m.text) for m in timeline(session, ticket.id)]
    assert lines == [("event", None, "opened"),
                     ("student", None, "ログインできません"),
                     ("event", "山田", "taken"),
                     ("agent", "山田", "確認します"),
                     ("note", "山田", "本人確認済み"),
                     ("event", "山田", "resolved")]
    assert not any("@" in (author or "") for _, author, _ in lines), "never an email"


def test_a_slack_agents_events_name_their_user_id_and_a_withdrawal_names_no_one(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        ticket = new_ticket(session, "line:U1", now)
        take(session, ticket.id, "UAGENT1", now)
        close(session, ticket.id, ClosedHow.HANDED_BACK, now, agent="UAGENT1")
        other = new_ticket(session, "line:U2", now)
        close(session, other.id, ClosedHow.WITHDRAWN, now)
        assert [(m.author, m.text) for m in timeline(session, ticket.id)] == [
            (None, "opened"), ("UAGENT1", "taken"), ("UAGENT1", "handed_back")]
        assert [(m.author, m.text) for m in timeline(session, other.id)] == [(None, "opened"), (None, "withdrawn")]


def test_a_note_and_a_reply_are_kept_once_per_key_and_a_note_never_goes_to_the_student(core):
    now = TUESDAY_MORNING
    with core.transaction() as session:
        ticket = new_ticket(session, "line:U1", now)
        take(session, ticket.id, "staff:7", now, "山田")
        note = add_note(session, ticket, "パスワードは Abcd1234xyz と言っていた", "山田", "web:note:k1", now)
        assert add_note(session, ticket, "パスワードは Abcd1234xyz と言っていた", "山田", "web:note:k1", now) is None
        assert note.delivery == "internal" and "Abcd1234xyz" not in note.text
        assert relay_from_agent(session, ticket, "確認します", "山田", "web:reply:k2", now, signed=True)
        assert relay_from_agent(session, ticket, "確認します", "山田", "web:reply:k2", now, signed=True) is None
        assert [m.direction for m in timeline(session, ticket.id)] == ["event", "event", "note", "agent"]


# --- two agents take at once -----------------------------------------------------------------------------------





@pytest.mark.parametrize("round_", range(3))
def test_of_two_web_agents_taking_at_once_one_wins_and_the_timeline_says_who(core, round_):
    with core.transaction() as session:
        ticket_id = new_ticket(session, "line:U1", TUESDAY_MORNING).id

    def take_as(agent: str, name: str) -> Any:
        with core.transaction() as session:
            return take(session, ticket_id, agent, TUESDAY_MORNING, name)

    results = at_once(lambda: take_as("staff:1", "山田"), lambda: take_as("staff:2", "佐藤"))
    [winner] = [result for result in results if result.taken]
    assert {result.assignee for result in results} == {winner.assignee} <= {"山田", "佐藤"}, \
        "the loser is told who has it, by display name"
    with core.transaction() as session:
        ticket = session.get(HandoffTicket, ticket_id)
        assert ticket.status == TicketStatus.ASSIGNED.value and ticket.assignee_name == winner.assignee
        assert ticket.assignee == ("staff:1" if winner.assignee == "山田" else "staff:2")
        assert [(m.author, m.text) for m in timeline(session, ticket_id) if m.text == "taken"] == [
            (winner.assignee, "taken")], "exactly one take on the timeline"
