"""Prometheus metrics: per-message counters and latency from the pipeline, business totals from the database.

Two sources, each correct however many processes serve:

- Per message (messages by channel, intent and language; fallbacks; latency) the pipeline counts in the
  process that answered. One process: these metrics live in `REGISTRY`. `madoguchi serve --workers N`
  sets PROMETHEUS_MULTIPROC_DIR before the workers start; prometheus_client then keeps every worker's values
  in files there, and a scrape, whichever worker answers it, adds up all the files (MultiProcessCollector).
- Business totals (handoffs, one-time links, reminders) are counted from their rows at scrape time
  (`BusinessTotals`). They happen in other processes too (`madoguchi scheduler` sends the reminders, `links
  send-reset` issues links from the command line), and rows are the one record all of them share. What each
  row counts for is defined in core.tallies, which also keeps the counts of rows that retention deletes, so
  these counters never go down.

Every label value comes from a closed set (the channel and intent enums, ja/en/unknown, the core's enums),
never from what a student typed, so the number of series stays bounded.
"""

import logging
from collections.abc import Iterable, Iterator
from functools import cache
from typing import NamedTuple, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from core import tallies
from core.enums import Language
from core.handoffs import TicketStatus
from core.models import HandoffTicket, Reminder
from core.reminders import Status
from core.services import Core
from intents.types import Intent

log = logging.getLogger(__name__)

PREFIX = "madoguchi_"
RELAYED = "relayed"  # the intent label of a message passed to an agent (the bot did not answer it)
OTHER = "other"  # the intent label of a message answered without one: a form's step or button, an empty message
UNKNOWN = tallies.UNKNOWN  # a label value outside its closed set (a row written by a newer version, say)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The metrics of this process (one-process mode); multi-process mode reads every worker's files instead.
REGISTRY = CollectorRegistry(auto_describe=True)
MESSAGES = Counter("madoguchi_messages", "Messages handled, by channel, understood intent (out_of_scope: not "
                   "understood; other: a form's step or button; relayed: passed to an agent) and language (ja, en "
                   "or unknown).", ["channel", "intent", "lang"], registry=REGISTRY)
FALLBACKS = Counter("madoguchi_fallbacks", "Messages the bot did not understand (answered with did-you-mean "
                    "buttons, the fallback, or the offer of a person).", ["channel", "lang"], registry=REGISTRY)
LATENCY = Histogram("madoguchi_message_seconds", "Seconds from receiving a message to having its replies "
                    "(the conversation lock, the database and understanding included).", ["channel"],
                    buckets=LATENCY_BUCKETS, registry=REGISTRY)


LANGUAGES = tallies.allowed(Language)


def language_label(lang: object) -> str:
    """`ja` or `en`, else `unknown`."""
    return tallies.label(lang, LANGUAGES)


def count_message(channel: str, intent: str, lang: object, *, fallback: bool, seconds: float) -> None:
    """Count one handled message.

    Args:
        channel: The channel enum's value.
        intent: The intent enum's value, or RELAYED. Out of scope yet no fallback (a form took the message)
            is counted as OTHER, so that out_of_scope counts what the bot did not understand.
        lang: The conversation's language (a Language, its value, or None).
        fallback: Whether the bot answered that it did not understand.
        seconds: How long answering took.
    """
    lang_label = language_label(lang)
    if intent == Intent.OUT_OF_SCOPE.value and not fallback:
        intent = OTHER
    _messages(channel, intent, lang_label).inc()
    if fallback:
        _fallbacks(channel, lang_label).inc()
    _latency(channel).observe(seconds)


# Each series' child kept once found: `labels()` checks and locks on every call, a few per cent of a turn. The
# label sets are closed (see above), so these stay small.
@cache
def _messages(channel: str, intent: str, lang: str) -> Counter:
    return MESSAGES.labels(channel=channel, intent=intent, lang=lang)


@cache
def _fallbacks(channel: str, lang: str) -> Counter:
    return FALLBACKS.labels(channel=channel, lang=lang)


@cache
def _latency(channel: str) -> Histogram:
    return LATENCY.labels(channel=channel)


