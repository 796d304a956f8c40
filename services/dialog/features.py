"""Per-candidate features of an utterance: lexical evidence, character n-gram similarity and a
naive Bayes posterior.

Character n-grams (TF-IDF of 2–4-grams inside words, over the normalized lemmas) forgive what
lemmas do not: a wrong ending the lemmatizer reads as another word, a word split in two or
two merged («бес платный», «заблокироваликарту»). Naive Bayes over the same n-grams and the
lemmas weighs terms by how well they tell scenarios apart, which nearest-example similarity
does not: it ranks long turns with a story before the question better. Each candidate
scenario gets one row of `FEATURES`; `services/dialog/model.py` turns the rows of an utterance
into probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from services.dialog.lexical import Lexical, LexicalIndex

FEATURES = (
    "lexical",  # best example's lexical score
    "overlap",
    "fuzzy",
    "clause",  # best clause window of a long turn
    "coverage",  # the caller's IDF mass in the scenario's vocabulary
    "keyword",
    "char",  # character n-gram cosine to the best example
    "centroid",  # … to the scenario's mean example
    "lexical_lead",  # lexical score minus the best other scenario's
    "char_lead",
    "bayes",  # naive Bayes log-posterior over words and character n-grams (floored)
    "bayes_rate",  # its log-likelihood lead over the best other scenario per unit of text
    "unknown",  # the caller's IDF mass in words the KB never uses
    "length",  # log(1 + words)
)
CANDIDATES = 6  # scenarios kept from each ranking (lexical, character, Bayes)
BAYES_ALPHA = 0.1  # additive smoothing of the naive Bayes term counts
BAYES_FLOOR = -20.0  # log-posterior: below this a scenario is simply out
BAYES_RATE = 5.0  # bound of the per-unit log-likelihood lead


def _membership(intents: np.ndarray, n: int) -> sparse.csr_matrix:
    """scenarios × examples, 1 where the example is the scenario's: sums rows per scenario."""
    return sparse.csr_matrix(
        (np.ones(len(intents), dtype=np.float32), (intents, np.arange(len(intents)))),
        shape=(n, len(intents)),
    )


