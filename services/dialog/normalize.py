"""Russian text normalization before matching: what a caller said → comparable lemmas.

Both the KB examples and callers' utterances go through the same `Normalizer`, so whatever
it does (lemmas, dropped fillers, digits for number words, KB synonyms) applies to both sides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

import pymorphy3
from rapidfuzz import fuzz, process

# Said while thinking or to get attention; removed as whole phrases before lemmatization.
FILLERS = (
    "алло",
    "девушка",
    "молодой человек",
    "скажите пожалуйста",
    "подскажите пожалуйста",
    "скажите",
    "подскажите",
    "пожалуйста",
    "здравствуйте",
    "добрый день",
    "доброе утро",
    "добрый вечер",
    "ну",
    "вот",
    "значит",
    "короче",
    "как бы",
    "это самое",
    "слушайте",
    "понимаете",
    "так",
    "блин",
    "извините",
)
_HESITATION = re.compile(r"^(?:э+|м+|эм+|хм+|а-а+|ммм+)$")
# Parts of speech without topic: prepositions, conjunctions, particles, interjections, pronouns.
_DROP_POS = {"PREP", "CONJ", "PRCL", "INTJ", "NPRO"}
_KEEP = {"не", "нет"}
_PROPER = frozenset(
    {"Geox", "Surn", "Name", "Patr", "Orgn"}
)  # negation changes the meaning: «не работает», «нет света»

_UNITS = {
    "ноль": 0,
    "один": 1,
    "два": 2,
    "три": 3,
    "четыре": 4,
    "пять": 5,
    "шесть": 6,
    "семь": 7,
    "восемь": 8,
    "девять": 9,
    "десять": 10,
    "одиннадцать": 11,
    "двенадцать": 12,
    "тринадцать": 13,
    "четырнадцать": 14,
    "пятнадцать": 15,
    "шестнадцать": 16,
    "семнадцать": 17,
    "восемнадцать": 18,
    "девятнадцать": 19,
}
_TENS = {
    "двадцать": 20,
    "тридцать": 30,
    "сорок": 40,
    "пятьдесят": 50,
    "шестьдесят": 60,
    "семьдесят": 70,
    "восемьдесят": 80,
    "девяносто": 90,
}
_HUNDREDS = {
    "сто": 100,
    "двести": 200,
    "триста": 300,
    "четыреста": 400,
    "пятьсот": 500,
    "шестьсот": 600,
    "семьсот": 700,
    "восемьсот": 800,
    "девятьсот": 900,
}
_WORD = re.compile(r"[a-zа-я0-9]+")

_morph: pymorphy3.MorphAnalyzer | None = None


def _analyzer() -> pymorphy3.MorphAnalyzer:
    global _morph
    if _morph is None:
        _morph = pymorphy3.MorphAnalyzer()
    return _morph


@lru_cache(maxsize=200_000)
def lemma(word: str) -> tuple[str, str | None]:
    """(normal form, part of speech) of one lower-case word; cached: callers repeat words a lot."""
    if not word.isalpha():
        return word, None
    parses = _analyzer().parse(word)
    # An adjective reading wins over a name («Тверская» street) or a noun made of the adjective
    # («холодные» → «холодное»), so «Тверская/в Тверской», «холодные/холодная» meet.
    common = [p for p in parses if not _PROPER & p.tag.grammemes] or parses
    parse = next((p for p in common if p.tag.POS == "ADJF"), common[0])
    return parse.normal_form.replace("ё", "е"), parse.tag.POS


def words(text: str) -> list[str]:
    """Lower case, ё→е, punctuation and hyphens become word breaks."""
    return _WORD.findall(text.lower().replace("ё", "е"))


def _number_value(word: str) -> tuple[int, int] | None:
    """(value, rank) of a number word lemma: rank 1 units/teens, 2 tens, 3 hundreds, 4 thousand."""
    if word in _UNITS:
        return _UNITS[word], 1
    if word in _TENS:
        return _TENS[word], 2
    if word in _HUNDREDS:
        return _HUNDREDS[word], 3
    if word == "тысяча":
        return 1000, 4
    return None


def numbers_to_digits(lemmas: list[str]) -> list[str]:
    """«сто двадцать два» → «122»; a smaller-or-equal rank starts a new number (phone digits)."""
    out: list[str] = []
    value, last_rank = 0, 9  # last_rank 9: no number open
    for word in lemmas:
        parsed = _number_value(word)
        if parsed is None:
            if last_rank != 9:
                out.append(str(value))
                value, last_rank = 0, 9
            out.append(word)
            continue
        number, rank = parsed
        if rank == 4:  # «две тысячи»: multiplies what came before
            value, last_rank = max(value, 1) * 1000, 4
        elif last_rank == 9 or rank < last_rank:
            value, last_rank = value + number if last_rank != 9 else number, rank
        else:
            out.append(str(value))
            value, last_rank = number, rank
    if last_rank != 9:
        out.append(str(value))
    return out


class _Phrases:
    """Greedy longest-first replacement of token sequences (the table's keys) by its values."""

    def __init__(self, table: Mapping[tuple[str, ...], tuple[str, ...]]):
        self._table = dict(table)
        self._longest = max((len(k) for k in table), default=0)

    def __setitem__(self, key: tuple[str, ...], value: tuple[str, ...]) -> None:
        self._table[key] = value
        self._longest = max(self._longest, len(key))

    def __call__(self, tokens: list[str]) -> list[str]:
        if not self._table:
            return tokens
        out: list[str] = []
        i = 0
        while i < len(tokens):
            for n in range(min(self._longest, len(tokens) - i), 0, -1):
                key = tuple(tokens[i : i + n])
                if key in self._table:
                    out.extend(self._table[key])
                    i += n
                    break
            else:
                out.append(tokens[i])
                i += 1
        return out


REPAIR_CUTOFF = 78  # fuzz.ratio of a misheard word form to a word form the KB uses
MAX_JOIN = 3  # «рос потреб надзор»: most words a split word was heard as


class Normalizer:
    """Text → list of normalized tokens (lemmas, digits, canonical synonyms).

    With the KB's `vocabulary` (the word forms its editors wrote), recognition slips are
    repaired on the word forms, before lemmas hide them: words heard split in two or three
    («бес платный», «в ключат») are joined when the joined form is the KB's and a part is not;
    a form the KB never uses whose lemma the KB does not know either («линея», «мабильного»)
    becomes the closest form the KB uses with the same first letter.
    """

    def __init__(
        self,
        synonyms: Mapping[str, Iterable[str]] | None = None,
        fillers: Iterable[str] = (),
        vocabulary: Iterable[str] = (),
    ):
        self._surface = {w for text in vocabulary for w in words(text)}
        self._lemmas = {lemma(w)[0] for w in self._surface}
        self._buckets: dict[str, list[str]] = {}
        for w in sorted(self._surface):
            if len(w) >= 4 and w.isalpha():
                self._buckets.setdefault(w[0], []).append(w)
        self._fillers = _Phrases({tuple(words(f)): () for f in (*FILLERS, *fillers)})
        self._synonyms = _Phrases({})
        for canonical, variants in (synonyms or {}).items():
            target = tuple(self.tokens(canonical))
            for variant in variants:
                source = tuple(self.tokens(variant))
                if source and source != target:
                    self._synonyms[source] = target

    def _known(self, word: str) -> bool:
        return word in self._surface or lemma(word)[0] in self._lemmas

    def _repair(self, surface: list[str]) -> list[str]:
        known = [self._known(w) for w in surface]
        if all(known):  # most texts: nothing to join or repair
            return surface
        out: list[str] = []
        i = 0
        while i < len(surface):
            for n in range(min(MAX_JOIN, len(surface) - i), 1, -1):
                parts = surface[i : i + n]
                joined = "".join(parts)
                if (
                    not all(known[i : i + n])
                    and joined.isalpha()
                    and (joined in self._surface or _analyzer().word_is_known(joined))
                    and self._known(joined)
                ):
                    out.append(joined)
                    i += n
                    break
            else:
                word = surface[i]
                if len(word) >= 4 and word.isalpha() and not known[i]:
                    best = process.extractOne(
                        word,
                        self._buckets.get(word[0], []),
                        scorer=fuzz.ratio,
                        score_cutoff=REPAIR_CUTOFF,
                    )
                    word = best[0] if best else word
                out.append(word)
                i += 1
        return out

    def tokens(self, text: str) -> list[str]:
        surface = [w for w in words(text) if not _HESITATION.match(w)]
        surface = self._fillers(surface)
        if self._surface:
            surface = self._repair(surface)
        lemmas = []
        for word in surface:
            form, pos = lemma(word)
            if pos in _DROP_POS and form not in _KEEP:
                continue
            lemmas.append(form)
        return self._synonyms(numbers_to_digits(lemmas))

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))
