"""Per-candidate features of an utterance: lexical evidence plus character n-gram similarity.

Character n-grams (TF-IDF of 2–4-grams inside words, over the normalized lemmas) forgive what
lemmas do not: a wrong ending the lemmatizer reads as another word, a word split in two or
two merged («бес платный», «заблокироваликарту»). Each candidate scenario gets one row of
`FEATURES`; `services/dialog/model.py` turns a row into a probability.
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
    "unknown",  # the caller's IDF mass in words the KB never uses
    "length",  # log(1 + words)
)
CANDIDATES = 6  # scenarios kept from each ranking (lexical, character)
# Queries at once below which sparse × sparse is the faster product; above, sparse × dense is
# (the sparse result is nearly full, and counting its entries first is a pass of its own).
SPARSE_BELOW = 16


class CharIndex:
    """Character 2–4-gram TF-IDF inside words, over the normalized lemmas, of every example;
    per-scenario best and centroid cosines of a query."""

    def __init__(self, texts: Sequence[str], intents: np.ndarray, n_intents: int):
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
        weigh = TfidfTransformer(sublinear_tf=True)
        matrix = weigh.fit_transform(uses @ grams).astype(np.float32).tocsr()
        self._t = matrix.T.tocsr()
        self._intents = intents
        self.n_intents = n_intents
        # examples grouped by scenario, for a per-scenario maximum with one reduceat
        self._order = np.argsort(intents, kind="stable")
        self._present, self._starts = np.unique(intents[self._order], return_index=True)
        member = sparse.csr_matrix(
            (np.ones(len(intents), dtype=np.float32), (intents, np.arange(len(intents)))),
            shape=(n_intents, len(intents)),
        )
        sums = (member @ matrix).tocsr()  # sum of the unit rows per scenario
        self._sums_t = sums.T.tocsr()
        self._sq = np.asarray(sums.multiply(sums).sum(axis=1)).ravel()
        # leave-one-out: an example's dot with its scenario's sum, and its squared norm
        self._own_dot = np.asarray(sums[intents].multiply(matrix).sum(axis=1)).ravel()
        self._norm2 = np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel()

        # the vectorizer's own transform validates its input on every call (~1 ms): the same
        # arithmetic by hand for the few n-grams of an utterance
        self._analyze = counter.build_analyzer()
        self._vocabulary = counter.vocabulary_
        self._idf = weigh.idf_.astype(np.float32)
        self._width = len(self._idf)

    def vectors(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """TF-IDF rows as the fitted counter and weighting give them (sublinear tf, l2 norm)."""
        indptr, indices, data = [0], [], []
        for text in texts:
            counts: dict[int, int] = {}
            for gram in self._analyze(text or "_"):
                col = self._vocabulary.get(gram)
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
            shape=(len(texts), self._width),
            dtype=np.float32,
        )

    def similarities(
        self, vectors: sparse.csr_matrix, exclude: Sequence[int | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(best, centroid) cosines, one row per vector; `exclude[k]`: an example that row k
        must not see (leave-one-out: its own example, also out of its scenario's centroid)."""
        if vectors.shape[0] < SPARSE_BELOW:
            sims = (vectors @ self._t).toarray()
        else:  # training's batches: one pass over the examples' rows (`.T` of CSR is CSC, free)
            sims = np.asarray(self._t.T @ vectors.T.toarray()).T
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


class Evidence:
    """Feature rows of utterances against one KB: words and characters."""

    def __init__(self, lexical: LexicalIndex, tokens: Sequence[list[str]], intents: np.ndarray):
        n = lexical.n_intents
        self.lexical = lexical
        self.chars = CharIndex([" ".join(t) for t in tokens], intents, n)

    def rows(
        self, queries: Sequence[tuple[list[str], int | None, int | None]]
    ) -> list[tuple[np.ndarray, np.ndarray, Lexical]]:
        """(candidates, their FEATURES rows, word evidence) per (tokens, context, exclude)."""
        lexes = [self.lexical.score(t, ctx, ex) for t, ctx, ex in queries]
        excluded = [ex for *_, ex in queries]
        char_best, char_centroid = self.chars.similarities(
            self.chars.vectors([" ".join(lex.tokens) for lex in lexes]), excluded
        )
        out = []
        for k, lex in enumerate(lexes):
            cands = candidates(lex, char_best[k])
            feats = rows(lex, char_best[k], char_centroid[k], cands)
            out.append((cands, feats, lex))
        return out


def _lead(values: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """values[c] − the best value of any other scenario, for each candidate c."""
    if len(values) < 2:
        return values[cands]
    second, top = np.partition(values, -2)[-2:]
    other = np.where(values[cands] >= top, second, top)
    return values[cands] - other


def candidates(lex: Lexical, char: np.ndarray) -> np.ndarray:
    """Scenarios worth a probability: the best few by words and by characters."""
    picked: set[int] = set()
    for values in (lex.score, char):
        order = np.argsort(-values)[:CANDIDATES]
        picked.update(int(i) for i in order if values[i] > 0)
    return np.array(sorted(picked), dtype=np.int64)


def rows(lex: Lexical, char: np.ndarray, centroid: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """One row of FEATURES per candidate."""
    k = len(cands)
    return np.column_stack(
        [
            lex.score[cands],
            lex.overlap[cands],
            lex.fuzzy[cands],
            lex.clause[cands],
            lex.coverage[cands],
            lex.keyword[cands],
            char[cands],
            centroid[cands],
            _lead(lex.score, cands),
            _lead(char, cands),
            np.full(k, lex.unknown),
            np.full(k, np.log1p(len(lex.tokens))),
        ]
    )
