"""The fitted parts of a KB's matcher: feature weights and the answer / clarify thresholds.

P(the caller means candidate c) = exp(s_c) / (exp(b) + Σ_j exp(s_j)), s_c = w · standardized
features(c): a softmax over the query's candidates and "none of them" (score b), fitted at load
on the KB's own examples (services/dialog/calibrate.py). One candidate far ahead of the others
is likely even when its absolute evidence is modest (a colloquial turn); "none" wins when
every candidate is weak (a question the KB does not cover). A KB too
small to fit one (fewer than `calibrate.MIN_QUERIES` examples) uses `prior.json`, the model
fitted the same way on the demo KB.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from services.dialog.base import Decision
from services.dialog.features import FEATURES

PRIOR = Path(__file__).with_name("prior.json")
# «… или …?» only when the runner-up is a real contender, not a distant second.
CLARIFY_SHARE = 1 / 3


class Thresholds(BaseModel):
    answer: float  # top probability needed to answer
    clarify: float  # top + runner-up probability needed to ask «… или …?»


class Model(BaseModel):
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    thresholds: Thresholds
    source: str  # "kb": fitted on this KB; "prior": the demo KB's (too few examples here)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """P of each candidate row of one utterance (they and "none" sum to 1)."""
        return softmax_with_none(self.scores(rows), np.zeros(len(rows), np.int64), self.bias)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return (rows - np.asarray(self.mean)) / np.asarray(self.scale) @ np.asarray(self.weights)

    def described(self) -> dict[str, float]:
        return dict(zip(FEATURES, (round(w, 3) for w in self.weights), strict=True))

    @classmethod
    def prior(cls) -> Model:
        return cls.model_validate(json.loads(PRIOR.read_text(encoding="utf-8")))


def softmax_with_none(scores: np.ndarray, group: np.ndarray, none: float) -> np.ndarray:
    """Per row, exp(score) / (exp(none) + Σ exp(scores of its group)); `group` labels the
    utterance of each row, rows of one utterance contiguous."""
    if not len(scores):
        return scores
    new = np.r_[True, group[1:] != group[:-1]]
    starts, run = np.flatnonzero(new), np.cumsum(new) - 1
    top = np.maximum(np.maximum.reduceat(scores, starts), none)[run]
    e = np.exp(scores - top)
    return e / (np.add.reduceat(e, starts)[run] + np.exp(none - top))


def decide(first: float, second: float, has_second: bool, thresholds: Thresholds) -> Decision:
    if first >= thresholds.answer:
        return "answer"
    if has_second and first + second >= thresholds.clarify and second >= first * CLARIFY_SHARE:
        return "clarify"
    return "handoff"
