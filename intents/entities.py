"""Entity extraction: catalog items, copies, payment and delivery methods, student numbers, emails, dates."""

import logging
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
    re.compile(r"(?<![\d.])(?P<n>\d{1,2})\s?(?:通(?!り)|部|枚|セット|まい|つう|つ(?=$|[\s、。,.!?]|で|ください|下さい|お願い|ほしい|欲しい))"),
    # 一通り is "roughly" and 一部 "a part of": kanji counts only 通 not followed by り, and 部/枚 from 二 up.
    re.compile(r"(?P<n>[一二三四五六七八九十]{1,3})\s?通(?!り)|(?P<n2>[二三四五六七八九十]{1,3})\s?(?:部|枚)"),
    re.compile(r"(?<![\d.])(?P<n>\d{1,2})\s?(?:copies|copy|sets?|prints?)\b"),
    re.compile(rf"\b(?:a\s)?(?P<n>{'|'.join(_EN_COUNTS)})\s(?:copies|copy|sets?|prints?)\b"),
    re.compile(r"(?<![a-z0-9])[x×]\s?(?P<n>\d{1,2})(?![\d:])"),
    # "two transcripts", "3 enrollment certificates": a count before the certificate named.
    # (only the count is the entity: the certificate is an item of its own).
    re.compile(rf"(?<![\d.:/])\b(?P<n>\d{{1,2}}|{'|'.join(_EN_COUNTS)})(?=\s(?:(?:official|academic|english|more|"
               r"extra|enrol(?:l)?ment|graduation|expected graduation)\s){0,2}"
               r"(?:transcripts?|certificates?|certs?)\b)"),
)
# A choice named only to be set aside: 「PayPayやめて」「PayPayじゃなくて」, "instead of PayPay", "not PayPay".
_CHOICES = frozenset({EntityType.ITEM, EntityType.PAYMENT_METHOD, EntityType.DELIVERY_METHOD})
_SET_ASIDE_AFTER = re.compile(r"\s*(?:は|を|で|の)?\s*(?:やめ|止め|じゃな|ではな|じゃあな|なしで|取り消)")
_SET_ASIDE_BEFORE = re.compile(r"(?:instead of|rather than|not|no longer|other than)\s+(?:the |a |an |by |with )?$")


def _set_aside(text: str, start: int, end: int) -> bool:
    """True when the words around a choice set it aside rather than choose it."""
    return bool(_SET_ASIDE_AFTER.match(text, end) or _SET_ASIDE_BEFORE.search(text, max(0, start - 20), start))


