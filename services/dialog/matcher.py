"""Scoring a normalized utterance against every scenario with a model fitted on the KB itself.

Per candidate scenario, word evidence (services/dialog/lexical.py) and character n-gram
similarity (services/dialog/features.py) form a feature row; a logistic regression fitted at
load on the KB's own examples (services/dialog/calibrate.py) turns it into the probability that
the caller means that scenario. The answer / clarify thresholds come from cross-validation on
the same KB, unless the editor sets `settings.matching`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from services.dialog import calibrate
from services.dialog.base import Decision
from services.dialog.features import Evidence
from services.dialog.lexical import LexicalIndex
from services.dialog.model import Model, Thresholds, decide
from services.dialog.schema import MatchingSettings

TOP = 5
# An `in_context` phrase of the open topic said this closely («а в выходные?» after the hours)
# is that topic: the model never trains on follow-ups, so this is a rule, not a feature.
CONTEXT_MATCH = 0.85
WARM_UP = ("когда вы работаете", "сколько стоит", "оператор")
Trainer = Callable[..., tuple[Model, calibrate.Report]]


@dataclass(frozen=True)
class Scored:
    intent: str
    score: float  # probability the caller means this scenario, 0..1


@dataclass(frozen=True)
class Match:
    tokens: list[str]
    ranked: list[Scored]  # best first, at most TOP
    margin: float  # top probability − runner-up's
    confidence: float  # top probability
    decision: Decision

    @property
    def top(self) -> Scored | None:
        return self.ranked[0] if self.ranked else None


class Matcher:
    """Built once per KB snapshot: indexes, fitted model, thresholds; then read-only."""

    def __init__(
        self,
        examples: Sequence[tuple[str, list[str]]],
        keywords: Mapping[str, Mapping[tuple[str, ...], float]],
        contexts: Mapping[str, Sequence[list[str]]],
        settings: MatchingSettings,
        *,
        extra: Sequence[tuple[str, list[str]]] = (),
        tests: Sequence[tuple[str, list[str]]] = (),
        normalize: calibrate.Normalize = lambda text: text.split(),
        trainer: Trainer = calibrate.train,
    ):
        """`examples` are what editors wrote (scored leave-one-out in training); `extra`
        (titles, topics, keywords) only join the index; `tests` are scored as callers."""
        self.intents = sorted({i for i, _ in (*examples, *extra)} | set(keywords) | set(contexts))
        index = {name: n for n, name in enumerate(self.intents)}
        indexed = [(index[i], t) for i, t in (*examples, *extra)]
        self._n_examples = len(examples)
        kw: dict[tuple[str, ...], list[tuple[int, float]]] = {}
        for intent, words in keywords.items():
            for key, weight in words.items():
                kw.setdefault(key, []).append((index[intent], weight))
        lexical = LexicalIndex(
            indexed, len(self.intents), kw, {index[i]: ex for i, ex in contexts.items()}
        )
        self.evidence = Evidence(
            lexical, [t for _, t in indexed], np.array([i for i, _ in indexed], dtype=np.int64)
        )
        self.model, self.report = trainer(
            self.evidence,
            indexed[: len(examples)],
            [(index[i], t) for i, t in tests if i in index],
            normalize,
        )
        fitted = self.model.thresholds
        self.thresholds = Thresholds(
            answer=fitted.answer
            if settings.answer_threshold is None
            else settings.answer_threshold,
            clarify=(
                fitted.clarify if settings.clarify_threshold is None else settings.clarify_threshold
            ),
        )
        for text in WARM_UP:  # first call as fast as later ones: vectorizer, BLAS, caches
            self.match(normalize(text))

    def __len__(self) -> int:
        return self._n_examples

    def match(
        self, tokens: list[str], context: str | None = None, exclude: int | None = None
    ) -> Match:
        ctx = self.intents.index(context) if context in self.intents else None
        cands, feats, lex = self.evidence.rows([(tokens, ctx, exclude)])[0]
        if not tokens or not len(cands):
            return Match(tokens, [], 0.0, 0.0, "handoff")
        probs = self.model.probabilities(feats)
        if ctx is not None and lex.context >= CONTEXT_MATCH:
            probs[cands == ctx] = np.maximum(probs[cands == ctx], lex.context)
        order = np.argsort(-probs)[:TOP]
        ranked = [Scored(self.intents[cands[i]], round(float(probs[i]), 4)) for i in order]
        first = ranked[0].score
        second = ranked[1].score if len(ranked) > 1 else 0.0
        decision = decide(first, second, len(ranked) > 1, self.thresholds)
        return Match(tokens, ranked, round(first - second, 4), first, decision)
