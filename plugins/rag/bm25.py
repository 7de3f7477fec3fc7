"""Okapi BM25 over a sparse matrix.

The scores equal rank_bm25's `BM25Okapi` (same idf with the epsilon floor, same
k1 and b), but a query costs one sparse column sum instead of a Python loop
over every document, so 100k chunks answer in milliseconds.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable, Sequence

TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
how i if in into is it its itself just me more most my no nor not now of off on once only or other our ours
out over own same she should so some such than that the their theirs them then there these they this those
through to too under until up very was we were what when where which while who whom why will with would you
your yours explain describe tell give please briefly mean means use used using does do
""".split())


# British spellings of the words ML texts use, folded to the American ones ("normalised" finds
# "Normalize", "colour" finds "color"): the stems whose -ise/-our forms are common in questions.
_ISE_STEMS = ("normal", "minim", "maxim", "optim", "visual", "recogn", "initial", "regular", "summar", "general",
              "organ", "parameter", "standard", "random", "penal", "util", "real", "categor", "token", "vector",
              "emphas", "character", "special", "stabil", "synthes", "memor", "priorit", "final", "serial", "quant",
              "discret", "binar", "linear", "central", "custom", "critic", "hypothes", "sanit")
_ISE = re.compile(r"^(" + "|".join(sorted(_ISE_STEMS, key=len, reverse=True)) + r")is(e|ed|es|ing|ation|ations|er|ers)$")
_OUR = re.compile(r"^(col|behavi|neighb|fav|hon|lab|flav|hum|rum)our(s|ed|ing|ful)?$")


def _american(word: str) -> str:
    folded = _ISE.sub(r"\1iz\2", word)
    return _OUR.sub(r"\1or\2", folded) if folded == word else folded


def stem(word: str) -> str:
    """A deliberately light stemmer: British spellings folded, then plural endings only."""
    word = _american(word)
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    return [stem(t) for t in TOKEN.findall(text.lower()) if t not in STOPWORDS]


# Words that course texts use interchangeably for the same part of an argument: a question about
# "drawbacks" must find a list labelled "Cons". General English only, nothing about one subject.
SYNONYM_GROUPS = (
    ("drawback", "downside", "disadvantage", "con", "limitation", "weakness", "shortcoming"),
    ("advantage", "benefit", "pro", "strength", "upside"),
    ("hard", "difficult", "challenge", "difficulty"),
    # data preparation: "how are the pixels scaled?" must find "# Normalize to [0, 1]"
    ("scale", "scaled", "scaling", "rescale", "rescaled", "rescaling", "normalize", "normalized", "normalizing",
     "normalization"),
)
_SYNONYMS = {stem(w): tuple(dict.fromkeys(stem(x) for x in group if stem(x) != stem(w)))
             for group in SYNONYM_GROUPS for w in group}


def expand_query(tokens: list[str]) -> list[str]:
    """The query's tokens plus their synonyms (SYNONYM_GROUPS), for ranking only."""
    return tokens + [s for t in tokens for s in _SYNONYMS.get(t, ())]


class BM25:
    def __init__(self, corpus: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        import numpy as np
        from scipy import sparse

        self.n_docs = len(corpus)
        self.vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[float] = []
        lengths = np.zeros(self.n_docs, dtype=np.float64)
        for d, tokens in enumerate(corpus):
            lengths[d] = len(tokens)
            for term, tf in Counter(tokens).items():
                rows.append(d)
                cols.append(self.vocab.setdefault(term, len(self.vocab)))
                tfs.append(tf)
        n_terms = len(self.vocab)
        rows_a = np.asarray(rows, dtype=np.int64)
        cols_a = np.asarray(cols, dtype=np.int64)
        tf_a = np.asarray(tfs, dtype=np.float64)
        df = np.bincount(cols_a, minlength=n_terms).astype(np.float64)
        idf = np.log(self.n_docs - df + 0.5) - np.log(df + 0.5) if n_terms else df
        if n_terms:
            floor = epsilon * float(idf.mean())
            idf = np.where(idf < 0, floor, idf)
        avgdl = float(lengths.mean()) if self.n_docs else 0.0
        norm = k1 * (1 - b + b * lengths[rows_a] / (avgdl or 1.0))
        weights = idf[cols_a] * tf_a * (k1 + 1) / (tf_a + norm)
        self.matrix = sparse.csc_matrix((weights, (rows_a, cols_a)), shape=(self.n_docs, n_terms))
        self.idf = idf

    def scores(self, query_tokens: Iterable[str]):
        import numpy as np

        counts = Counter(t for t in query_tokens if t in self.vocab)
        if not counts or not self.n_docs:
            return np.zeros(self.n_docs)
        ids = [self.vocab[t] for t in counts]
        weights = np.asarray([counts[t] for t in counts], dtype=np.float64)
        return np.asarray(self.matrix[:, ids] @ weights).ravel()

    def top(self, query_tokens: Iterable[str], n: int) -> list[tuple[int, float]]:
        import numpy as np

        scores = self.scores(query_tokens)
        if not len(scores):
            return []
        n = min(n, len(scores))
        idx = np.argpartition(-scores, n - 1)[:n]
        idx = idx[np.argsort(-scores[idx])]
        return [(int(i), float(scores[i])) for i in idx if scores[i] > 0]


def idf_mass(bm25: BM25, query_tokens: Sequence[str]) -> float:
    """Fraction of the query's idf weight found in the corpus vocabulary (0..1)."""
    if not query_tokens:
        return 0.0
    max_idf = math.log(bm25.n_docs + 0.5) - math.log(0.5) if bm25.n_docs else 1.0
    known = sum(float(bm25.idf[bm25.vocab[t]]) if t in bm25.vocab else 0.0 for t in query_tokens)
    return known / (max_idf * len(query_tokens))
