"""Scoring a normalized utterance against every scenario, and the calibrated decision.

Score of a scenario = best fuzzy score over its examples + keyword bonus:
- `token_set_ratio` forgives callers' extra words («у меня вопрос, когда работает линия») but
  rates a one-word fragment contained in an example as a perfect match;
- `token_sort_ratio` penalises that length mismatch; the mean of the two rewards examples
  that share most words in any order;
- keywords add `KEYWORD_WEIGHT × Σ weights` (capped at 1) for words that alone point to a scenario.
Confidence = sigmoid(a·top + b·margin + c) where margin = top − second scenario; a, b, c and
the thresholds are fitted on the evaluation set by bench/kb_eval.py (services/dialog/README.md).

Speed: only examples sharing a (spelling-corrected) token with the utterance are scored, with
`rapidfuzz.process.cdist` over precomputed normalized strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from services.dialog.base import Decision
from services.dialog.schema import MatchingSettings

SET_WEIGHT = 0.5  # share of token_set_ratio in the fuzzy score (rest: token_sort_ratio)
KEYWORD_WEIGHT = 0.25
COVERAGE_WEIGHT = 0.7  # share of IDF word overlap in an example's score (rest: fuzzy)
UNKNOWN_WORD_IDF = 2.0  # × the rarest KB word's IDF: a word the KB never uses suggests out of scope
CORRECTION_CUTOFF = 80  # ratio for mapping an unknown (misheard) token to a KB word
MAX_CANDIDATES = 200  # examples fuzzy-scored per utterance: those sharing the most IDF weight
TOP = 5


@dataclass(frozen=True)
class Scored:
    intent: str
    score: float  # raw score, 0..~1.25


@dataclass(frozen=True)
class Match:
    tokens: list[str]
    ranked: list[Scored]  # best first, at most TOP
    margin: float
    confidence: float
    decision: Decision

    @property
    def top(self) -> Scored | None:
        return self.ranked[0] if self.ranked else None


def confidence(top: float, margin: float, settings: MatchingSettings) -> float:
    a, b, c = settings.calibration
    return 1 / (1 + math.exp(-(a * top + b * margin + c)))


def decide(conf: float, margin: float, has_second: bool, settings: MatchingSettings) -> Decision:
    if conf >= settings.answer_threshold and (margin >= settings.answer_margin or not has_second):
        return "answer"
    if has_second and margin < settings.clarify_margin and conf >= settings.clarify_threshold:
        return "clarify"
    return "handoff"


class Matcher:
    def __init__(
        self,
        examples: Sequence[tuple[str, list[str]]],
        keywords: Mapping[str, Mapping[tuple[str, ...], float]],
        contexts: Mapping[str, Sequence[list[str]]],
        settings: MatchingSettings,
    ):
        self.settings = settings
        self.intents = sorted({i for i, _ in examples} | set(keywords) | set(contexts))
        index = {name: n for n, name in enumerate(self.intents)}
        self._example_intent = np.array([index[i] for i, _ in examples], dtype=np.int32)
        self._choices = [" ".join(t) for _, t in examples]
        postings: dict[str, list[int]] = {}
        for n, (_, toks) in enumerate(examples):
            for tok in set(toks):
                postings.setdefault(tok, []).append(n)
        total = max(len(examples), 1)
        self._postings = {t: np.array(p, dtype=np.int32) for t, p in postings.items()}
        self._idf = {t: math.log(1 + total / len(p)) for t, p in postings.items()}
        self._unknown_idf = UNKNOWN_WORD_IDF * math.log(1 + total)
        self._example_mass = np.array(
            [sum(self._idf[t] for t in set(toks)) or 1.0 for _, toks in examples], dtype=np.float32
        )
        self._buckets: dict[str, list[str]] = {}
        for tok in postings:
            self._buckets.setdefault(tok[0], []).append(tok)
        self._corrections: dict[str, str] = {}
        self._keywords: dict[tuple[str, ...], list[tuple[int, float]]] = {}
        for intent, words in keywords.items():
            for key, weight in words.items():
                self._keywords.setdefault(key, []).append((index[intent], weight))
        self._kw_len = max((len(k) for k in self._keywords), default=0)
        self._contexts = {index[i]: [" ".join(t) for t in ex] for i, ex in contexts.items() if ex}

    def __len__(self) -> int:
        return len(self._choices)

    def _correct(self, token: str) -> str:
        """A misheard word the KB never uses → the closest KB word with the same first letter."""
        if token in self._postings or len(token) < 4 or not token.isalpha():
            return token
        if token not in self._corrections:
            best = process.extractOne(
                token,
                self._buckets.get(token[0], []),
                scorer=fuzz.ratio,
                score_cutoff=CORRECTION_CUTOFF,
            )
            if len(self._corrections) > 50_000:
                self._corrections.clear()
            self._corrections[token] = best[0] if best else token
        return self._corrections[token]

    def _fuzzy(self, query: str, choices: list[str]) -> np.ndarray:
        both = process.cdist(
            [query], choices, scorer=fuzz.token_set_ratio, dtype=np.float32, workers=1
        ) * SET_WEIGHT + process.cdist(
            [query], choices, scorer=fuzz.token_sort_ratio, dtype=np.float32, workers=1
        ) * (1 - SET_WEIGHT)
        return both[0] / 100

    def scores(
        self, tokens: list[str], context: str | None = None, exclude: int | None = None
    ) -> np.ndarray:
        """Raw score per intent (self.intents order)."""
        tokens = [self._correct(t) for t in tokens]
        query = " ".join(tokens)
        best = np.zeros(len(self.intents), dtype=np.float32)
        known = [t for t in set(tokens) if t in self._postings]
        if known:
            idx = np.concatenate([self._postings[t] for t in known])
            weights = np.concatenate([np.full(len(self._postings[t]), self._idf[t]) for t in known])
            weight = np.bincount(idx, weights=weights, minlength=len(self._choices))
            if exclude is not None:
                weight[exclude] = 0
            cand = np.flatnonzero(weight)
            # IDF-weighted share of the caller's words the example has, and of the example's
            # words the caller said: words the KB never uses (out of scope) pull this down.
            said = sum(self._idf.get(t, self._unknown_idf) for t in set(tokens))
            overlap = np.sqrt((weight[cand] / said) * (weight[cand] / self._example_mass[cand]))
            if len(cand) > MAX_CANDIDATES:  # fuzzy-score only the examples sharing the most
                keep = np.argpartition(-overlap, MAX_CANDIDATES)[:MAX_CANDIDATES]
                cand, overlap = cand[keep], overlap[keep]
            fuzzy = self._fuzzy(query, [self._choices[i] for i in cand])
            combined = (1 - COVERAGE_WEIGHT) * fuzzy + COVERAGE_WEIGHT * overlap
            np.maximum.at(best, self._example_intent[cand], combined)
        if context is not None and tokens:
            ctx = self.intents.index(context) if context in self.intents else -1
            if ctx in self._contexts:
                best[ctx] = max(best[ctx], float(self._fuzzy(query, self._contexts[ctx]).max()))
        kw = np.zeros(len(self.intents), dtype=np.float32)
        for n in range(1, min(self._kw_len, len(tokens)) + 1):
            for i in range(len(tokens) - n + 1):
                for intent, w in self._keywords.get(tuple(tokens[i : i + n]), ()):
                    kw[intent] += w
        return best + KEYWORD_WEIGHT * np.minimum(kw, 1.0)

    def match(
        self, tokens: list[str], context: str | None = None, exclude: int | None = None
    ) -> Match:
        raw = self.scores(tokens, context, exclude)
        order = np.argsort(-raw)[:TOP]
        ranked = [Scored(self.intents[i], round(float(raw[i]), 4)) for i in order if raw[i] > 0]
        top = ranked[0].score if ranked else 0.0
        margin = top - (ranked[1].score if len(ranked) > 1 else 0.0)
        conf = confidence(top, margin, self.settings) if ranked else 0.0
        return Match(
            tokens, ranked, margin, conf, decide(conf, margin, len(ranked) > 1, self.settings)
        )