def multiprocess() -> bool:
    """True when this process keeps its values in PROMETHEUS_MULTIPROC_DIR (decided when prometheus_client
    was first imported, which is why `serve --workers N` sets the variable before starting the workers)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def exposition(core: Core, accept: str | None = None) -> tuple[bytes, str]:
    """The scrape: every madoguchi_ series, in the format the scraper accepts (text or OpenMetrics).

    Returns:
        The body and its content type.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_MessageTotals())
    registry.register(BusinessTotals(core))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


class _MessageTotals:
    """This process's per-message metrics, or all workers' in multi-process mode, and the fallback ratio."""

    def collect(self) -> Iterator[Metric]:
        source = MultiProcessCollector(None) if multiprocess() else REGISTRY
        answered = fallbacks = 0.0
        for family in source.collect():
            for sample in family.samples:
                if sample.name == "madoguchi_messages_total" and sample.labels.get("intent") != RELAYED:
                    answered += sample.value
                elif sample.name == "madoguchi_fallbacks_total":
                    fallbacks += sample.value
            yield family
        ratio = GaugeMetricFamily("madoguchi_fallback_ratio", "Share of the messages the bot answered that it did "
                                  "not understand, since the service started (for alerts prefer "
                                  "rate(madoguchi_fallbacks_total) / rate(madoguchi_messages_total)).")
        ratio.add_metric([], fallbacks / answered if answered else 0.0)
        yield ratio


class _Count(NamedTuple):
    labels: tuple[str, ...]
    value: int


class BusinessTotals:
    """Handoff, one-time link and reminder totals counted from the database at scrape time."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def collect(self) -> Iterator[Metric]:
        """The totals, and madoguchi_database_up (0 when the database could not be read: no totals then)."""
        up = GaugeMetricFamily("madoguchi_database_up", "1 when the business totals could be read from the database.")
        try:
            families = list(self._families())
        except Exception:  # a scrape must answer: the per-message metrics are still worth having
            log.exception("metrics: reading the business totals failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        with self.core.transaction() as session:
            counted = tallies.totals(session)
            open_tickets = session.execute(
                select(HandoffTicket.status, func.count())
                .where(HandoffTicket.closed_how.is_(None), HandoffTicket.status != TicketStatus.RESOLVED.value)
                .group_by(HandoffTicket.status)).all()
            scheduled = session.execute(select(Reminder.kind, func.count())
                                        .where(Reminder.status == Status.SCHEDULED.value)
                                        .group_by(Reminder.kind)).all()

        # The counters, defined with what each row adds to them in core.tallies (deleted rows kept as tallies).
        for series in tallies.SERIES:
            yield _counter(PREFIX + series.name, series.doc, list(series.labels),
                           (_Count(labels, count) for labels, count in counted[series.name].items()))
        statuses = tallies.allowed(TicketStatus)
        yield _gauge("madoguchi_handoffs_open", "Handoff tickets open now, waiting for an agent or assigned.",
                     ["status"], (_Count((tallies.label(status, statuses),), count) for status, count in open_tickets))
        yield _gauge("madoguchi_reminders_scheduled", "Reminders waiting for their time.", ["kind"],
                     (_Count((tallies.label(kind, tallies.KINDS),), count) for kind, count in scheduled))


def _merged(counts: Iterable[_Count]) -> dict[tuple[str, ...], int]:
    """Counts added up by their labels (several rows can map to one label set, `unknown` say)."""
    merged: dict[tuple[str, ...], int] = {}
    for labels, value in counts:
        merged[labels] = merged.get(labels, 0) + int(value)
    return merged


def _counter(name: str, documentation: str, labels: list[str], counts: Iterable[_Count]) -> CounterMetricFamily:
    return _filled(CounterMetricFamily(name, documentation, labels=labels), counts)


def _gauge(name: str, documentation: str, labels: list[str], counts: Iterable[_Count]) -> GaugeMetricFamily:
    return _filled(GaugeMetricFamily(name, documentation, labels=labels), counts)


FamilyT = TypeVar("FamilyT", CounterMetricFamily, GaugeMetricFamily)


def _filled(family: FamilyT, counts: Iterable[_Count]) -> FamilyT:
    """The family with one sample per label set, counts of the same labels added up, in a stable order."""
    for label_values, value in sorted(_merged(counts).items()):
        family.add_metric(list(label_values), value)
    return family
