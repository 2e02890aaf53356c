"""Figures for the staff dashboard: student messages per day by intent, fallback and handoff rates, and the
questions the bot did not understand, counted over Tokyo days."""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import cast

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.clock import TOKYO
from core.models import Conversation, HandoffTicket, InboundEvent, TranscriptEntry

# The intent the understanding layer gives a message it did not understand (intents.types.Intent.OUT_OF_SCOPE;
# core may not import intents, and a test keeps the two equal).
FALLBACK_INTENT = "out_of_scope"
OTHER = "other"  # the intents outside the top ones, summed
RELAYED = "to a person"  # a student's message relayed to an agent during a handoff: the bot did not read it
PERIODS = (7, 30, 90)
STUDENT = "in"  # the transcript direction of what a student sent


@dataclass(frozen=True)
class Period:
    """The Tokyo days a dashboard covers, oldest first, and their bounds as aware times."""

    days: tuple[date, ...]
    start: datetime  # midnight in Tokyo starting the first day
    end: datetime  # midnight in Tokyo after the last day

    @property
    def first(self) -> date:
        """The oldest day."""
        return self.days[0]

    @property
    def last(self) -> date:
        """The newest day (today)."""
        return self.days[-1]


@dataclass(frozen=True)
class Series:
    """One stack of the messages chart: an intent (or OTHER, RELAYED) with its count per day."""

    name: str
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        """The messages of this series over the whole period."""
        return sum(self.counts)


@dataclass(frozen=True)
class DayRate:
    """A share on one day: `part` of `whole`; `rate` is None when there was nothing to share."""

    day: date
    part: int
    whole: int

    @property
    def rate(self) -> float | None:
        """part / whole, or None when whole is 0."""
        return self.part / self.whole if self.whole else None


@dataclass(frozen=True)
class FailedEvent:
    """A webhook event or job the worker gave up on: after its last attempt, or at once when refused for good."""

    at: datetime
    channel: str  # a platform (line, slack) or a job kind (deliver, agents, …)
    attempts: int
    error: str  # as stored: masked


@dataclass(frozen=True)
class Unrecognized:
    """A student's message the bot did not understand (its text as stored: already masked)."""

    at: datetime
    text: str
    channel: str
    lang: str | None
    confidence: float | None  # the probability of the bot's best guess
    guess: str | None = None  # the bot's best guess, an intent name (None on lines stored before it was kept)


@dataclass(frozen=True)
class FrequentQuestion:
    """A not-understood text (compared trimmed and lower-cased) with how often and when last it came."""

    text: str
    count: int
    last_at: datetime


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows for one period."""

    period: Period
    series: tuple[Series, ...]  # biggest first; OTHER and RELAYED last when present
    day_totals: tuple[int, ...]
    fallback: tuple[DayRate, ...]  # not-understood / messages the bot read
    handoff: tuple[DayRate, ...]  # tickets opened / conversations with a student message
    handoff_reasons: tuple[tuple[str, int], ...]
    recent: tuple[Unrecognized, ...]
    frequent: tuple[FrequentQuestion, ...]
    failed: tuple[FailedEvent, ...] = ()  # newest first

    @property
    def messages(self) -> int:
        """Student messages in the period."""
        return sum(self.day_totals)

    @property
    def not_understood(self) -> int:
        """Messages the bot did not understand in the period."""
        return sum(rate.part for rate in self.fallback)

    @property
    def handoffs(self) -> int:
        """Handoff tickets opened in the period."""
        return sum(rate.part for rate in self.handoff)


def period(now: datetime, days: int) -> Period:
    """The `days` Tokyo days ending today (today included).

    Raises:
        ValueError: when `days` is not one of PERIODS.
    """
    if days not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(map(str, PERIODS))} days, not {days}")
    today = now.astimezone(TOKYO).date()
    first = today - timedelta(days=days - 1)
    listed = tuple(first + timedelta(days=offset) for offset in range(days))
    return Period(days=listed, start=datetime.combine(first, time(0), TOKYO),
                  end=datetime.combine(today + timedelta(days=1), time(0), TOKYO))


# A mapped UTC time column, NOT NULL or nullable (a NULL is never in a period nor on a day).
_TimeColumn = InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None]


def _tokyo_day(session: Session, column: _TimeColumn) -> ColumnElement[str]:
    """The Tokyo calendar day of a UTC time column as 'YYYY-MM-DD', computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Tokyo", column), "YYYY-MM-DD")
    # SQLite stores naive UTC; Japan has kept UTC+9 without daylight saving since 1951, so +9 hours is exact.
    return func.strftime("%Y-%m-%d", column, "+9 hours")


def _in(period_: Period, column: _TimeColumn) -> ColumnElement[bool]:
    return (column >= period_.start) & (column < period_.end)


