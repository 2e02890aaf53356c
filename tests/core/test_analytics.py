"""The dashboard's figures, counted by the database over Tokyo days, equal what was stored."""

from datetime import UTC, date, datetime

import pytest

from core import analytics
from core.analytics import FALLBACK_INTENT, OTHER, RELAYED
from core.clock import TOKYO
from core.models import Conversation, HandoffTicket, TranscriptEntry
from intents.types import Intent


def jst(day: int, hour: int = 12, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TOKYO)


def add_conversation(session, conversation_id: str, lang: str | None = "ja") -> None:
    channel = conversation_id.partition(":")[0]
    session.add(Conversation(id=conversation_id, channel=channel, user_id=conversation_id, lang=lang,
                             state_json="{}", created_at=jst(1), updated_at=jst(1)))


def say(session, conversation_id: str, at: datetime, text: str, intent: str | None,
        confidence: float | None = 0.9, guess: str | None = None) -> None:
    """A student's message, and the bot's answer (which no figure may count)."""
    session.add(TranscriptEntry(conversation_id=conversation_id, direction="in", text=text, intent=intent,
                                confidence=confidence if intent else None, at=at, guess=guess))
    if intent:
        session.add(TranscriptEntry(conversation_id=conversation_id, direction="out", text="answer", at=at))


def ticket(session, conversation_id: str, at: datetime, reason: str = "asked") -> None:
    session.add(HandoffTicket(conversation_id=conversation_id, channel=conversation_id.partition(":")[0],
                              user_id="u", lang="ja", reason=reason, status="waiting", opened_at=at))


def seed(core) -> None:
    """Three days of traffic in the last week, and one day just outside it (DEFAULT_NOW is 2026-11-24 10:00)."""
    with core.transaction() as session:
        for conversation_id, lang in (("web:a", "ja"), ("line:b", "en"), ("slack:c", None), ("web:old", "ja")):
            add_conversation(session, conversation_id, lang)
        # today, 24th
        say(session, "web:a", jst(24, 9), "支払い方法は？", "payment_methods")
        say(session, "web:a", jst(24, 9, 5), "<script>alert(1)</script>", FALLBACK_INTENT, 0.12,
            guess="payment_methods")
        say(session, "web:a", jst(24, 9, 6), "こんにちは", "greet")
        say(session, "line:b", jst(24, 0, 30), "What is the weather", FALLBACK_INTENT, 0.31,  # 23rd 15:30 UTC
            guess="contact")
        say(session, "line:b", jst(24, 0, 40), "agent, are you there?", None)  # relayed to a person
        ticket(session, "line:b", jst(24, 0, 35), "misses")
        # yesterday, 23rd: one minute before midnight in Tokyo
        # stored before the guess was kept (migration 0009): none
        say(session, "slack:c", jst(23, 23, 59), "  what is the WEATHER ", FALLBACK_INTENT, 0.2)
        say(session, "slack:c", jst(23, 23, 58), "how do I pay", "payment_methods")
        say(session, "web:a", jst(23, 10), "refund please", "refund")
        ticket(session, "web:a", jst(23, 10, 1), "refund_dispute")
        # six days ago, 18th: the oldest day of a 7-day period
        say(session, "web:a", jst(18, 0, 0), "pickup?", "pickup_timing")
        # seven days ago, 17th: outside 7 days, inside 30
        say(session, "web:old", jst(17, 23, 59), "old question", FALLBACK_INTENT, 0.5)
        ticket(session, "web:old", jst(17, 23, 59))


def test_the_fallback_intent_is_the_understanding_layers():
    assert Intent.OUT_OF_SCOPE.value == FALLBACK_INTENT


def test_a_period_is_whole_tokyo_days_ending_today():
    now = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 24th 00:30 in Tokyo
    span = analytics.period(now, 7)
    assert span.first == date(2026, 11, 18) and span.last == date(2026, 11, 24) and len(span.days) == 7
    assert span.start == jst(18, 0) and span.end == jst(25, 0)
    with pytest.raises(ValueError, match="7, 30, 90"):
        analytics.period(now, 10)


