"""Entity extraction: catalog items, copies, payment and delivery methods, student numbers, emails, dates."""

import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from core.enums import DeliveryMethod, PaymentMethod
from intents.data import DataError, load_entity_table
from intents.datetimes import TOKYO, find_datetimes, kanji_number
from intents.normalize import Normalized, normalize, normalize_with_offsets
from intents.types import Entity, EntityType, ItemCode

logger = logging.getLogger(__name__)

DEFAULT_STUDENT_NUMBER_PATTERN = r"[0-9]{2}[A-Za-z][0-9]{4}"

_EMAIL = re.compile(r"(?<![\w.+-])[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?![a-z0-9])")
_EN_COUNTS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "single": 1,
}  # fmt: skip
_COPIES = (
    re.compile(r"(?<![\d.])(?P<n>\d{1,2})\s?(?:通(?!り)|部|枚|セット)"),
    # 一通り is "roughly" and 一部 "a part of": kanji counts only 通 not followed by り, and 部/枚 from 二 up.
    re.compile(r"(?P<n>[一二三四五六七八九十]{1,3})\s?通(?!り)|(?P<n2>[二三四五六七八九十]{1,3})\s?(?:部|枚)"),
    re.compile(r"(?<![\d.])(?P<n>\d{1,2})\s?(?:copies|copy|sets?|prints?)\b"),
    re.compile(rf"\b(?:a\s)?(?P<n>{'|'.join(_EN_COUNTS)})\s(?:copies|copy|sets?|prints?)\b"),
    re.compile(r"(?<![a-z0-9])[x×]\s?(?P<n>\d{1,2})(?![\d:])"),
)
# Store names alone may mean paying there or printing there; the words around them decide.
_STORE_NAMES = (
    "コンビニ", "コンビニエンスストア", "ローソン", "ファミマ", "ファミリーマート", "セブン", "セブンイレブン",
    "セブン-イレブン", "7-11", "7-eleven", "seven eleven", "seven-eleven", "lawson", "familymart",
    "family mart", "convenience store", "konbini", "conbini", "combini",
)  # fmt: skip
_PAYMENT_CUES = re.compile(r"払|支払|決済|現金|お金|料金|代金|\bpay|\bpaid|\bcash|\bmoney")
_DELIVERY_CUES = re.compile(
    r"印刷|プリント|発行|コピー|受け取|受取|出力|\bprint|\bcop(?:y|ies|ier)|machine|\bpick|\bcollect"
)

_TYPES = {
    EntityType.ITEM.value: (EntityType.ITEM, ItemCode),
    EntityType.PAYMENT_METHOD.value: (EntityType.PAYMENT_METHOD, PaymentMethod),
    EntityType.DELIVERY_METHOD.value: (EntityType.DELIVERY_METHOD, DeliveryMethod),
}


def _is_word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _form_end(text: str, form: str, start: int) -> int | None:
    """Where a surface form found at `start` ends, or None when it is only part of a word.

    Forms in Latin letters match whole words only ("au" is not in "august"), plurals included.
    """
    end = start + len(form)
    if _is_word_char(form[0]) and start > 0 and _is_word_char(text[start - 1]):
        return None
    if not _is_word_char(form[-1]):
        return end
    if form[-1].isalpha():
        for suffix in ("es", "s"):
            if text.startswith(suffix, end) and not (
                end + len(suffix) < len(text) and _is_word_char(text[end + len(suffix)])
            ):
                return end + len(suffix)
    return None if end < len(text) and _is_word_char(text[end]) else end


