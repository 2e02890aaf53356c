"""Understanding one message: intent with calibrated confidence, candidates, entities and language."""

import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from core.enums import Language
from intents.classifier import MODEL_FORMAT, IntentModel, Scores, current_stamp, features, stamp_of, train
from intents.clauses import (
    Clause,
    gives_details,
    is_abusive,
    is_closer,
    is_self_introduction,
    split_clauses,
    strip_opener,
)
from intents.controls import control_word
from intents.data import data_hash
from intents.datetimes import TOKYO, in_tokyo
from intents.entities import EntityExtractor
from intents.language import detect_language
from intents.normalize import Normalized, normalize_with_offsets
from intents.readings import Reader, shared_reader
from intents.speech_acts import asks_how, is_question, is_request
from intents.types import Entity, EntityType, Intent, OutOfScopeKind, Topic, Understanding

logger = logging.getLogger(__name__)

# Below this calibrated probability the answer is out_of_scope, with the candidates for "did you mean…".
# Tuned by 5-fold cross-validation on the training data: at 0.35 about 4.5% of in-scope messages are
# sent to "did you mean…" (their intent is among the three buttons four times in five); at 0.45 twice as
# many are, for few more out-of-scope messages caught. The development set scores the same from 0.1 to 0.45.
CONFIDENCE_THRESHOLD = 0.35
# Longer messages are cut before any work (a worst-case 500 characters take ~1.5 ms): nobody needs more
# to ask about certificates, and a pasted page must not slow the bot down.
MAX_INPUT_CHARS = 500
CANDIDATE_COUNT = 3
SCORE_CACHE_SIZE = 4096  # texts whose scores are kept (one message's clauses, and the most repeated messages)
# Messages whose whole understanding is kept, for the day they were read on: students type the same few
# questions (「支払い方法」, "thank you") over and over, and reading one again costs a tenth of a millisecond.
UNDERSTOOD_CACHE_SIZE = 4096
# A message is placed outside the desk's topics (an `out_of_scope_kind`: campus, abuse, other) when the
# classifier gives out_of_scope at least this; below it the bot is merely unsure and offers "did you mean".
PLACED_MIN = 0.5


# A clause stands as a question of its own when the classifier is this sure of it alone and the message as a
# whole gives its intent at least SUPPORT_MIN: "学生証をなくしました。再発行したいです" is one question
# (the second clause alone might read as a password reset, the whole does not), "支払い方法と、電話番号を
# 教えて" two. Tuned on the training data's clauses and the held-out sets (benchmarks/nlu).
TOPIC_MIN = 0.5
SUPPORT_MIN = 0.03
MAX_TOPICS = 3
# A clause this sure of another question that the whole message does not bear out is offered as a button.
ASIDE_MIN = 0.7
# Another university matter beside a question of ours is a question of its own only this surely: the story
# a long message tells before its question often reads as one.
CAMPUS_TOPIC_MIN = 0.85
# A clause the classifier reads as a greeting, thanks or goodbye this surely is an opener or a closer.
SMALL_TALK_MIN = 0.5
# A clause that asks something, requests something or says a question word: a message with one is not a sign-off.
_ASKING = re.compile(
    r"[?？]|\b(?:how|what|when|where|which|who|why|can|could|is|are|do|does|will|would|should|please|want|need|"
    r"help|tell)\b|(?:か|かな|の|ください|下さい|たい|たいです|ほしい|欲しい|教えて|お願い(?:します)?|できる|いい|"
    r"でしょう)[。!！\s]*$|何|いつ|どこ|どう|いくら")
