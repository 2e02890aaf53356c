"""Readings of a message: kanji, kana and romaji brought to one romaji key, and the lemmas of its words.

Students write 「支払い方法」, 「しはらいほうほう」 and "shiharai houhou" for the same words. SudachiPy (with
the sudachidict_core dictionary from PyPI) gives each Japanese word its reading and its normalized lemma
(メアド → メルアド, 第二 → 第2); jaconv spells the readings in romaji (pykakasi, measured too, took three
times as long); a few rules then fold the ways people spell romaji (shou, sho, syou) into one. The
classifier takes character n-grams of the key and the lemmas as features beside the characters themselves.
"""

import re
import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import jaconv

_JAPANESE_RUN = re.compile(r"[\u3041-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005-\u3007]+")
# Long vowels and the Kunrei/Nihon-shiki spellings, folded to one Hepburn-like form without long vowels:
# がくせいしょう, "gakuseishou", "gakuseisho" and "gakuseisyou" all become "gakuseisho".
_ROMAJI_FOLDS = (
    (re.compile(r"sy(?=[aueo])"), "sh"), (re.compile(r"(?:ty|cy)(?=[aueo])"), "ch"),
    (re.compile(r"(?:zy|jy)(?=[aueo])"), "j"), (re.compile(r"(?<![sc])hu"), "fu"),
    (re.compile(r"(?<![sc])ti"), "chi"), (re.compile(r"(?<![ts])tu"), "tsu"), (re.compile(r"(?<!s)si"), "shi"),
    (re.compile(r"zi"), "ji"), (re.compile(r"ou|oo|oh(?![aiueo])"), "o"), (re.compile(r"uu"), "u"),
    (re.compile(r"aa"), "a"), (re.compile(r"ii"), "i"), (re.compile(r"ee"), "e"),
    (re.compile(r"m(?=[bmp])"), "n"),
)
RUN_CACHE_SIZE = 20_000  # runs of Japanese script whose reading is kept (a few MB)
# Content words carry the meaning; particles and endings would only repeat what the characters say.
_CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞", "接尾辞", "代名詞", "感動詞"})


@dataclass(frozen=True, slots=True)
class Reading:
    """A message's romaji key (every Japanese word spelled by its reading), its content lemmas, and whether its
    Japanese names a thing (a noun) or only does something (「払いたいです」, 「できますか」)."""

    key: str
    lemmas: tuple[str, ...]
    names_a_thing: bool = False


def fold_romaji(text: str) -> str:
    """Fold romaji spelling variants and long vowels into one form (shoumeisho, syomeisyo → shomeisho).

    Args:
        text: Lower-case romaji (or any Latin text: English words are folded the same way, harmlessly,
            since training and scoring fold alike).

    Returns:
        The folded text.
    """
    for pattern, replacement in _ROMAJI_FOLDS:
        text = pattern.sub(replacement, text)
    return text


class Reader:
    """Reads messages with SudachiPy and jaconv. Thread-safe: each thread gets its own tokenizer."""

    def __init__(self) -> None:
        """Open the dictionary (memory-mapped, about 40 ms)."""
        from sudachipy import Dictionary

        self._dictionary = Dictionary(dict="core")
        self._local = threading.local()
        # The clauses of a message repeat its runs, and students repeat words: read each run once.
        self._run_cache = lru_cache(maxsize=RUN_CACHE_SIZE)(self._read_run)

    def _tokenizer(self) -> Any:
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            from sudachipy import SplitMode

            tokenizer = self._local.tokenizer = self._dictionary.tokenizer(SplitMode.C)
        return tokenizer

    @staticmethod
    def _romaji(kana: str) -> str:
        # jaconv spells ー as "-" and a lone ッ as "xtsu"; the long vowel goes with the folding anyway.
        return jaconv.kana2alphabet(jaconv.kata2hira(kana)).replace("-", "").replace("xtsu", "")

    def _read_run(self, run: str) -> tuple[str, tuple[str, ...], bool]:
        """The romaji, the content lemmas and whether a noun is among the words of one run of Japanese script."""
        readings, lemmas, noun = [], [], False
        for morpheme in self._tokenizer().tokenize(run):
            reading = morpheme.reading_form()
            readings.append(reading if reading and reading != "キゴウ" else morpheme.surface())
            part_of_speech = morpheme.part_of_speech()[0]
            if part_of_speech in _CONTENT_POS:
                lemmas.append(morpheme.normalized_form())
            noun = noun or part_of_speech in ("名詞", "代名詞")
        return self._romaji("".join(readings)), tuple(lemmas), noun

    def read(self, normalized_text: str) -> Reading:
        """The romaji key and content lemmas of a normalized message.

        Japanese runs are analysed; everything else (Latin words, digits, symbols) is kept as written, so
        romaji typed by a student meets the reading of the kanji. The Japanese words of one run are joined
        without spaces, because hiragana-only text is cut into words differently from kanji.

        Args:
            normalized_text: Output of `intents.normalize.normalize` (NFKC, case-folded).

        Returns:
            The reading.
        """
        pieces: list[str] = []
        lemmas: list[str] = []
        names_a_thing = False
        position = 0
        for run in _JAPANESE_RUN.finditer(normalized_text):
            pieces.append(normalized_text[position:run.start()])
            romaji, run_lemmas, noun = self._run_cache(run.group())
            pieces.append(romaji)
            lemmas += run_lemmas
            names_a_thing = names_a_thing or noun
            position = run.end()
        pieces.append(normalized_text[position:])
        lemmas += re.findall(r"[a-z0-9]+", _JAPANESE_RUN.sub(" ", normalized_text))
        return Reading(fold_romaji("".join(pieces)), tuple(lemmas), names_a_thing)


@cache
def shared_reader() -> Reader:
    """The process's reader, opened on first use (never at import)."""
    return Reader()
