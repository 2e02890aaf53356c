"""The business counters of /metrics: what each row adds to them, and tallies that keep it once the row is deleted.

The counters (handoffs opened and closed, one-time links issued and used, reminders sent, deferred, failed
and not sent) are counted from their rows, which every process shares. Retention deletes old rows and
forgetting a student deletes theirs; a counter that went down with them would read as a reset to Prometheus
(a false spike in rate()). So whoever deletes such rows first calls `set_aside` in the same transaction,
which adds what the rows counted for to `metric_tallies`, and `totals` is always live rows + tallies.

Every label value comes from a closed set (the core's enums, else `unknown`), never from what a student typed.
"""

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.db import Base
from core.enums import LinkPurpose
from core.handoffs import ClosedHow, Reason
from core.jobs import AGENTS, DELIVER, MAIL
from core.models import HandoffTicket, InboundEvent, MetricTally, OneTimeLink, Reminder
from core.reminders import Kind, Status

log = logging.getLogger(__name__)

UNKNOWN = "unknown"  # a label value outside its closed set (a row written by a newer version, say)
FAILED_JOB = "failed"  # core.jobs' status of a job that gave up (a reminder's message the channel refused)

Labels = tuple[str, ...]
GroupedRow = Sequence[Any]  # a source's row: the values of its columns, then how many rows had them


def allowed(enum: Iterable[object]) -> frozenset[str]:
    """The values of an enum: the closed set its labels come from."""
    return frozenset(getattr(member, "value", str(member)) for member in enum)


def label(value: object, values: frozenset[str]) -> str:
    """`value` (an enum member or its value) when it is one of `values`, else UNKNOWN."""
    text = getattr(value, "value", value)
    return text if isinstance(text, str) and text in values else UNKNOWN


REASONS, HOWS, PURPOSES, KINDS = allowed(Reason), allowed(ClosedHow), allowed(LinkPurpose), allowed(Kind)


def kind_of_key(key: str) -> str:
    """The reminder kind a delivery job's key starts with (`ready_now:K7PM-3QXA:line:U…`), or "" for a job
    that is not a reminder's (an agent's reply, a notice)."""
    prefix = key.split(":", 1)[0]
    return prefix if prefix in KINDS else ""


@dataclass(frozen=True)
class Source:
    """The rows of one table the counters read, grouped by the columns their labels come from."""

    model: type[Base]
    columns: tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...]
    where: ColumnElement[bool] | None = None  # only these rows count at all


@dataclass(frozen=True)
class Rule:
    """How one source's grouped row counts for a series: its label values, or None when it does not count."""

    source: Source
    labels_of: Callable[[GroupedRow], Labels | None]


@dataclass(frozen=True)
class Series:
    """One counter: its name (without the metrics prefix and `_total`), label names, description and rules."""

    name: str
    labels: tuple[str, ...]
    doc: str
    rules: tuple[Rule, ...]


TICKETS = Source(HandoffTicket, (HandoffTicket.reason, HandoffTicket.closed_how))
LINKS = Source(OneTimeLink, (OneTimeLink.purpose, OneTimeLink.used_at.is_not(None)))
REMINDERS = Source(Reminder, (Reminder.kind, Reminder.status, Reminder.deferred))
# Failed delivery jobs are rare: each is read by its key, which starts with the reminder kind.
UNDELIVERED = Source(InboundEvent, (InboundEvent.event_id,),
                     (InboundEvent.channel == DELIVER) & (InboundEvent.status == FAILED_JOB))
FAILED_EVENTS = Source(InboundEvent, (InboundEvent.channel,), InboundEvent.status == FAILED_JOB)
SOURCES = (TICKETS, LINKS, REMINDERS, UNDELIVERED, FAILED_EVENTS)
# What an inbound event's channel can be: a platform's webhook or a job kind (anything else counts as UNKNOWN).
EVENT_CHANNELS = frozenset({"line", "slack", DELIVER, AGENTS, MAIL})


def _kind(row: GroupedRow) -> str:
    return label(row[0], KINDS)


def _undelivered(row: GroupedRow) -> Labels | None:
    kind = kind_of_key(row[0])
    return (kind, "undelivered") if kind else None