# A message of openers around a few words is small talk when the whole reads as it this surely and the few
# words alone read as nothing this surely.
OPENER_OVER = 0.7
OPENER_REST_CHARS = 12
ELLIPTICAL_CHARS = 10
ELLIPTICAL_WORDS = 5
# An English clause that points back to what was just named ("when does it close", "how much is that").
_POINTS_BACK = re.compile(r"\b(?:it|that|this|they|them|there)\b")
MIN_QUESTION_CHARS = 3
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
SMALL_TALK = frozenset({Intent.GREET, Intent.THANKS, Intent.GOODBYE})
# Intents of how an item is received or paid for: said as a wish for a named item (「成績証明書を実家に郵送して
# もらいたいんですけど」, "I need my transcript mailed home"), they apply for it.
_ORDER_DETAILS = frozenset({Intent.DELIVERY_OPTIONS, Intent.PAYMENT_METHODS})


class _Span(NamedTuple):
    """A question of a message with its context, as a span of the normalized text."""

    start: int
    end: int
    separate: bool  # the student marked a new question before or after it (a question mark, あと, also)


@dataclass(frozen=True, slots=True)
class _SpanReading:
    """What the classifier makes of one span alone."""

    intent: Intent
    probability: float
    campus: bool  # another university matter, which other offices answer
    ours: bool  # a question of the desk's that names what it is about (not small talk, not elliptical)
    stands: bool  # a question of its own: sure enough, and marked off or borne out by the whole message

    @property
    def offered_aside(self) -> bool:
        """True when the span reads clearly as a question of ours that does not stand: worth a button."""
        return self.ours and not self.stands and self.probability >= ASIDE_MIN


