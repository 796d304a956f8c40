"""The fitted parts of a KB's matcher: feature weights and the answer / clarify thresholds.

P(the caller means candidate c) = sigmoid(w · standardized features(c) + b): a logistic
regression fitted at load on the KB's own examples (services/dialog/calibrate.py). A KB too
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
        z = (rows - np.asarray(self.mean)) / np.asarray(self.scale) @ np.asarray(self.weights)
        return 1 / (1 + np.exp(-(z + self.bias)))

    def described(self) -> dict[str, float]:
        return dict(zip(FEATURES, (round(w, 3) for w in self.weights), strict=True))

    @classmethod
    def prior(cls) -> Model:
        return cls.model_validate(json.loads(PRIOR.read_text(encoding="utf-8")))


def decide(first: float, second: float, has_second: bool, thresholds: Thresholds) -> Decision:
    if first >= thresholds.answer:
        return "answer"
    if has_second and first + second >= thresholds.clarify and second >= first * CLARIFY_SHARE:
        return "clarify"
    return "handoff"
