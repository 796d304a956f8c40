"""Word-level evidence for every scenario: IDF coverage, fuzzy ratios, keywords, clauses.

These are features, not the decision: `services/dialog/model.py` weighs them with weights
fitted on the KB's own examples at load.

- *overlap* of an example = √(share of the caller's IDF mass the example has × share of the
  example's IDF mass the caller said). Words the KB never uses count with `UNKNOWN_WORD_IDF` ×
  the rarest word's IDF, so «сколько стоит доставка цветов» cannot look covered by «сколько
  стоит доставка»: this is what keeps near misses and foreign questions low.
- *fuzzy* = mean of `token_set_ratio` (forgives extra words) and `token_sort_ratio`
  (penalises a one-word fragment), on the examples sharing the most IDF weight.
- *clause overlap*: the best overlap of any window of `WINDOW` words, for long turns whose
  question sits after a preamble («я днём на работе … вы в это время ещё отвечаете»).
- *coverage*: the share of the caller's IDF mass in words any example of the scenario uses.

`exclude` drops one example as if the KB did not have it (its words that no other example
uses become unknown): the leave-one-out view training needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

UNKNOWN_WORD_IDF = 2.0  # × the rarest KB word's IDF: a word the KB never uses
CORRECTION_CUTOFF = 80  # ratio for mapping an unknown (misheard) token to a KB word
MAX_FUZZY = 100  # examples fuzzy-scored per utterance: those sharing the most IDF weight
WINDOW = 5  # words in a clause window of a long turn
FUZZY_SHARE = 0.3  # of an example's lexical score (the rest: overlap), as before issue 14


@dataclass
class Lexical:
    """Per-scenario arrays (Matcher.intents order) for one utterance."""

    tokens: list[str]  # after spelling repair
    score: np.ndarray  # best example: FUZZY_SHARE·fuzzy + (1 − FUZZY_SHARE)·overlap
    overlap: np.ndarray
    fuzzy: np.ndarray
    clause: np.ndarray  # best clause-window overlap (= overlap for short turns)
    coverage: np.ndarray
    keyword: np.ndarray  # min(1, Σ weights of the scenario's keywords said)
    unknown: float  # share of the caller's IDF mass in words the KB never uses
    context: float = 0.0  # fuzzy score of the open topic's `in_context` phrases


class _Ragged:
    """Rows of different lengths, by key, in a few flat arrays: thousands of small arrays
    unpickle one by one in C, holding the GIL, and a reload's swap paused the calls' matches."""

    def __init__(self, rows: Mapping[str, Sequence[np.ndarray]], columns: int):
        self._at = {key: n for n, key in enumerate(rows)}
        self._ptr = np.zeros(len(rows) + 1, dtype=np.int64)
        self._ptr[1:] = np.cumsum([len(r[0]) for r in rows.values()])
        self._cols = [
            np.concatenate([r[c] for r in rows.values()]) if rows else np.zeros(0, np.int32)
            for c in range(columns)
        ]

    def __contains__(self, key: str) -> bool:
        return key in self._at

    def __getitem__(self, key: str) -> tuple[np.ndarray, ...]:
        n = self._at[key]
        start, end = self._ptr[n], self._ptr[n + 1]
        return tuple(col[start:end] for col in self._cols)


class LexicalIndex:
    def __init__(
        self,
        examples: Sequence[tuple[int, list[str]]],  # (intent index, tokens)
        n_intents: int,
        keywords: Mapping[tuple[str, ...], Sequence[tuple[int, float]]],
        contexts: Mapping[int, Sequence[list[str]]],
    ):
        self.n_intents = n_intents
        self._example_intent = np.array([i for i, _ in examples], dtype=np.int32)
        self._choices = [" ".join(t) for _, t in examples]
        postings: dict[str, list[int]] = {}
        for n, (_, toks) in enumerate(examples):
            for tok in set(toks):
                postings.setdefault(tok, []).append(n)
        total = max(len(examples), 1)
        self._postings = _Ragged({t: [np.array(p, dtype=np.int32)] for t, p in postings.items()}, 1)
        self._idf = {t: math.log(1 + total / len(p)) for t, p in postings.items()}
        self._unknown_idf = UNKNOWN_WORD_IDF * math.log(1 + total)
        self._example_mass = np.array(
            [sum(self._idf[t] for t in set(toks)) or 1.0 for _, toks in examples],
            dtype=np.float64,
        )
        # token -> (intents using it, how many of their examples do)
        self._users = _Ragged(
            {
                tok: np.unique(self._example_intent[post], return_counts=True)
                for tok, post in postings.items()
            },
            2,
        )
        self._buckets: dict[str, list[str]] = {}
        for tok in postings:
            self._buckets.setdefault(tok[0], []).append(tok)
        self._corrections: dict[str, str] = {}
        self._keywords = keywords
        self._kw_len = max((len(k) for k in keywords), default=0)
        self._contexts = {i: [" ".join(t) for t in ex] for i, ex in contexts.items() if ex}

    def __len__(self) -> int:
        return len(self._choices)

    def known(self, token: str) -> bool:
        return token in self._postings

    def idf(self, token: str) -> float:
        return self._idf.get(token, self._unknown_idf)

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
        set_ = process.cdist([query], choices, scorer=fuzz.token_set_ratio, dtype=np.float32)
        sort = process.cdist([query], choices, scorer=fuzz.token_sort_ratio, dtype=np.float32)
        return (set_[0] + sort[0]) / 200

    def _idf_of(self, token: str, gone: set[str]) -> float:
        return self._unknown_idf if token in gone or token not in self._idf else self._idf[token]

    def _overlap(
        self, tokens: Sequence[str], gone: set[str], exclude: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(examples sharing a word, their overlap)."""
        known = [t for t in set(tokens) if t in self._postings and t not in gone]
        if not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        posts = [self._postings[t][0] for t in known]
        idx = np.concatenate(posts)
        weights = np.concatenate(
            [np.full(len(p), self._idf[t]) for p, t in zip(posts, known, strict=True)]
        )
        weight = np.bincount(idx, weights=weights, minlength=len(self._choices))
        if exclude is not None:
            weight[exclude] = 0
        cand = np.flatnonzero(weight)
        said = sum(self._idf_of(t, gone) for t in set(tokens))
        overlap = np.sqrt((weight[cand] / said) * (weight[cand] / self._example_mass[cand]))
        return cand, overlap

    def _best(self, cand: np.ndarray, values: np.ndarray) -> np.ndarray:
        best = np.zeros(self.n_intents)
        np.maximum.at(best, self._example_intent[cand], values)
        return best

    def score(
        self, tokens: list[str], context: int | None = None, exclude: int | None = None
    ) -> Lexical:
        tokens = [self._correct(t) for t in tokens]
        # Leave-one-out: words only the excluded example uses are words the KB does not know.
        # (its words from its text: a set per example was a large share of a reload's unpickling)
        own_words = set(self._choices[exclude].split()) if exclude is not None else set()
        gone = {t for t in own_words if len(self._postings[t][0]) == 1}
        n = self.n_intents
        overlap_best, fuzzy_best, lex_best = np.zeros(n), np.zeros(n), np.zeros(n)
        cand, overlap = self._overlap(tokens, gone, exclude)
        if len(cand):
            overlap_best = self._best(cand, overlap)
            if len(cand) > MAX_FUZZY:
                keep = np.argpartition(-overlap, MAX_FUZZY)[:MAX_FUZZY]
                cand, overlap = cand[keep], overlap[keep]
            fuzzy = self._fuzzy(" ".join(tokens), [self._choices[i] for i in cand])
            fuzzy_best = self._best(cand, fuzzy)
            lex_best = self._best(cand, FUZZY_SHARE * fuzzy + (1 - FUZZY_SHARE) * overlap)
        ctx = 0.0
        if context is not None and context in self._contexts and tokens:
            ctx = float(self._fuzzy(" ".join(tokens), self._contexts[context]).max())
            lex_best[context] = max(lex_best[context], ctx)
        clause = overlap_best
        if len(tokens) > WINDOW:
            clause = overlap_best.copy()
            for start in range(0, len(tokens) - WINDOW + 1, 2):
                c, o = self._overlap(tokens[start : start + WINDOW], gone, exclude)
                if len(c):
                    np.maximum(clause, self._best(c, o), out=clause)
        said = sum(self._idf_of(t, gone) for t in set(tokens)) or 1.0
        unknown = sum(self._unknown_idf for t in set(tokens) if t in gone or t not in self._idf)
        coverage = np.zeros(n)
        own = int(self._example_intent[exclude]) if exclude is not None else -1
        for tok in set(tokens):
            if tok in gone or tok not in self._users:
                continue
            intents, counts = self._users[tok]
            if tok in own_words:
                intents = intents[~((intents == own) & (counts == 1))]
            coverage[intents] += self._idf[tok]
        kw = np.zeros(n)
        for size in range(1, min(self._kw_len, len(tokens)) + 1):
            for i in range(len(tokens) - size + 1):
                for intent, w in self._keywords.get(tuple(tokens[i : i + size]), ()):
                    kw[intent] += w
        return Lexical(
            tokens,
            lex_best,
            overlap_best,
            fuzzy_best,
            clause,
            coverage / said,
            np.minimum(kw, 1.0),
            unknown / said,
            ctx,
        )