def test_messages_per_day_by_intent_count_student_messages_on_their_tokyo_day(core):
    seed(core)
    with core.transaction() as session:
        board = analytics.dashboard(session, core.now(), 7)
    series = {s.name: s.counts for s in board.series}
    #                           18 19 20 21 22 23 24
    assert series == {"payment_methods": (0, 0, 0, 0, 0, 1, 1),
                      FALLBACK_INTENT: (0, 0, 0, 0, 0, 1, 2),
                      "greet": (0, 0, 0, 0, 0, 0, 1),
                      "pickup_timing": (1, 0, 0, 0, 0, 0, 0),
                      "refund": (0, 0, 0, 0, 0, 1, 0),
                      RELAYED: (0, 0, 0, 0, 0, 0, 1)}
    assert [s.name for s in board.series][:2] == [FALLBACK_INTENT, "payment_methods"]  # biggest first, then names
    assert board.series[-1].name == RELAYED
    assert board.day_totals == (1, 0, 0, 0, 0, 3, 5)
    assert board.messages == 9  # the bot's answers are not counted


def test_intents_beyond_the_top_ones_are_summed_as_other(core):
    seed(core)
    with core.transaction() as session:
        board = analytics.dashboard(session, core.now(), 7, top=2)
    assert [s.name for s in board.series] == [FALLBACK_INTENT, "payment_methods", OTHER, RELAYED]
    assert board.series[2].counts == (1, 0, 0, 0, 0, 1, 1)  # greet + pickup_timing + refund


def test_fallback_rate_is_not_understood_over_the_messages_the_bot_read(core):
    seed(core)
    with core.transaction() as session:
        board = analytics.dashboard(session, core.now(), 7)
    today, yesterday, first = board.fallback[-1], board.fallback[-2], board.fallback[0]
    assert (today.part, today.whole) == (2, 4)  # the relayed message was never the bot's to understand
    assert (yesterday.part, yesterday.whole, yesterday.rate) == (1, 3, pytest.approx(1 / 3))
    assert (first.part, first.whole, first.rate) == (0, 1, 0.0)
    assert board.fallback[2].rate is None  # no messages, no rate
    assert board.not_understood == 3


def test_handoff_rate_is_tickets_opened_over_conversations_active_that_day(core):
    seed(core)
    with core.transaction() as session:
        board = analytics.dashboard(session, core.now(), 7)
    assert [(r.part, r.whole) for r in board.handoff] == [(0, 1), (0, 0), (0, 0), (0, 0), (0, 0), (1, 2), (1, 2)]
    assert board.handoffs == 2
    assert dict(board.handoff_reasons) == {"misses": 1, "refund_dispute": 1}


def test_a_longer_period_reaches_further_back(core):
    seed(core)
    with core.transaction() as session:
        board = analytics.dashboard(session, core.now(), 30)
    assert len(board.day_totals) == 30 and board.period.first == date(2026, 10, 26)
    assert board.messages == 10 and board.not_understood == 4 and board.handoffs == 3
    assert board.day_totals[-8] == 1  # the 17th


def test_not_understood_questions_newest_first_with_channel_language_and_stored_guess(core):
    seed(core)
    with core.transaction() as session:
        board = analytics.dashboard(session, core.now(), 7)
    assert [(q.text, q.channel, q.lang, q.confidence, q.guess) for q in board.recent] == [
        ("<script>alert(1)</script>", "web", "ja", 0.12, "payment_methods"),
        ("What is the weather", "line", "en", 0.31, "contact"),
        ("  what is the WEATHER ", "slack", None, 0.2, None),
    ]
    assert board.recent[0].at == jst(24, 9, 5)


def test_frequent_not_understood_questions_group_the_same_text_in_any_case(core):
    seed(core)
    with core.transaction() as session:
        board = analytics.dashboard(session, core.now(), 7)
    assert [(q.count, q.text.strip().lower()) for q in board.frequent] == [
        (2, "what is the weather"), (1, "<script>alert(1)</script>")]
    assert board.frequent[0].last_at == jst(24, 0, 30)


def test_an_empty_database_gives_zeros(core):
    with core.transaction() as session:
        board = analytics.dashboard(session, core.now(), 90)
    assert board.series == () and board.day_totals == (0,) * 90 and board.messages == 0
    assert board.recent == () and board.frequent == () and board.handoff_reasons == ()
    assert all(rate.rate is None for rate in board.fallback + board.handoff)
