"""How a message of several clauses is cut into questions with their context, and how topics are gathered."""

import pytest

from intents.clauses import split_clauses
from intents.normalize import normalize
from intents.types import Intent, OutOfScopeKind, Topic
from intents.understander import _add_topic, _marked_off, _question_spans, _SpanReading


def spans(text: str) -> list[tuple[str, bool]]:
    normalized = normalize(text)
    return [(normalized[span.start:span.end], span.separate) for span in _question_spans(split_clauses(normalized))]


def test_what_happened_is_context_for_the_question_after_it() -> None:
    assert spans("学生証をなくしました。再発行したいです") == [("学生証をなくしました。再発行したいです", False)]


def test_a_question_mark_or_ato_marks_both_sides_off() -> None:
    assert spans("支払い方法は？あと電話番号を教えて") == [("支払い方法は", True), ("電話番号を教えて", True)]


def test_two_things_asked_with_one_verb_are_two_spans_not_marked_off() -> None:
    assert spans("支払い方法と、電話番号を教えて") == [("支払い方法", False), ("電話番号を教えて", False)]


def test_context_after_the_last_question_joins_it() -> None:
    assert spans("在学証明書がほしい。成績証明書もほしい。もう払いました") == [
        ("在学証明書がほしい", False), ("成績証明書もほしい。もう払いました", False)]


def test_a_message_that_only_tells_what_happened_is_one_span() -> None:
    assert spans("i paid yesterday. i lost my student id") == [("i paid yesterday. i lost my student id", False)]


@pytest.mark.parametrize(("marked", "separate"), [
    ([], []),
    ([True], [False]),  # the last span's mark is never read: nothing follows it
    ([False, True, False], [False, True, True]),
    ([True, False, False], [True, True, False]),
])
def test_a_span_is_separate_when_a_mark_is_on_either_side(marked: list[bool], separate: list[bool]) -> None:
    assert _marked_off(marked) == separate


def reading(intent: Intent, probability: float, *, stands: bool = True, campus: bool = False) -> _SpanReading:
    return _SpanReading(intent, probability, campus, ours=not campus, stands=stands)


def test_a_question_that_stands_is_added_with_its_original_span() -> None:
    topics: list[Topic] = []
    _add_topic(topics, reading(Intent.REFUND, 0.8), (0, 5))
    _add_topic(topics, reading(Intent.OUT_OF_SCOPE, 0.9, campus=True), (6, 12))
    assert topics == [Topic(Intent.REFUND, 0.8, 0, 5), Topic(Intent.OUT_OF_SCOPE, 0.9, 6, 12, OutOfScopeKind.CAMPUS)]


def test_a_repeat_or_a_span_that_does_not_stand_stretches_the_last_topic() -> None:
    topics = [Topic(Intent.REFUND, 0.6, 0, 5)]
    _add_topic(topics, reading(Intent.REFUND, 0.9), (6, 10))
    _add_topic(topics, reading(Intent.CONTACT, 0.95, stands=False), (11, 20))
    assert topics == [Topic(Intent.REFUND, 0.9, 0, 20)]


def test_a_span_that_does_not_stand_before_any_topic_and_an_earlier_intent_are_left_out() -> None:
    topics: list[Topic] = []
    _add_topic(topics, reading(Intent.CONTACT, 0.9, stands=False), (0, 4))
    assert topics == []
    topics = [Topic(Intent.REFUND, 0.7, 0, 5), Topic(Intent.CONTACT, 0.7, 6, 9)]
    _add_topic(topics, reading(Intent.REFUND, 0.8), (10, 14))
    assert topics == [Topic(Intent.REFUND, 0.7, 0, 5), Topic(Intent.CONTACT, 0.7, 6, 9)]


def test_an_aside_is_a_clear_question_of_ours_that_does_not_stand() -> None:
    assert reading(Intent.CONTACT, 0.7, stands=False).offered_aside
    assert not reading(Intent.CONTACT, 0.69, stands=False).offered_aside
    assert not reading(Intent.CONTACT, 0.9).offered_aside
    assert not reading(Intent.OUT_OF_SCOPE, 0.9, stands=False, campus=True).offered_aside
