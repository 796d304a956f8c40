"""Training at load: the KB's own data fits its feature weights and its thresholds.

1. **Queries.** Every example is scored against the KB *without itself* (leave-one-out: its
   words no other example uses count as unknown), every `tests:` phrase against the whole KB.
   Out-of-scope queries: `background.yaml` (questions on other subjects, the same for every KB;
   those this KB covers well are dropped) and near misses made from the KB's own examples —
   the most informative word swapped for one the KB never uses, or such a word added.
2. **Weights.** A logistic regression over every candidate of every query (label: the
   candidate is the query's scenario; out-of-scope queries have none).
3. **Thresholds,** from 5-fold cross-validated probabilities of the same queries: the lowest
   answer threshold whose wrong answers stay ≤ `MAX_WRONG` of the in-scope queries and whose
   answered out-of-scope queries stay ≤ `MAX_OOS_ANSWERED`; then the clarify threshold that
   best trades clarify questions naming the right scenario against out-of-scope callers asked.
4. **Report** for editors (`voicebot kb check`): the expected outcome shares, every example the
   cross-validated model gives to another scenario, pairs of scenarios it confuses.

Bigger KBs are sampled (`MAX_QUERIES` examples) so training stays within the load budget.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from services.dialog.features import Evidence
from services.dialog.lexical import LexicalIndex
from services.dialog.model import Model, Thresholds, decide

BACKGROUND = Path(__file__).with_name("background.yaml")
MAX_WRONG = 0.02  # of in-scope queries answered with another scenario
MAX_OOS_ANSWERED = 0.03  # of background (foreign) questions answered
# of the made-up near misses answered: many of them stay answerable (another word of the
# example still names the scenario), so this bound is looser
MAX_NEAR_ANSWERED = 0.25
CLARIFY_COST = 1.0  # a useless «… или …?» (out of scope, or neither is right) costs a useful one
MAX_QUERIES = 400  # leave-one-out examples scored at most (sampled beyond)
MIN_QUERIES = 30  # fewer examples: the prior model (prior.json)
NEAR_MISSES = 150
SPOKEN = 200
VERBATIM = 100
BACKGROUND_COVERED = 0.6  # a background question this KB covers this well may be in scope
REGULARIZATION = 1.0  # inverse L2 strength of the logistic regression
GRID = np.round(np.arange(0.05, 0.991, 0.01), 2)


class Kind(StrEnum):
    EXAMPLE = "example"
    TEST = "test"
    BACKGROUND = "background"
    NEAR_MISS = "near_miss"
    SPOKEN = "spoken"  # an example as callers say it: after a preamble, with a slip
    # an example said word for word, against the whole KB: weights only (not thresholds), so
    # the model knows an exact match, which leave-one-out never shows it
    VERBATIM = "verbatim"


class TrainingFailed(Exception):
    """The KB gives nothing to learn from (no example has a word the matcher can use)."""


@dataclass
class Query:
    tokens: list[str]
    intent: int | None  # None: out of scope
    kind: Kind
    exclude: int | None = None  # leave-one-out: the example itself


@dataclass
class Scored:
    """One query with cross-validated probabilities."""

    query: Query
    cands: np.ndarray
    probs: np.ndarray

    def ranked(self) -> tuple[int | None, float, int | None, float]:
        """(best candidate, its probability, runner-up, its probability)."""
        return self._ranked

    @cached_property
    def _ranked(self) -> tuple[int | None, float, int | None, float]:
        order = np.argsort(-self.probs)
        first = (int(self.cands[order[0]]), float(self.probs[order[0]])) if len(order) else None
        second = (
            (int(self.cands[order[1]]), float(self.probs[order[1]])) if len(order) > 1 else None
        )
        return (
            first[0] if first else None,
            first[1] if first else 0.0,
            second[0] if second else None,
            second[1] if second else 0.0,
        )


@dataclass
class Report:
    """What cross-validation says about this KB (shares of its in-scope queries)."""

    source: str
    queries: int
    right: float = 0.0
    wrong: float = 0.0
    clarify: float = 0.0
    handoff: float = 0.0
    oos_safe: float = 1.0
    # (example n, scenario the CV model answers or clarifies it with, its probability)
    misassigned: list[tuple[int, int, float]] = field(default_factory=list)
    # (scenario a, scenario b) -> examples of either that the model gives to the other
    confused: dict[tuple[int, int], list[int]] = field(default_factory=dict)


@cache
def background() -> tuple[str, ...]:
    return tuple(yaml.safe_load(BACKGROUND.read_text(encoding="utf-8"))["questions"])


Normalize = Callable[[str], list[str]]


def _queries(
    lexical: LexicalIndex,
    examples: Sequence[tuple[int, list[str]]],
    tests: Sequence[tuple[int, list[str]]],
    normalize: Normalize,
    rng: random.Random,
) -> list[Query]:
    usable = [n for n, (_, toks) in enumerate(examples) if toks]
    if len(usable) > MAX_QUERIES:
        usable = sorted(rng.sample(usable, MAX_QUERIES))
    out = [Query(examples[n][1], examples[n][0], Kind.EXAMPLE, n) for n in usable]
    out += [Query(toks, intent, Kind.TEST) for intent, toks in tests if toks]
    foreign_words: list[str] = []
    for text in background():
        toks = normalize(text)
        foreign_words += [t for t in toks if not lexical.known(t) and t.isalpha()]
        if toks and lexical.score(toks).overlap.max(initial=0) < BACKGROUND_COVERED:
            out.append(Query(toks, None, Kind.BACKGROUND))
    informative = [n for n in usable if len(examples[n][1]) >= 2]
    words = foreign_words or ["нечто"]
    for n in rng.sample(informative, min(NEAR_MISSES, len(informative))):
        toks = list(examples[n][1])  # the same question about something the KB never names
        at = max(range(len(toks)), key=lambda i: lexical.idf(toks[i]))
        toks[at] = rng.choice(words)
        out.append(Query(toks, None, Kind.NEAR_MISS))
    for n in rng.sample(usable, min(VERBATIM, len(usable))):
        out.append(Query(examples[n][1], examples[n][0], Kind.VERBATIM))
    preambles = [q.tokens for q in out if q.kind is Kind.BACKGROUND] or [words]
    for n in rng.sample(usable, min(SPOKEN, len(usable))):
        intent, toks = examples[n]
        toks = list(toks)
        if rng.random() < 0.5:  # a story first: «я днём на работе, … вы вечером работаете?»
            toks = rng.choice(preambles)[: rng.randint(2, 5)] + toks
        else:  # a recognition slip: a wrong ending
            at = rng.randrange(len(toks))
            if len(toks[at]) > 4:
                toks[at] = toks[at][:-1] + rng.choice("аеиоуы")
        out.append(Query(toks, intent, Kind.SPOKEN, n))
    return out


def evidence(ev: Evidence, queries: Sequence[Query]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(candidates, feature rows) of every query, vector similarities in batches."""
    out = []
    for start in range(0, len(queries), 256):
        batch = ev.rows([(q.tokens, None, q.exclude) for q in queries[start : start + 256]])
        out += [(cands, feats) for cands, feats, _ in batch]
    return out


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, LogisticRegression]:
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    reg = LogisticRegression(C=REGULARIZATION, max_iter=2000)
    reg.fit((x - mean) / scale, y)
    return mean, scale, reg