# Store names alone may mean paying there or printing there; the words around them decide.
_STORE_NAMES = (
    "コンビニ", "こんびに", "コンビニエンスストア", "ローソン", "ろーそん", "ファミマ", "ふぁみま", "ファミリーマート",
    "セブン", "せぶん", "セブイレ", "セブンイレブン", "せぶんいれぶん", "セブン-イレブン", "セブン・イレブン", "7-11",
    "7/11", "7-eleven", "7eleven", "7 eleven", "seven eleven", "seven-eleven", "seveneleven", "lawson", "famima",
    "familymart", "family mart", "family-mart", "convenience store", "konbini", "conbini", "combini", "cvs",
    # The store already talked of: 「お店でカード使える？」, "can I use my card at the store?"
    "お店", "おみせ", "店頭", "店舗", "レジ", "at the store", "in the store", "at the shop", "in store", "in-store",
    "at the register", "at the counter",
)  # fmt: skip
_PAYMENT_CUES = re.compile(r"払|支払|決済|現金|お金|料金|代金|\bpay|\bpaid|\bcash|\bmoney|\bharau|\bshiharai|\bkessai")
# Words of using count for paying only when the message names a payment method: 「セブンでPayPay使える?」.
_USE_CUES = re.compile(r"使え|使用でき|いける|いけます|\buse|\baccept")
_DELIVERY_CUES = re.compile(
    r"印刷|プリント|発行|コピー|受け取|受取|出力|出せ|(?<![提引申])出して|取れ|\bprint|\bcop(?:y|ies|ier)|machine"
    r"|\bpick|\bcollect|\binsatsu|\bpurinto"
)
# Words that name a card only where the talk is of paying: "visa" is also the immigration visa, "master" the
# degree, "cc" a mail's copy line, "card" and "カード" the student ID or the parking card.
_CONTEXT_FORMS = frozenset({"visa", "master", "マスター", "cc", "card", "カード"})
_CARD_CUES = re.compile(
    r"払|支払|決済|使え|使用でき|いける|いけます|クレ|カード|ブランド|\bpay|\bpaid|\bcharg|\baccept|\bcards?\b|\bbrand"
)
# How far (in characters between them) a cue word, payment method or store may be from a context form to
# count; no cue word is longer than _LONGEST_CUE, so a search that far around the form sees every one.
_CUE_WINDOW = 10
_LONGEST_CUE = 8
# A cue counts within its own clause, and a named payment method or store also across a list's separator
# ("VISA、JCB", "visa, mastercard"): "for my visa, can I pay by card?" is no card named visa.
_CLAUSE_BREAK = re.compile(r"[。.!?;,、\n]")
_LIST_GAP = re.compile(r"[\s,、/・]*(?:(?:or|and|か|と|や|とか)[\s,、/・]*)?")
# Some other card: ICカード, ポイントカード, 学生証のカード, 駐車場カード; student ID card, debit card.
_NOT_A_CREDIT_CARD = r"(?:[ァ-ヴー]|[a-z0-9]|(?:学生証?|駐車場?|保険証?|在留|図書館?|会員|診察|交通)\s?の?\s?)$"
_NOT_A_CREDIT_CARD_EN = (
    r"\b(?:id|ic|student|parking|pass|debit|cash|bank|library|gift|sim|point|insurance|number|residence"
    r"|residency|health|loyalty|member|membership|prepaid|business|report|sd|memory|key|transport|access)"
    r"(?:'s)?\s$"
)
# Forms that are no match next to certain words: (a pattern searched for ending where the form starts, one
# matched where it ends). Japanese has no spaces: 保険 is also in 健康保険 and 保険証, カード in ICカード.
_GUARDS = {
    "在証": (r"[\u4e00-\u9fff々]$", None),  # 存在証明, 滞在証明
    "保険": (r"(?:健康|国民|社会|医療|生命|自動車|火災|雇用|介護|旅行|損害)$", r"証"),
    "ほけん": (r"(?:けんこう|こくみん|しゃかい)$", r"しょう"),
    "insurance": (r"\b(?:health|national|medical|life|car|auto|travel|fire|dental)\s$", r"\s?cards?\b"),
    "郵便": (None, r"番号"),
    # 学生証明書 may mean the student ID or a certificate of enrollment: neither is guessed.
    "学生証": (None, r"明"),
    "がくせいしょう": (None, r"め"),
    "カード": (_NOT_A_CREDIT_CARD, r"[ァ-ヴー]"),
    "カード払い": (_NOT_A_CREDIT_CARD, None),
    "カード決済": (_NOT_A_CREDIT_CARD, None),
    "card": (_NOT_A_CREDIT_CARD_EN, None),
    "card payment": (_NOT_A_CREDIT_CARD_EN, None),
    "visa": (
        r"\b(?:student|study|work|working|tourist|travel|entry|spouse|residence|immigration|dependent|visitor"
        r"|transit|business|college)\s$",
        r"\s?(?:application|status|renew|extension|extend|expir|interview|office|sponsor|holder|type|category"
        r"|document|stamp|process|procedure|requirement)",
    ),
    "master": (None, r"(?:'s|’s|s\b|\s?(?:degree|course|program|student|thesis|level))"),
    "マスター": (r"[ァ-ヴー]$", r"(?:[ァ-ヴー]|課程|コース|の?学生|生|論文|[1-9]年|修了)"),
    "cc": (None, r"(?::|'d|’d|ed\b)"),
    "au": (None, r"\s?(?:pay(?![a-z])|ペイ|revoir|pair)"),  # au PAY is a code payment the guide does not list
    "セブン": (None, r"(?:[ァ-ヴー]|銀行)"),  # セブンティーン, セブン銀行 (an ATM, not the store's till)
    "ローソン": (None, r"銀行"),
    "7-11": (None, r"\s?[日月時分年%]"),  # a range: 7-11日
    "7/11": (None, r"\s?[日月時分年%]"),
}
_GUARD_PATTERNS = {
    form: (re.compile(before) if before else None, re.compile(after) if after else None)
    for form, (before, after) in _GUARDS.items()
}
_GUARD_REACH = 24  # characters before a form that a guard looks at
# "7/11" is a date to the date finder; after "at" or before で and a word of paying or printing, it is the store.
_AT_STORE = re.compile(r"(?:\b(?:at|near) (?:the |a )?|@\s?)$")
_STORE_USE_AFTER = re.compile(
    r"\s?で[^。.!?\n]{0,6}?(?:払|決済|現金|印刷|プリント|コピー|発行|使え|いけ|クレ|カード|ペイ|pay)"
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


def _guarded(text: str, form: str, start: int) -> bool:
    """True when the words around a form found at `start` say it is part of something else (see _GUARDS)."""
    guard = _GUARD_PATTERNS.get(form)
    if guard is None:
        return False
    before, after = guard
    if before is not None and before.search(text, max(0, start - _GUARD_REACH), start):
        return True
    return after is not None and after.match(text, start + len(form)) is not None


def _between(text: str, start: int, end: int, other_start: int, other_end: int) -> str | None:
    """The text between a span and another one, or None when they overlap."""
    if other_end <= start:
        return text[other_end:start]
    if other_start >= end:
        return text[end:other_start]
    return None


def _cue_near(text: str, start: int, end: int) -> bool:
    """True if a word of paying is near the span, in its clause."""
    low, high = max(0, start - _CUE_WINDOW - _LONGEST_CUE), min(len(text), end + _CUE_WINDOW + _LONGEST_CUE)
    for cue in _CARD_CUES.finditer(text, low, high):
        gap = _between(text, start, end, cue.start(), cue.end())
        if gap is not None and len(gap) <= _CUE_WINDOW and not _CLAUSE_BREAK.search(gap):
            return True
    return False


def _listed_with(text: str, span: tuple[int, int], other: tuple[int, int]) -> bool:
    """True if another form is near the span, in its clause or in the same list ("VISA、JCB")."""
    gap = _between(text, span[0], span[1], other[0], other[1])
    return (
        gap is not None
        and len(gap) <= _CUE_WINDOW
        and (not _CLAUSE_BREAK.search(gap) or bool(_LIST_GAP.fullmatch(gap)))
    )


@dataclass(frozen=True, slots=True)
class _StoreCues:
    """Where a message has words of paying and of printing, found once for all the store names in it.

    A payment method the message names is a cue for paying there, and with one named, so are words of using:
    「セブンでクレカ使える?」 and "credit card at 7-eleven" ask whether the store takes the card (it takes
    cash only, which the answer must say), so the store is the convenience-store payment too.
    """

    paying: tuple[list[tuple[int, int]], ...]
    printing: list[tuple[int, int]]
    breaks: list[int]  # where clauses end (、 , 。 …), in order
    length: int

    @classmethod
    def find(cls, text: str, payments: list[tuple[int, int]]) -> "_StoreCues":
        paying = [[cue.span() for cue in _PAYMENT_CUES.finditer(text)], sorted(payments)]
        if payments:
            paying.append([cue.span() for cue in _USE_CUES.finditer(text)])
        return cls(tuple(paying), [cue.span() for cue in _DELIVERY_CUES.finditer(text)],
                   [found.start() for found in _CLAUSE_BREAK.finditer(text)], len(text))

    def _nearest(self, spans: list[tuple[int, int]], start: int, end: int) -> int | None:
        """Characters to the nearest cue (spans sorted, not overlapping), a cue in another clause counting as
        farther than any in the store's own ("printed at a convenience store, paying by card": printing there,
        paying by card). Only the nearest cue on each side can be the nearest: one farther on the same side is
        across every break the nearer one is across."""
        index = bisect_left(spans, end, key=lambda span: span[0])
        found = []
        if index < len(spans):  # the first cue after the store
            found.append(spans[index][0] - end + (self.length if self._across(end, spans[index][0]) else 0))
        if index > 0:  # the last cue before it (or around it)
            cue_end = spans[index - 1][1]
            found.append(max(start - cue_end, 0) + (self.length if self._across(cue_end, start) else 0))
        return min(found, default=None)

    def _across(self, left: int, right: int) -> bool:
        """True if a clause ends between the two positions."""
        at = bisect_left(self.breaks, left)
        return at < len(self.breaks) and self.breaks[at] < right

    def resolve(self, start: int, end: int) -> tuple[EntityType, str] | None:
        """Paying or printing at the store named at this span, by the nearest cue; None without any cue."""
        distances = [distance for spans in self.paying if (distance := self._nearest(spans, start, end)) is not None]
        to_pay, to_print = min(distances, default=None), self._nearest(self.printing, start, end)
        if to_pay is not None and (to_print is None or to_pay < to_print):
            return EntityType.PAYMENT_METHOD, PaymentMethod.CONVENIENCE_STORE
        if to_print is not None:
            return EntityType.DELIVERY_METHOD, DeliveryMethod.CONVENIENCE_STORE
        return None


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
        # Forms by their first two characters (one for a one-character form), longest first: a left-to-right
        # scan takes the longest form at each place, and tries only the few forms that can start there.
        self._by_prefix: dict[str, list[str]] = {}
        for form in sorted(self._forms, key=len, reverse=True):
            self._by_prefix.setdefault(form[:2], []).append(form)
        self._one_char_forms = any(len(form) == 1 for form in self._forms)

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
                if entity_type in _CHOICES and _set_aside(normalized.text, start, end):
                    continue  # 「PayPayやめてコンビニで」, "cash instead of paypay": not the choice
                # Claimed spans never overlap, so sorted by start they are sorted by end too: only the
                # neighbours of the new span can overlap it.
                place = bisect_left(claimed, (start, end))
                if (place > 0 and claimed[place - 1][1] > start) or (place < len(claimed) and claimed[place][0] < end):
                    continue
                claimed.insert(place, (start, end))
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
            if text[start:end] == "7/11" and (
                _AT_STORE.search(text, max(0, start - 12), start) or _STORE_USE_AFTER.match(text, end)
            ):
                continue  # the store, left to the dictionary
            yield start, end, EntityType.DATETIME, value

    def _dictionary_entities(self, text: str, _now: datetime) -> Iterable[tuple[int, int, EntityType, str]]:
        matches = list(self._scan(text))
        resolved = [None if form in _CONTEXT_FORMS else self._forms[form] for _, _, form in matches]
        stores = [index for index, (_, _, form) in enumerate(matches) if self._forms[form] is None]
        self._resolve_context_forms(text, matches, resolved, frozenset(stores))
        if stores:
            payments = [
                (start, end)
                for (start, end, _), found in zip(matches, resolved, strict=True)
                if found is not None and found[0] is EntityType.PAYMENT_METHOD
            ]
            cues = _StoreCues.find(text, payments)
            for index in stores:
                resolved[index] = cues.resolve(matches[index][0], matches[index][1])
        for (start, end, _), found in zip(matches, resolved, strict=True):
            if found is not None:
                yield start, end, found[0], found[1]

    def _scan(self, text: str) -> Iterable[tuple[int, int, str]]:
        """Forms of the tables and store names, left to right: the longest at each place, none overlapping."""
        position = 0
        while position < len(text):
            candidates = self._by_prefix.get(text[position : position + 2], ())
            if self._one_char_forms:
                candidates = [*candidates, *self._by_prefix.get(text[position], ())]
            for form in candidates:
                if not text.startswith(form, position):
                    continue
                end = _form_end(text, form, position)
                if end is None or _guarded(text, form, position):
                    continue
                yield position, end, form
                position = end
                break
            else:
                position += 1

    def _resolve_context_forms(
        self,
        text: str,
        matches: list[tuple[int, int, str]],
        resolved: list[tuple[EntityType, str] | None],
        stores: frozenset[int],
    ) -> None:
        """Resolve "visa", "カード" and the like in place: a payment method only near a word of paying, a named
        payment method or a store name, and one resolved counts for the next ("VISA/Master/JCB")."""
        pending = {index for index, (_, _, form) in enumerate(matches) if form in _CONTEXT_FORMS}
        if not pending:
            return
        anchor = [
            index in stores or (found is not None and found[0] is EntityType.PAYMENT_METHOD)
            for index, found in enumerate(resolved)
        ]
        for index in sorted(pending):
            if _cue_near(text, matches[index][0], matches[index][1]):
                anchor[index] = True
        # Only the nearest anchor on each side can be near enough, so a sweep each way reaches every chain.
        for order in (range(len(matches)), range(len(matches) - 1, -1, -1)):
            last: int | None = None
            for index in order:
                if not anchor[index] and index in pending and last is not None:
                    anchor[index] = _listed_with(text, matches[index][:2], matches[last][:2])
                if anchor[index]:
                    last = index
        for index in pending:
            if anchor[index]:
                resolved[index] = self._forms[matches[index][2]]

    @staticmethod
    def _copies(text: str, _now: datetime) -> Iterable[tuple[int, int, EntityType, int]]:
        for pattern in _COPIES:
            for match in pattern.finditer(text):
                raw = match.group("n") or match.groupdict().get("n2") or ""
                count = int(raw) if raw.isdigit() else _EN_COUNTS.get(raw) or kanji_number(raw)
                if 1 <= count <= 99:
                    yield match.start(), match.end(), EntityType.COPIES, count
