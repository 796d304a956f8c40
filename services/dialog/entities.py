"""Finding entity values (regions, …) in normalized caller tokens: exact lemmas first, then fuzzy.

Names and synonyms go through the same Normalizer as utterances, so «из Тверской области»,
«в Тверской области» and «Тверская область» all become `тверской область`. A fuzzy pass
(rapidfuzz ratio) catches misheard endings the lemmatizer could not repair.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from services.dialog.normalize import Normalizer
from services.dialog.schema import EntityList, EntityValue

FUZZY_CUTOFF = 88  # ratio; below it «омск»/«томск»-like pairs start to collide
FUZZY_MIN_CHARS = 6  # short words are too easy to confuse fuzzily
MAX_FUZZY_WORDS = 3


@dataclass(frozen=True)
class Found:
    entity: str
    value: EntityValue
    start: int  # token span in the normalized utterance
    end: int
    score: float  # 1.0 exact, else fuzzy ratio / 100


class EntityIndex:
    def __init__(self, entities: Mapping[str, EntityList], normalizer: Normalizer):
        self._exact: dict[tuple[str, ...], tuple[str, EntityValue]] = {}
        for name, entity_list in entities.items():
            for value in entity_list.values:
                for form in (value.name, *value.synonyms):
                    key = tuple(normalizer.tokens(form))
                    if key:
                        self._exact.setdefault(key, (name, value))
        self._names = {name for name, _ in self._exact.values()}
        self._longest = max((len(k) for k in self._exact), default=0)
        self._keys = list(self._exact)
        self._strings = [" ".join(k) for k in self._keys]

    def find(self, tokens: list[str], entity: str | None = None) -> list[Found]:
        """Non-overlapping mentions, longest exact matches first, then fuzzy ones."""
        found: list[Found] = []
        taken = [False] * len(tokens)
        for n in range(min(self._longest, len(tokens)), 0, -1):
            for i in range(len(tokens) - n + 1):
                hit = self._exact.get(tuple(tokens[i : i + n]))
                if hit and (entity is None or hit[0] == entity) and not any(taken[i : i + n]):
                    found.append(Found(hit[0], hit[1], i, i + n, 1.0))
                    taken[i : i + n] = [True] * n
        for n in range(min(MAX_FUZZY_WORDS, len(tokens)), 0, -1):
            for i in range(len(tokens) - n + 1):
                text = " ".join(tokens[i : i + n])
                if len(text) < FUZZY_MIN_CHARS or any(taken[i : i + n]):
                    continue
                best = process.extractOne(
                    text, self._strings, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
                )
                if best is None:
                    continue
                name, value = self._exact[self._keys[best[2]]]
                if entity is None or name == entity:
                    found.append(Found(name, value, i, i + n, best[1] / 100))
                    taken[i : i + n] = [True] * n
        return sorted(found, key=lambda f: f.start)

    def mask(self, tokens: list[str], entities: set[str]) -> tuple[list[str], list[Found]]:
        """Replace mentions of `entities` by `@name`, so one example covers every region."""
        if not entities & self._names:  # most KBs: no slot entity, no fuzzy search per text
            return tokens, []
        found = [f for f in self.find(tokens) if f.entity in entities]
        out = list(tokens)
        for f in reversed(found):
            out[f.start : f.end] = [f"@{f.entity}"]
        return out, found