SERIES: tuple[Series, ...] = (
    Series("handoffs_opened", ("reason",), "Handoff tickets opened, by why the conversation went to a person.",
           (Rule(TICKETS, lambda row: (label(row[0], REASONS),)),)),
    Series("handoffs_closed", ("how",), "Handoff tickets closed, by how: resolved by an agent, handed back to the "
           "bot, or withdrawn by the student.",
           (Rule(TICKETS, lambda row: (label(row[1], HOWS),) if row[1] is not None else None),)),
    Series("links_issued", ("purpose",), "One-time links mailed to students, by purpose.",
           (Rule(LINKS, lambda row: (label(row[0], PURPOSES),)),)),
    Series("links_used", ("purpose",), "One-time links used (a password reset or an email confirmed).",
           (Rule(LINKS, lambda row: (label(row[0], PURPOSES),) if row[1] else None),)),
    Series("reminders_sent", ("kind",), "Reminders sent (their messages queued for delivery), by kind.",
           (Rule(REMINDERS, lambda row: (_kind(row),) if row[1] == Status.SENT.value else None),)),
    Series("reminders_deferred", ("kind",), "Reminders moved out of the quiet hours (21:00-8:00) to 8:00.",
           (Rule(REMINDERS, lambda row: (_kind(row),) if row[2] else None),)),
    Series("reminders_failed", ("kind", "reason"), "Reminders that did not reach the student: missed (due while no "
           "scheduler ran, past their grace) or undelivered (the channel refused the message).",
           (Rule(REMINDERS, lambda row: (_kind(row), "missed") if row[1] == Status.MISSED.value else None),
            Rule(UNDELIVERED, _undelivered))),
    Series("events_failed", ("channel",), "Webhook events and queued jobs given up on after their last attempt, "
           "or at once when the platform refused them for good, by channel or job kind.",
           (Rule(FAILED_EVENTS, lambda row: (label(row[0], EVENT_CHANNELS),)),)),
    Series("reminders_not_sent", ("kind", "reason"), "Reminders not sent on purpose: cancelled (no longer relevant) "
           "or skipped (opted out, or no reachable chat account).",
           (Rule(REMINDERS, lambda row: (_kind(row), row[1])
                 if row[1] in (Status.CANCELLED.value, Status.SKIPPED.value) else None),)),
)

Counts = dict[str, dict[Labels, int]]  # series name → label values → count


def _counted(session: Session, sources: Iterable[Source], where: ColumnElement[bool] | None = None) -> Counts:
    """What the rows of `sources` (those matching `where` too, if given) count for, per series and label set."""
    counts: Counts = {series.name: {} for series in SERIES}
    for source in sources:
        conditions = [condition for condition in (source.where, where) if condition is not None]
        rows = session.execute(select(*source.columns, func.count()).where(*conditions)
                               .group_by(*source.columns)).all()
        for series in SERIES:
            for rule in series.rules:
                if rule.source is not source:
                    continue
                for row in rows:
                    labels = rule.labels_of(row)
                    if labels is not None:
                        counts[series.name][labels] = counts[series.name].get(labels, 0) + int(row[-1])
    return counts


def _key(series: Series, labels: Labels) -> str:
    """The label values as canonical JSON (names sorted, no spaces): the tally's key next to the series name."""
    return json.dumps(dict(zip(series.labels, labels, strict=True)), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def totals(session: Session) -> Counts:
    """Every counter's value per label set: the live rows counted, plus the tallies of the deleted ones.

    Returns:
        Per series name (every one of SERIES, maybe empty), the count of each label set.
    """
    counts = _counted(session, SOURCES)
    by_name = {series.name: series for series in SERIES}
    for name, key, count in session.execute(select(MetricTally.series, MetricTally.labels, MetricTally.count)):
        series = by_name.get(name)
        stored = json.loads(key)
        if series is None or set(stored) != set(series.labels):
            log.warning("metric tally %s %s matches no counter: left out", name, key)
            continue
        labels = tuple(stored[label_name] for label_name in series.labels)
        counts[name][labels] = counts[name].get(labels, 0) + int(count)
    return counts


def set_aside(session: Session, model: type[Base], where: ColumnElement[bool]) -> None:
    """Add what the rows of `model` matching `where` count for to the tallies: call it just before deleting them,
    in the same transaction, so the counters stay where they were.

    A model no counter reads (transcripts, say) is let through: any deletion may call this.

    Args:
        session: the transaction that deletes the rows.
        model: the table the rows are deleted from.
        where: the condition of the delete.
    """
    sources = [source for source in SOURCES if source.model is model]
    if not sources:
        return
    by_name = {series.name: series for series in SERIES}
    for name, per_labels in _counted(session, sources, where).items():
        for labels, count in sorted(per_labels.items()):
            if not count:
                continue
            key = _key(by_name[name], labels)
            # Read then update or insert: the row is locked by the update for the rest of the transaction.
            tally = session.scalars(select(MetricTally).where(MetricTally.series == name,
                                                              MetricTally.labels == key)).one_or_none()
            if tally is None:
                session.add(MetricTally(series=name, labels=key, count=count))
            else:
                tally.count += count
    session.flush()