class Neighbours:
    """Per-scenario best and centroid cosines of TF-IDF query vectors to the examples' unit
    rows, with one example left out where training asks."""

    def __init__(self, matrix: sparse.csr_matrix, intents: np.ndarray, n: int):
        self._t = matrix.T.tocsr()
        self._intents = intents
        self.n_intents = n
        # examples grouped by scenario, for a per-scenario maximum with one reduceat
        self._order = np.argsort(intents, kind="stable")
        self._present, self._starts = np.unique(intents[self._order], return_index=True)
        sums = (_membership(intents, n) @ matrix).tocsr()  # sum of the unit rows per scenario
        self._sums_t = sums.T.tocsr()
        self._sq = np.asarray(sums.multiply(sums).sum(axis=1)).ravel()
        # leave-one-out: an example's dot with its scenario's sum, and its squared norm
        self._own_dot = np.asarray(sums[intents].multiply(matrix).sum(axis=1)).ravel()
        self._norm2 = np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel()

    def similarities(
        self, vectors: sparse.csr_matrix, exclude: Sequence[int | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(best, centroid) cosines, one row per vector; `exclude[k]`: an example that row k
        must not see (leave-one-out: its own example, also out of its scenario's centroid)."""
        sims = (vectors @ self._t).toarray()
        dots = (vectors @ self._sums_t).toarray()
        sq = np.tile(self._sq, (len(exclude), 1))
        for k, n in enumerate(exclude):
            if n is None:
                continue
            own = self._intents[n]
            dots[k, own] -= sims[k, n]  # the centroid without the excluded vector: S − x
            sq[k, own] = sq[k, own] - 2 * self._own_dot[n] + self._norm2[n]
            sims[k, n] = 0.0
        best = np.zeros((len(exclude), self.n_intents))
        if len(self._order):
            best[:, self._present] = np.maximum.reduceat(sims[:, self._order], self._starts, axis=1)
        centroid = dots / np.sqrt(np.maximum(sq, 1e-9))
        return best, np.clip(centroid, 0.0, 1.0)


class Tfidf:
    """Sublinear TF-IDF rows (l2 norm) of texts, as a fitted counter analyzes them."""

    def __init__(self, counter: CountVectorizer, weigh: TfidfTransformer):
        # the vectorizer's own transform validates its input on every call (~1 ms): the same
        # arithmetic by hand for the few terms of an utterance
        self._analyze = counter.build_analyzer()
        self._vocabulary = counter.vocabulary_
        self._idf = weigh.idf_.astype(np.float32)
        self.width = len(self._idf)

    def vectors(self, texts: Sequence[str]) -> sparse.csr_matrix:
        indptr, indices, data = [0], [], []
        for text in texts:
            counts: dict[int, int] = {}
            for term in self._analyze(text or "_"):
                col = self._vocabulary.get(term)
                if col is not None:
                    counts[col] = counts.get(col, 0) + 1
            cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
            values = (1 + np.log(np.fromiter(counts.values(), dtype=np.float32))) * self._idf[cols]
            norm = float(np.sqrt((values * values).sum()))
            indices.append(cols)
            data.append(values / norm if norm else values)
            indptr.append(indptr[-1] + len(cols))
        empty = [np.zeros(0)]
        return sparse.csr_matrix(
            (np.concatenate(data or empty), np.concatenate(indices or empty), indptr),
            shape=(len(texts), self.width),
            dtype=np.float32,
        )


def _fitted(counter: CountVectorizer, counts: sparse.csr_matrix) -> tuple[Tfidf, sparse.csr_matrix]:
    """The weighting fitted on the KB's texts, and their rows."""
    weigh = TfidfTransformer(sublinear_tf=True)
    rows = weigh.fit_transform(counts).astype(np.float32).tocsr()
    return Tfidf(counter, weigh), rows


def char_tfidf(texts: Sequence[str]) -> tuple[Tfidf, sparse.csr_matrix]:
    """Character 2–4-grams inside the words of the normalized lemmas."""
    # `char_wb` n-grams never cross a space, so a text's counts are the sum of its words':
    # the n-grams of each distinct word once (a KB repeats its words a lot), then a sum.
    docs = [(t or "_").split() for t in texts]
    distinct = {w: n for n, w in enumerate(dict.fromkeys(w for doc in docs for w in doc))}
    counter = CountVectorizer(analyzer="char_wb", ngram_range=(2, 4), dtype=np.float32)
    grams = counter.fit_transform(list(distinct))
    uses = sparse.csr_matrix(
        (
            np.ones(sum(map(len, docs)), dtype=np.float32),
            [distinct[w] for doc in docs for w in doc],
            np.cumsum([0, *map(len, docs)]),
        ),
        shape=(len(docs), len(distinct)),
    )
    return _fitted(counter, (uses @ grams).tocsr())


def word_tfidf(texts: Sequence[str]) -> tuple[Tfidf, sparse.csr_matrix]:
    """The normalized lemmas themselves (the tokens are already split and normalized)."""
    counter = CountVectorizer(analyzer=str.split, dtype=np.float32)
    return _fitted(counter, counter.fit_transform([t or "_" for t in texts]).tocsr())


class BayesIndex:
    """Multinomial naive Bayes over the examples' word and character TF-IDF, uniform prior.

    Unlike a nearest example, it weighs each term by how much it tells the scenarios apart:
    in a long turn the story's words are about as likely under every scenario and cancel
    out, the question's words decide. Leave-one-out is exact: the excluded example's terms
    are taken out of its scenario's counts. Hand-written over scikit-learn's MultinomialNB
    for that, and to keep the per-scenario log-probabilities sparse (a dense matrix is
    scenarios × terms)."""

    def __init__(self, matrix: sparse.csr_matrix, intents: np.ndarray, n: int):
        self._counts = (_membership(intents, n) @ matrix).tocsr()  # term mass per scenario
        self._totals = np.asarray(self._counts.sum(axis=1), dtype=np.float64).ravel()
        smoothing = BAYES_ALPHA * matrix.shape[1]
        # log P(term | scenario) = log(count + α) − log(total + αF): the part that depends on
        # the count is sparse, log(1 + count/α); the rest is one number per scenario
        self._smoothing = smoothing
        self._base = np.log(BAYES_ALPHA) - np.log(self._totals + smoothing)
        logs = self._counts.copy()
        logs.data = np.log1p(logs.data / BAYES_ALPHA)
        self._logs_t = logs.T.tocsr()
        self._rows = matrix
        self._intents = intents

    def log_joint(
        self, vectors: sparse.csr_matrix, exclude: Sequence[int | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(log P(text, scenario) per scenario, the text's term mass), one row per vector."""
        mass = np.asarray(vectors.sum(axis=1), dtype=np.float64).ravel()
        joint = (vectors @ self._logs_t).toarray().astype(np.float64)
        joint += mass[:, None] * self._base[None, :]
        for k, n in enumerate(exclude):
            if n is None:
                continue
            own, row = int(self._intents[n]), self._rows[n]
            had = self._counts[own, row.indices].toarray().ravel()
            left = np.maximum(had - row.data, 0.0)
            said = vectors[k, row.indices].toarray().ravel()
            joint[k, own] += said @ (np.log1p(left / BAYES_ALPHA) - np.log1p(had / BAYES_ALPHA))
            total, left_total = self._totals[own], max(self._totals[own] - row.sum(), 0.0)
            joint[k, own] += mass[k] * (
                np.log(total + self._smoothing) - np.log(left_total + self._smoothing)
            )
        return joint, mass


class Evidence:
    """Feature rows of utterances against one KB: words, characters, naive Bayes."""

    def __init__(self, lexical: LexicalIndex, tokens: Sequence[list[str]], intents: np.ndarray):
        n = lexical.n_intents
        self.lexical = lexical
        texts = [" ".join(t) for t in tokens]
        (self.chars, char_rows), (self.words, word_rows) = char_tfidf(texts), word_tfidf(texts)
        self.char_near = Neighbours(char_rows, intents, n)
        self.bayes = BayesIndex(sparse.hstack([word_rows, char_rows]).tocsr(), intents, n)

    def rows(
        self, queries: Sequence[tuple[list[str], int | None, int | None]]
    ) -> list[tuple[np.ndarray, np.ndarray, Lexical]]:
        """(candidates, their FEATURES rows, word evidence) per (tokens, context, exclude)."""
        lexes = [self.lexical.score(t, ctx, ex) for t, ctx, ex in queries]
        excluded = [ex for *_, ex in queries]
        texts = [" ".join(lex.tokens) for lex in lexes]
        char_vectors = self.chars.vectors(texts)
        char = self.char_near.similarities(char_vectors, excluded)
        joint, mass = self.bayes.log_joint(
            sparse.hstack([self.words.vectors(texts), char_vectors]).tocsr(), excluded
        )
        out = []
        for k, lex in enumerate(lexes):
            cands = candidates(lex, char[0][k], joint[k])
            feats = rows(lex, (char[0][k], char[1][k]), (joint[k], mass[k]), cands)
            out.append((cands, feats, lex))
        return out


def _lead(values: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """values[c] − the best value of any other scenario, for each candidate c."""
    if len(values) < 2:
        return values[cands]
    second, top = np.partition(values, -2)[-2:]
    other = np.where(values[cands] >= top, second, top)
    return values[cands] - other


def candidates(lex: Lexical, char: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """Scenarios worth a probability: the best few by words, by characters, by Bayes."""
    picked: set[int] = set()
    for values in (lex.score, char):
        order = np.argsort(-values)[:CANDIDATES]
        picked.update(int(i) for i in order if values[i] > 0)
    picked.update(int(i) for i in np.argsort(-joint)[:CANDIDATES])
    return np.array(sorted(picked), dtype=np.int64)


Cosines = tuple[np.ndarray, np.ndarray]  # (best example, centroid) per scenario


def rows(
    lex: Lexical, char: Cosines, bayes: tuple[np.ndarray, float], cands: np.ndarray
) -> np.ndarray:
    """One row of FEATURES per candidate."""
    k = len(cands)
    joint, mass = bayes
    log_posterior = joint - joint.max() - np.log(np.exp(joint - joint.max()).sum())
    return np.column_stack(
        [
            lex.score[cands],
            lex.overlap[cands],
            lex.fuzzy[cands],
            lex.clause[cands],
            lex.coverage[cands],
            lex.keyword[cands],
            char[0][cands],
            char[1][cands],
            _lead(lex.score, cands),
            _lead(char[0], cands),
            np.maximum(log_posterior[cands], BAYES_FLOOR),
            np.clip(_lead(joint, cands) / max(mass, 1e-6), -BAYES_RATE, BAYES_RATE),
            np.full(k, lex.unknown),
            np.full(k, np.log1p(len(lex.tokens))),
        ]
    )