def dashboard(session: Session, now: datetime, days: int, *, top: int = 6, listed: int = 20) -> Dashboard:
    """The dashboard's figures for the `days` days ending today in Tokyo.

    Args:
        session: a database session.
        now: the current time (the injected clock's).
        days: one of PERIODS.
        top: how many intents get a stack of their own; the rest are summed as OTHER.
        listed: how many not-understood questions each list shows.

    Returns:
        The figures, one value per day of the period for each daily series.
    """
    span = period(now, days)
    index = {day.isoformat(): position for position, day in enumerate(span.days)}

    def per_day(rows: list[tuple[str, int]]) -> list[int]:
        counts = [0] * len(span.days)
        for day, count in rows:
            if day in index:
                counts[index[day]] += count
        return counts

    day = _tokyo_day(session, TranscriptEntry.at)
    student = (TranscriptEntry.direction == STUDENT) & _in(span, TranscriptEntry.at)
    by_intent: dict[str, list[int]] = {}
    for day_text, intent, count in session.execute(
            select(day, TranscriptEntry.intent, func.count()).where(student).group_by(day, TranscriptEntry.intent)):
        by_intent.setdefault(intent or RELAYED, [0] * len(span.days))
        if day_text in index:
            by_intent[intent or RELAYED][index[day_text]] += count
    series = _top_series(by_intent, top)
    day_totals = tuple(sum(column) for column in zip(*(s.counts for s in series), strict=True)) if series \
        else (0,) * len(span.days)

    relayed = by_intent.get(RELAYED, [0] * len(span.days))
    missed = by_intent.get(FALLBACK_INTENT, [0] * len(span.days))
    fallback = tuple(DayRate(d, missed[i], day_totals[i] - relayed[i]) for i, d in enumerate(span.days))

    active = per_day(list(session.execute(select(day, func.count(TranscriptEntry.conversation_id.distinct()))
                                          .where(student).group_by(day))))
    opened_day = _tokyo_day(session, HandoffTicket.opened_at)
    in_span = _in(span, HandoffTicket.opened_at)
    opened = per_day(list(session.execute(select(opened_day, func.count()).where(in_span)
                                          .group_by(opened_day))))
    handoff = tuple(DayRate(d, opened[i], active[i]) for i, d in enumerate(span.days))
    reasons = tuple((reason, count) for reason, count in session.execute(
        select(HandoffTicket.reason, func.count()).where(in_span).group_by(HandoffTicket.reason)
        .order_by(func.count().desc(), HandoffTicket.reason)))

    return Dashboard(period=span, series=series, day_totals=day_totals, fallback=fallback, handoff=handoff,
                     handoff_reasons=reasons, recent=tuple(unrecognized(session, span, limit=listed)),
                     frequent=tuple(frequent_unrecognized(session, span, limit=listed)),
                     failed=tuple(failed_events(session, span, limit=listed)))


def failed_events(session: Session, span: Period, *, limit: int) -> list[FailedEvent]:
    """The events and jobs that failed for good in the period, newest first."""
    query = (select(InboundEvent.processed_at, InboundEvent.channel, InboundEvent.attempts, InboundEvent.last_error)
             .where(InboundEvent.status == "failed", _in(span, InboundEvent.processed_at))
             .order_by(InboundEvent.processed_at.desc(), InboundEvent.id.desc()).limit(limit))
    # cast: the WHERE keeps processed_at inside the span, so it is never NULL here.
    return [FailedEvent(at=cast(datetime, at), channel=channel, attempts=attempts, error=error or "")
            for at, channel, attempts, error in session.execute(query)]


def _top_series(by_intent: dict[str, list[int]], top: int) -> tuple[Series, ...]:
    """The `top` biggest intents by total, then OTHER (the rest summed) and RELAYED, each only when non-zero."""
    ranked = sorted((name for name in by_intent if name != RELAYED), key=lambda name: (-sum(by_intent[name]), name))
    series = [Series(name, tuple(by_intent[name])) for name in ranked[:top]]
    rest = ranked[top:]
    if rest:
        series.append(Series(OTHER, tuple(sum(column) for column in zip(*(by_intent[n] for n in rest), strict=True))))
    if RELAYED in by_intent:
        series.append(Series(RELAYED, tuple(by_intent[RELAYED])))
    return tuple(series)


def _not_understood(span: Period) -> ColumnElement[bool]:
    return ((TranscriptEntry.direction == STUDENT) & (TranscriptEntry.intent == FALLBACK_INTENT)
            & _in(span, TranscriptEntry.at))


def unrecognized(session: Session, span: Period, *, limit: int | None = None) -> list[Unrecognized]:
    """The not-understood messages of the period, newest first, with their conversation's channel and language."""
    query = (select(TranscriptEntry, Conversation.channel, Conversation.lang, Conversation.state_json)
             .outerjoin(Conversation, Conversation.id == TranscriptEntry.conversation_id)
             .where(_not_understood(span)).order_by(TranscriptEntry.at.desc(), TranscriptEntry.id.desc()))
    if limit is not None:
        query = query.limit(limit)
    return [Unrecognized(at=entry.at, text=entry.text,
                         channel=channel or entry.conversation_id.partition(":")[0],
                         lang=lang or _last_language(state_json), confidence=entry.confidence, guess=entry.guess)
            for entry, channel, lang, state_json in session.execute(query)]


def _last_language(state_json: str | None) -> str | None:
    """The language the student last typed in, kept in the state when none was chosen (see core.conversations)."""
    try:
        value = json.loads(state_json or "{}").get("last_lang")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def frequent_unrecognized(session: Session, span: Period, *, limit: int = 20) -> list[FrequentQuestion]:
    """The not-understood texts asked most often in the period (trimmed, case ignored), the most asked first."""
    key = func.lower(func.trim(TranscriptEntry.text))
    rows = session.execute(select(func.min(TranscriptEntry.text), func.count(), func.max(TranscriptEntry.at))
                           .where(_not_understood(span)).group_by(key)
                           .order_by(func.count().desc(), func.max(TranscriptEntry.at).desc()).limit(limit))
    return [FrequentQuestion(text=text, count=count, last_at=_aware(last)) for text, count, last in rows]


def _aware(value: datetime | str) -> datetime:
    """max() of a time column may come back as stored (a string on SQLite): read it as the UTC it is."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