class Understander:
    """Turns a message into an `Understanding`. Holds only read-only state, so one instance serves all threads."""

    def __init__(self, model: IntentModel, extractor: EntityExtractor | None = None,
                 reader: Reader | None = None) -> None:
        """Wrap a trained model, an entity extractor and a reader of Japanese.

        Args:
            model: The trained intent classifier.
            extractor: The entity extractor; default: one with the default student-number pattern.
            reader: The reader of Japanese; default: the process's shared one.
        """
        self.model = model
        self._extractor = extractor or EntityExtractor()
        self._reader = reader or shared_reader()
        # A message's clauses are scored more than once (as asides, as questions): compute each once.
        self._scores = lru_cache(maxsize=SCORE_CACHE_SIZE)(
            lambda normalized_text: model.score(features(normalized_text, self._reader)))
        self._understood = lru_cache(maxsize=UNDERSTOOD_CACHE_SIZE)(self._read)

    def understand(self, text: str, now: datetime | None = None) -> Understanding:
        """Understand one message.

        A message without any letter, kana or kanji (empty, emoji, punctuation) is out_of_scope at once,
        with no candidates. Otherwise the message is cut into clauses; greetings, apologies, thanks and
        self-introductions around the question are set aside (unless nothing else is left), and what
        remains is classified as a whole and clause by clause. The best intent is the answer when its
        probability reaches `CONFIDENCE_THRESHOLD`; below it, the answer is out_of_scope and `candidates`
        holds the three best in-scope intents to offer as buttons. Clauses that each clearly ask something
        else become `topics`.

        Args:
            text: The message as the student wrote it.
            now: Reference time for relative dates ("明日", "next Monday"); default: now in Asia/Tokyo.

        Returns:
            The understanding; entity and topic spans index `text`.
        """
        # What a message means depends on its words and, for relative dates (「明日」), on the day in Tokyo only.
        return self._understood(text, in_tokyo(now or datetime.now(TOKYO)).date())

    def _read(self, text: str, today: date) -> Understanding:
        """`understand` for a message read on `today` (Asia/Tokyo)."""
        head = text[:MAX_INPUT_CHARS]
        normalized = normalize_with_offsets(head)
        # Noon of the day: the entities resolve dates (「明日」) against the day, and never read the clock time.
        entities = self._extractor.extract_normalized(head, normalized, datetime.combine(today, time(12), TOKYO))
        lang = detect_language(normalized.text, default=Language.JA)
        if not any(char.isalpha() for char in normalized.text):
            return Understanding(text, Intent.OUT_OF_SCOPE, 1.0, (), entities, lang)
        asked, scores, clauses = self._what_is_asked(normalized.text)
        candidates = tuple((intent, p) for intent, p in scores.ranking if intent is not Intent.OUT_OF_SCOPE)
        best, confidence = scores.ranking[0]
        kind = self._kind(scores, asked)
        if best is not Intent.OUT_OF_SCOPE and confidence < CONFIDENCE_THRESHOLD:
            best = Intent.OUT_OF_SCOPE
        topics, asides = self._topics(clauses, scores, normalized) if len(clauses) > 1 else ((), ())
        if topics:
            best, confidence, kind = topics[0].intent, topics[0].confidence, topics[0].out_of_scope_kind
        elif _wishes_for_item(best, entities, asked, normalized.text):
            best = Intent.ORDER_CERTIFICATE
        asides = tuple(intent for intent in asides if intent is not best)
        return Understanding(text, best, confidence, candidates[:CANDIDATE_COUNT], entities, lang, topics, kind,
                             control_word(normalized.text), asides)

    def _what_is_asked(self, normalized_text: str) -> tuple[str, Scores, list[Clause]]:
        """The part of a message that asks something, its scores, and its clauses (the whole message as one
        clause when no clause of its own is left): openers and closers cut off, a sign-off taken for itself."""
        every = split_clauses(normalized_text)
        clauses = self._questions(every)
        asked = normalized_text[clauses[0].start:clauses[-1].end] if clauses else normalized_text
        if self._signing_off(every) is not None:  # "ok, I'll call them. bye": no question, a goodbye
            asked, clauses = every[-1].text, []
        scores = self.score(asked)
        if asked != normalized_text and len(asked) <= OPENER_REST_CHARS and scores.ranking[0][1] < OPENER_OVER:
            # What is left after the openers says little (「すみません、今いいですか」): if the whole message is
            # clearly small talk, it is that.
            whole = self.score(normalized_text)
            if whole.ranking[0][0] in SMALL_TALK and whole.ranking[0][1] >= OPENER_OVER:
                asked, scores, clauses = normalized_text, whole, []
        return asked, scores, clauses or [Clause(0, len(normalized_text), normalized_text)]

    def score(self, normalized_text: str) -> Scores:
        """The classifier's scores for a normalized text (a message or a clause of one)."""
        return self._scores(normalized_text)

    def _questions(self, clauses: list[Clause]) -> list[Clause]:
        """The clauses that ask something: openers cut off, closers, self-introductions, the student's own
        details and (when something else is left) clauses the classifier reads as small talk or abuse left out."""
        kept = []
        for clause in clauses:
            rest = strip_opener(clause)
            if rest is not None and not is_closer(rest) and not is_self_introduction(rest) \
                    and not (len(clauses) > 1 and gives_details(rest)):
                kept.append(rest)
        if len(kept) > 1:
            asking = [clause for clause in kept if not self._aside(clause)]
            # Only when a question is left (「は？使えなさすぎだろポンコツ」 leaves 「は」: keep the insult).
            if sum(len(re.findall(r"\w", clause.text)) for clause in asking) >= MIN_QUESTION_CHARS:
                kept = asking
        return kept

    @staticmethod
    def _kind(scores: Scores, normalized_text: str) -> OutOfScopeKind | None:
        """The kind of out_of_scope, only when the classifier says so (not when it is merely unsure); abuse
        when an abusive word is in the message, and only then."""
        best, probability = scores.ranking[0]
        if is_abusive(normalized_text) and (best is Intent.OUT_OF_SCOPE or probability < CONFIDENCE_THRESHOLD):
            return OutOfScopeKind.ABUSE  # an insult and no clear question: abuse, even if the classifier hesitates
        if best is not Intent.OUT_OF_SCOPE or probability < PLACED_MIN \
                or scores.out_of_scope_kind not in set(OutOfScopeKind):
            return None
        kind = OutOfScopeKind(scores.out_of_scope_kind)
        return None if kind is OutOfScopeKind.ABUSE else kind

    def _signing_off(self, clauses: list[Clause]) -> Intent | None:
        """GOODBYE or THANKS for a message of several clauses that ends with one and asks nothing ("ok, I'll
        call them. bye", 「わかりました、電話してみます。ありがとうございました」); else None."""
        if len(clauses) < 2 or any(_ASKING.search(clause.text) for clause in clauses):
            return None
        last, probability = self.score(clauses[-1].text).ranking[0]
        return last if last in (Intent.GOODBYE, Intent.THANKS) and probability >= SMALL_TALK_MIN else None

    def _elliptical(self, text: str) -> bool:
        """True for a short clause that names nothing (「払いたいです」 after 「駐車場の使用料ってここから払う
        んですか？」, "when does it close" after "where is the library"): it goes on with the question before
        it rather than asking a new one."""
        if not _JAPANESE.search(text):
            return len(text.split()) <= ELLIPTICAL_WORDS and bool(_POINTS_BACK.search(text))
        return len(text) <= ELLIPTICAL_CHARS and not re.search(r"[a-z0-9]", text) \
            and not self._reader.read(text).names_a_thing

    def _aside(self, clause: Clause) -> bool:
        """True for a clause of small talk or abuse beside the question."""
        scores = self.score(clause.text)
        best, probability = scores.ranking[0]
        if best in SMALL_TALK:
            return probability >= SMALL_TALK_MIN
        return self._kind(scores, clause.text) is OutOfScopeKind.ABUSE

    def _topics(self, clauses: list[Clause], whole: Scores,
                normalized: Normalized) -> tuple[tuple[Topic, ...], tuple[Intent, ...]]:
        """The distinct questions of a message of several clauses, in order (() when it asks one thing), and
        the intents of clauses that read clearly as another question which the message as a whole does not
        support (to offer as buttons).

        A clause that only tells what happened is context for the question after it (the last such clause
        joins the question before it); each question with its context is classified alone.
        """
        support = dict(whole.ranking)
        topics: list[Topic] = []
        asides: list[Intent] = []
        for span in _question_spans(clauses):
            reading = self._read_span(normalized.text[span.start:span.end], span.separate, support)
            if reading.offered_aside and reading.intent not in asides:
                asides.append(reading.intent)
            _add_topic(topics, reading, normalized.original_span(span.start, span.end))
        answered = {topic.intent for topic in topics}
        return (tuple(topics[:MAX_TOPICS]) if len(topics) > 1 else (),
                tuple(intent for intent in asides if intent not in answered))

    def _read_span(self, text: str, separate: bool, support: dict[Intent, float]) -> _SpanReading:
        """How one question of a message (with its context) reads on its own.

        Args:
            text: The span of the normalized message.
            separate: Whether the student marked it off from the question before or after it.
            support: The probability of each intent for the message as a whole.
        """
        scores = self.score(text)
        intent, probability = scores.ranking[0]
        # Another university matter asked beside a question of ours gets its own answer too.
        campus = intent is Intent.OUT_OF_SCOPE and scores.out_of_scope_kind == OutOfScopeKind.CAMPUS
        ours = intent not in SMALL_TALK | {Intent.OUT_OF_SCOPE} and not self._elliptical(text)
        stands = ((campus and probability >= CAMPUS_TOPIC_MIN) or (ours and probability >= TOPIC_MIN)) \
            and (separate or support.get(intent, 0.0) >= SUPPORT_MIN)
        return _SpanReading(intent, probability, campus, ours, stands)