def _outcomes(scored: Sequence[Scored], t: Thresholds) -> Counter[str]:
    c: Counter[str] = Counter()
    for s in scored:
        if s.query.kind is Kind.VERBATIM:
            continue
        top, p1, second, p2 = s.ranked()
        decision = decide(p1, p2, second is not None, t)
        if s.query.intent is None:
            c["oos"] += 1
            c[f"oos_{decision}"] += 1
            c[f"{s.query.kind}_{decision}"] += 1
            c[str(s.query.kind)] += 1
            continue
        c["in"] += 1
        if decision == "answer":
            c["right" if top == s.query.intent else "wrong"] += 1
        elif decision == "clarify":
            c["clarify"] += 1
            c["clarify_right"] += s.query.intent in (top, second)
            c["clarify_useless"] += s.query.intent not in (top, second)
        else:
            c["handoff"] += 1
    return c


def thresholds(scored: Sequence[Scored]) -> Thresholds:
    """The lowest safe answer threshold, then the most useful clarify threshold."""
    answer = 0.99
    for t in GRID:
        c = _outcomes(scored, Thresholds(answer=t, clarify=2.0))
        if (
            c["wrong"] <= MAX_WRONG * max(c["in"], 1)
            and c["background_answer"] <= MAX_OOS_ANSWERED * max(c["background"], 1)
            and c["near_miss_answer"] <= MAX_NEAR_ANSWERED * max(c["near_miss"], 1)
        ):
            answer = float(t)
            break
    best, best_gain = 2.0, 0.0
    for t in GRID:
        c = _outcomes(scored, Thresholds(answer=answer, clarify=float(t)))
        useless = c["clarify_useless"] / max(c["in"], 1) + c["oos_clarify"] / max(c["oos"], 1)
        gain = c["clarify_right"] / max(c["in"], 1) - CLARIFY_COST * useless
        if gain > best_gain + 1e-9:
            best, best_gain = float(t), gain
    return Thresholds(answer=answer, clarify=best)