class EntityExtractor:
    """Finds entities in a message, with spans on the original text. Immutable and thread-safe once built."""

    def __init__(
        self,
        student_number_pattern: str = DEFAULT_STUDENT_NUMBER_PATTERN,
        tables_path: Path | None = None,
    ) -> None:
        """Compile the patterns and the dictionary of surface forms.

        Args:
            student_number_pattern: Regex of one student number, matched on the NFKC-normalized, case-folded
                text as a whole word (case-insensitively); the value is upper-cased.
            tables_path: The Rasa `entities.yml` with lookups and synonyms; default: the package's.

        Raises:
            intents.data.DataError: The tables file is invalid or names an unknown type or value.
        """
        self._student_number = re.compile(rf"(?<![0-9a-z])(?:{student_number_pattern})(?![0-9a-z])", re.IGNORECASE)
        self._forms: dict[str, tuple[EntityType, str] | None] = {}
        for form, (type_name, value_name) in load_entity_table(tables_path).forms.items():
            if type_name not in _TYPES:
                raise DataError(f"entities table: unknown entity type {type_name!r} for {form!r}")
            entity_type, values = _TYPES[type_name]
            try:
                self._forms[normalize(form)] = (entity_type, values(value_name))
            except ValueError as error:
                raise DataError(f"entities table: unknown {type_name} {value_name!r} for {form!r}") from error
        for name in _STORE_NAMES:
            self._forms.setdefault(normalize(name), None)
        # Forms by first character, longest first: a left-to-right scan takes the longest form at each place.
        self._by_first_char: dict[str, list[str]] = {}
        for form in sorted(self._forms, key=len, reverse=True):
            self._by_first_char.setdefault(form[0], []).append(form)

    def extract(self, text: str, now: datetime | None = None) -> tuple[Entity, ...]:
        """Find the entities of a message; never raises.

        Args:
            text: The original message.
            now: Reference time for relative dates; default: the current time in Asia/Tokyo.

        Returns:
            Entities ordered by position, none overlapping another. Where two finders claim the same
            characters, the earlier in this order wins: email, student number, datetime, dictionary
            (item, payment and delivery method), copies.
        """
        try:
            normalized = normalize_with_offsets(text)
        except Exception:
            logger.exception("entity extraction could not normalize the text")
            return ()
        return self.extract_normalized(text, normalized, now)

    def extract_normalized(self, text: str, normalized: Normalized, now: datetime | None = None) -> tuple[Entity, ...]:
        """Like `extract`, for a caller that has already normalized the text; never raises.

        Args:
            text: The original message.
            normalized: `normalize_with_offsets(text)`.
            now: Reference time for relative dates; default: the current time in Asia/Tokyo.

        Returns:
            Entities ordered by position, as `extract` returns them.
        """
        reference = now or datetime.now(TOKYO)
        finders: tuple[Callable[[str, datetime], Iterable[tuple[int, int, EntityType, str | int]]], ...] = (
            self._emails,
            self._student_numbers,
            self._datetimes,
            self._dictionary_entities,
            self._copies,
        )
        claimed: list[tuple[int, int]] = []
        entities: list[Entity] = []
        for finder in finders:
            try:
                found = list(finder(normalized.text, reference))
            except Exception:
                # A bad pattern or an unforeseen input must not cost the student an answer.
                logger.exception("entity finder %s failed", finder.__name__)
                continue
            for start, end, entity_type, value in found:
                if any(start < taken_end and taken_start < end for taken_start, taken_end in claimed):
                    continue
                claimed.append((start, end))
                entities.append(self._entity(normalized, text, start, end, entity_type, value))
        return tuple(sorted(entities, key=lambda entity: entity.start))

    @staticmethod
    def _entity(
        normalized: Normalized, text: str, start: int, end: int, entity_type: EntityType, value: str | int
    ) -> Entity:
        original_start, original_end = normalized.original_span(start, end)
        return Entity(entity_type, value, original_start, original_end, text[original_start:original_end])

    @staticmethod
    def _emails(text: str, _now: datetime) -> Iterable[tuple[int, int, EntityType, str]]:
        for match in _EMAIL.finditer(text):
            yield match.start(), match.end(), EntityType.EMAIL, match.group().lower()

    def _student_numbers(self, text: str, _now: datetime) -> Iterable[tuple[int, int, EntityType, str]]:
        for match in self._student_number.finditer(text):
            yield match.start(), match.end(), EntityType.STUDENT_NUMBER, match.group().upper()

    @staticmethod
    def _datetimes(text: str, now: datetime) -> Iterable[tuple[int, int, EntityType, str]]:
        for start, end, value in find_datetimes(text, now):
            yield start, end, EntityType.DATETIME, value

    def _dictionary_entities(self, text: str, _now: datetime) -> Iterable[tuple[int, int, EntityType, str]]:
        position = 0
        while position < len(text):
            for form in self._by_first_char.get(text[position], ()):
                end = _form_end(text, form, position) if text.startswith(form, position) else None
                if end is None:
                    continue
                resolved = self._forms[form] or self._store(text, position, end)
                if resolved is not None:
                    yield position, end, resolved[0], resolved[1]
                position = end
                break
            else:
                position += 1

    @staticmethod
    def _store(text: str, start: int, end: int) -> tuple[EntityType, str] | None:
        """Decide whether a store name means paying there or printing there, by the nearest cue word."""

        def distance(cues: re.Pattern[str]) -> int | None:
            gaps = [max(cue.start() - end, start - cue.end(), 0) for cue in cues.finditer(text)]
            return min(gaps, default=None)

        to_pay, to_print = distance(_PAYMENT_CUES), distance(_DELIVERY_CUES)
        if to_pay is not None and (to_print is None or to_pay < to_print):
            return EntityType.PAYMENT_METHOD, PaymentMethod.CONVENIENCE_STORE
        if to_print is not None:
            return EntityType.DELIVERY_METHOD, DeliveryMethod.CONVENIENCE_STORE
        return None

    @staticmethod
    def _copies(text: str, _now: datetime) -> Iterable[tuple[int, int, EntityType, int]]:
        for pattern in _COPIES:
            for match in pattern.finditer(text):
                raw = match.group("n") or match.groupdict().get("n2") or ""
                count = int(raw) if raw.isdigit() else _EN_COUNTS.get(raw) or kanji_number(raw)
                if 1 <= count <= 99:
                    yield match.start(), match.end(), EntityType.COPIES, count