def _question_spans(clauses: list[Clause]) -> list[_Span]:
    """The questions of a message of several clauses, each with the clauses of context before it.

    A clause that only tells what happened is context for the question after it; context after the last
    question is part of it.
    """
    spans: list[tuple[int, int]] = []
    # Between two spans, whether the student marked a new question (a question mark, あと, also): then
    # each side stands on its own, whatever the message read as a whole leans to.
    marked: list[bool] = []
    context: int | None = None
    for index, clause in enumerate(clauses):
        start = clause.start if context is None else context
        following = clauses[index + 1] if index + 1 < len(clauses) else None
        added = bool(following and following.conjoined)  # 「…忘れました。あと…」: the next is another question
        if clause.asks() or added:
            spans.append((start, clause.end))
            marked.append(clause.question or added)
            context = None
        else:
            context = start
    if context is not None:  # context after the last question: part of it
        spans[-1:] = [(spans[-1][0] if spans else context, clauses[-1].end)]
        marked[-1:] = [False]
    return [_Span(start, end, separate) for (start, end), separate in zip(spans, _marked_off(marked), strict=True)]


def _marked_off(marked: list[bool]) -> list[bool]:
    """For each span, whether the student marked a new question before or after it, given whether they did
    between each span and the next."""
    return [(index > 0 and marked[index - 1]) or (index + 1 < len(marked) and marked[index])
            for index in range(len(marked))]