def train(
    ev: Evidence,
    examples: Sequence[tuple[int, list[str]]],
    tests: Sequence[tuple[int, list[str]]],
    normalize: Normalize,
    seed: int = 14,
) -> tuple[Model, Report]:
    if not any(toks for _, toks in examples):
        raise TrainingFailed("no example has a word left after normalization")
    rng = random.Random(seed)
    queries = _queries(ev.lexical, examples, tests, normalize, rng)
    found = evidence(ev, queries)
    x = np.vstack([r for _, r in found])
    y = np.concatenate([c == q.intent for q, (c, _) in zip(queries, found, strict=True)])
    group = np.concatenate([np.full(len(c), k) for k, (c, _) in enumerate(found)])
    n_examples = sum(q.kind is Kind.EXAMPLE for q in queries)
    if n_examples < MIN_QUERIES or y.sum() < 5 or y.all():
        prior = Model.prior()
        oof = prior.probabilities(x)
        model = prior
    else:
        mean, scale, reg = _fit(x, y)
        oof = np.zeros(len(y))
        for fit_idx, held in GroupKFold(n_splits=5).split(x, y, group):
            if y[fit_idx].all() or not y[fit_idx].any():
                oof[held] = 0.5
                continue
            m, s, r = _fit(x[fit_idx], y[fit_idx])
            oof[held] = r.predict_proba((x[held] - m) / s)[:, 1]
        model = Model(
            mean=mean.tolist(),
            scale=scale.tolist(),
            weights=reg.coef_[0].tolist(),
            bias=float(reg.intercept_[0]),
            thresholds=Thresholds(answer=0.99, clarify=2.0),
            source="kb",
        )
    scored, at = [], 0
    for q, (c, _) in zip(queries, found, strict=True):
        scored.append(Scored(q, c, oof[at : at + len(c)]))
        at += len(c)
    if model.source == "kb":
        model = model.model_copy(update={"thresholds": thresholds(scored)})
    return model, report(scored, model)


def report(scored: Sequence[Scored], model: Model) -> Report:
    t = model.thresholds
    c = _outcomes(scored, t)
    n_in, n_oos = max(c["in"], 1), max(c["oos"], 1)
    rep = Report(
        source=model.source,
        queries=c["in"],
        right=c["right"] / n_in,
        wrong=c["wrong"] / n_in,
        clarify=c["clarify"] / n_in,
        handoff=c["handoff"] / n_in,
        oos_safe=1 - c["oos_answer"] / n_oos,
    )
    for s in scored:
        q = s.query
        if q.kind is not Kind.EXAMPLE or q.intent is None or q.exclude is None:
            continue
        top, p1, second, p2 = s.ranked()
        if top is None or top == q.intent:
            continue
        if decide(p1, p2, second is not None, t) == "handoff":
            continue
        rep.misassigned.append((q.exclude, top, p1))
        pair = (min(q.intent, top), max(q.intent, top))
        rep.confused.setdefault(pair, []).append(q.exclude)
    return rep


if __name__ == "__main__":  # refit prior.json on a KB: python -m services.dialog.calibrate DIR
    import sys

    from services.dialog.engine import DialogEngine
    from services.dialog.model import PRIOR

    fitted = DialogEngine.load(sys.argv[1]).snapshot.matcher.model
    if fitted.source != "kb":
        raise SystemExit("that KB is too small to fit a prior on")
    PRIOR.write_text(fitted.model_copy(update={"source": "prior"}).model_dump_json(indent=1) + "\n")