def _add_topic(topics: list[Topic], reading: _SpanReading, original: tuple[int, int]) -> None:
    """Add a span's question to `topics`, or (when it is not a question of its own, or repeats the one before
    it) stretch the last topic over it.

    Args:
        topics: The topics so far, in order; changed in place.
        reading: How the span reads alone.
        original: The span in the original text.
    """
    if topics and (not reading.stands or topics[-1].intent is reading.intent):
        last = topics[-1]
        topics[-1] = replace(last, confidence=max(last.confidence, reading.probability if reading.stands else 0.0),
                             end=original[1])
    elif reading.stands and all(topic.intent is not reading.intent for topic in topics):
        topics.append(Topic(reading.intent, reading.probability, *original,
                            OutOfScopeKind.CAMPUS if reading.campus else None))


def _wishes_for_item(best: Intent, entities: tuple[Entity, ...], asked: str, normalized_text: str) -> bool:
    """True when a question of how an item is received or paid for is said as a wish for a named item: an
    application for it."""
    return best in _ORDER_DETAILS and any(entity.type is EntityType.ITEM for entity in entities) \
        and is_request(asked) and not is_question(normalized_text) and not asks_how(asked)


def load_understander(model_path: Path | None = None) -> Understander:
    """Load the trained model, or train one when the file is missing, unreadable or stale.

    A model is stale when the training data's hash, the model format or the scikit-learn version differ
    from the ones it was saved with. A model trained here is saved to `model_path` for the next start
    (a failure to write is logged, not raised).

    Args:
        model_path: The joblib file; default: `core.settings.get_settings().nlu_model_path`.

    Returns:
        An understander ready to serve.

    Raises:
        intents.data.DataError: A model had to be trained and the training data is invalid.
    """
    if model_path is None:
        from core.settings import get_settings

        model_path = get_settings().nlu_model_path
    model = _load_if_fresh(model_path)
    if model is None:
        model = train()
        try:
            model.save(model_path)
        except OSError as error:
            logger.warning("could not save the intent model to %s: %s", model_path, error)
    return Understander(model)


def ensure_trained(model_path: Path) -> None:
    """Train and save the model unless a fresh one is saved, without loading a fresh one: a supervisor whose
    workers each load it (`serve --workers N`) pays for the training once and for no load of its own."""
    try:
        saved = json.loads(stamp_of(model_path).read_text(encoding="utf-8")) if model_path.is_file() else None
    except (OSError, ValueError):
        saved = None
    if saved != current_stamp():
        load_understander(model_path)


def _load_if_fresh(path: Path) -> IntentModel | None:
    if not path.is_file():
        logger.info("no intent model at %s; training one", path)
        return None
    try:
        model = IntentModel.load(path)
    except Exception as error:  # a truncated or foreign pickle: train instead of failing start-up
        logger.warning("cannot read the intent model at %s (%s); training one", path, error)
        return None
    import sklearn

    if getattr(model, "format_version", None) != MODEL_FORMAT or model.sklearn_version != sklearn.__version__:
        logger.info("intent model at %s was saved by another version; training one", path)
        return None
    if model.data_hash != data_hash():
        logger.info("intent model at %s is older than the training data; training one", path)
        return None
    return model
