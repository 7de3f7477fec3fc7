"""Hybrid retrieval: dense (MiniLM cosine) + BM25, fused by their scores.

Both rankers see the chunk text with its heading path in front; BM25 also
sees the query's synonyms (bm25.expand_query). Each returns its top
CANDIDATES; the fused score of a chunk in either list is
DENSE_SHARE * cosine + (1 - DENSE_SHARE) * BM25 / the query's best BM25 (a
chunk the dense ranker did not return counts the lowest cosine it did).
Scores, not ranks: on a course text we did not write, a chunk that BM25 puts
first by far (the code line with the exact identifiers) keeps its lead, where
reciprocal rank fusion let explanations that both rankers placed middling
pass it (docs/rag.md has the measurements on four QA sets). A third term,
HEADING_SHARE * the cosine between the question and the chunk's heading path
(embedded once per distinct path at ingest), favours the section a question
names ("Moving the randomness outside the network" for "how is z sampled so
gradients flow?") over a passage that merely shares its words.

A question counts as covered by the knowledge base when its coverage score
(see MIN_COVERAGE) reaches `rag.min_coverage`; otherwise callers answer "not
covered" and show the closest passages.

This is also the `retriever` service other plugins reach via
`context.retriever`: `search(question, k=None, kb=None) -> Retrieval`.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from assistant import Error, Event, Notice, Progress, Source

DENSE_SHARE = 0.65
HEADING_SHARE = 0.2
CANDIDATES = 40  # per ranker, before fusion
# Coverage = best dense cosine + LEXICAL_WEIGHT * (share of the query's idf weight
# found in the best BM25 chunk). The lexical part rescues short questions about
# a rare term ("What is HNSW?") that MiniLM scores low. Calibrated on
# knowledge/qa/retrieval_qa.jsonl: out-of-scope questions reach <= 0.35,
# in-scope ones >= 0.37 (docs/rag.md).
LEXICAL_WEIGHT = 0.5
MIN_COVERAGE = 0.41
# A question naming something the knowledge base never mentions ("the Wasserstein
# loss", "BM25") loses this much coverage (plugins/rag/names.py): enough to push
# near-miss questions under the threshold, not enough to reject an in-scope one
# whose other words match well (docs/rag.md).
UNKNOWN_NAME_PENALTY = 0.3


@dataclass
class Hit:
    source: str
    heading: str
    start_line: int
    end_line: int
    score: float
    text: str
    dense: float = 0.0  # cosine, 0 when the dense ranker did not return it
    bm25: float = 0.0

    def to_source(self) -> Source:
        return Source(self.source, self.heading, self.start_line, self.end_line, round(self.score, 4), self.text)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Retrieval:
    question: str
    covered: bool
    hits: list[Hit] = field(default_factory=list)
    best_dense: float = 0.0
    kb: str = "default"
    coverage: float = 0.0  # best dense cosine + LEXICAL_WEIGHT * query-term overlap
    query: str = ""  # what was searched: the question, or a follow-up resolved against the conversation
    followup: str = "none"  # how it was resolved: "none", "rules" or "llm" (assistant.followup)
    unknown_names: list[str] = field(default_factory=list)  # names in the question the knowledge base never mentions

    def as_dict(self) -> dict[str, Any]:
        return {"question": self.question, "query": self.query or self.question, "followup": self.followup,
                "covered": self.covered, "coverage": self.coverage, "unknown_names": self.unknown_names,
                "hits": [h.as_dict() for h in self.hits]}


class _Lexical:
    """BM25 and the chunk table of one knowledge base generation, in memory."""

    def __init__(self, kb: Any):
        from course_assistant_plugins.rag.bm25 import BM25, tokenize
        from course_assistant_plugins.rag.chunking import indexed_text

        self.generation = kb.generation()
        rows = kb.all_chunks()
        self.ids = [r[0] for r in rows]
        self.rows = {r[0]: r for r in rows}
        self.tokens = [tokenize(indexed_text(r[2], r[5])) for r in rows]
        self.bm25 = BM25(self.tokens)
        self.heading_vectors = kb.heading_vectors()
        self._prefixes: frozenset[str] | None = None

    def unknown_names(self, question: str) -> list[str]:
        from course_assistant_plugins.rag.names import prefix_index, unknown_names

        if self._prefixes is None:
            self._prefixes = prefix_index(self.bm25.vocab)
        return unknown_names(question, self.bm25.vocab, self._prefixes)

    def overlap(self, query_tokens: list[str], best: int | None) -> float:
        """Share of the query's idf weight that the best BM25 chunk contains (0..1)."""
        import math

        if best is None or not query_tokens:
            return 0.0
        present = set(self.tokens[best])
        max_idf = math.log(self.bm25.n_docs + 0.5) - math.log(0.5)
        found = sum(float(self.bm25.idf[self.bm25.vocab[t]]) for t in query_tokens if t in present)
        return found / (max_idf * len(query_tokens))


class Retriever:
    def __init__(self, config: Any, embeddings: Any = None):
        from course_assistant_plugins.rag.settings import SETTINGS

        config.declare(SETTINGS)  # a bare Config (scripts, tests) gets rag's defaults too
        self.config = config
        self._embeddings = embeddings
        self._kbs: dict[str, Any] = {}
        self._lexical: dict[str, _Lexical] = {}
        self._ready: set[str] = set()
        self._lock = threading.RLock()

    # -- knowledge bases ---------------------------------------------------------
    def kb_name(self, kb: str | None = None) -> str:
        from course_assistant_plugins.rag.kb import check_name

        return check_name(kb or str(self.config.get("rag.kb")))

    def knowledge_base(self, name: str | None = None):
        from course_assistant_plugins.rag.kb import KnowledgeBase

        name = self.kb_name(name)
        with self._lock:
            if name not in self._kbs:
                self._kbs[name] = KnowledgeBase(self.config, name, self._embeddings)
            return self._kbs[name]

    @property
    def embeddings(self):
        if self._embeddings is None:
            from assistant import get_embeddings

            self._embeddings = get_embeddings()
        return self._embeddings

    def is_indexed(self, kb: str | None = None) -> bool:
        """The knowledge base was indexed before (reads one file; loads no model)."""
        return self.knowledge_base(kb).manifest_path.is_file()

    def prepare(self, kb: str | None = None, cancel: Any = None) -> Iterator[Event]:
        """Once per process: bring the default KB up to date with the built-in notes."""
        from assistant import knowledge_dir
        from course_assistant_plugins.rag.kb import DEFAULT_KB, default_roots

        name = self.kb_name(kb)
        if name in self._ready:
            return
        base = self.knowledge_base(name)
        if name == DEFAULT_KB:
            roots = default_roots(self.config)
            first = base.is_empty()
            if first:
                yield Notice("info", "indexing the course notes (first use)")
            for event in base.ingest(roots, cancel=cancel, builtin=knowledge_dir()):
                if isinstance(event, (Notice, Error)) or (first and isinstance(event, Progress)):
                    yield event
        self._ready.add(name)

    def forget(self, kb: str | None = None) -> None:
        """Drop cached state after a knowledge base was removed."""
        name = self.kb_name(kb)
        with self._lock:
            found = self._kbs.pop(name, None)
            if found is not None:
                found.close()
            self._lexical.pop(name, None)
            self._ready.discard(name)

    def _lexical_for(self, name: str) -> _Lexical:
        base = self.knowledge_base(name)
        with self._lock:
            cached = self._lexical.get(name)
            if cached is None or cached.generation != base.generation():
                cached = self._lexical[name] = _Lexical(base)
            return cached

    # -- search ------------------------------------------------------------------
    def search(self, question: str, k: int | None = None, kb: str | None = None,
               history: list[dict[str, str]] | None = None, complete: Any = None) -> Retrieval:
        """Passages for `question`; a follow-up is first resolved against `history`.

        The resolved query (assistant.followup) is what is ranked and what the
        coverage check judges; `complete(messages) -> str` lets a language
        model do the rewrite, with the rules as fallback.
        """
        from assistant import resolve_followup

        question = " ".join(str(question or "").split())
        resolution = resolve_followup(question, history, complete)
        result = self._search(resolution.resolved, k, kb)
        result.question, result.query, result.followup = question, resolution.resolved, resolution.method
        return result

    def _search(self, question: str, k: int | None, kb: str | None) -> Retrieval:
        import numpy as np

        from course_assistant_plugins.rag.bm25 import expand_query, tokenize

        for _ in self.prepare(kb):
            pass
        name = self.kb_name(kb)
        k = max(1, int(k or self.config.get("rag.k")))
        if not question:
            return Retrieval(question, False, [], 0.0, name)
        lexical = self._lexical_for(name)
        if not lexical.ids:
            return Retrieval(question, False, [], 0.0, name)
        n = max(CANDIDATES, 2 * k)
        vector = self.embeddings.embed_query(question)
        dense = [(cid, score) for cid, score in self.knowledge_base(name).store.search(vector, n)
                 if cid in lexical.rows]  # a vector without a committed chunk is ignored
        tokens = tokenize(question)
        sparse = [(lexical.ids[i], s) for i, s in lexical.bm25.top(expand_query(tokens), n)]
        dense_of = dict(dense)
        bm25_of = dict(sparse)
        floor = min(dense_of.values(), default=0.0)
        top_bm25 = max(bm25_of.values(), default=0.0) or 1.0
        query = np.asarray(vector, dtype=np.float32)

        def heading_similarity(cid: str) -> float:
            found = lexical.heading_vectors.get(lexical.rows[cid][2])
            return float(found @ query) if found is not None else 0.0

        fused = {cid: DENSE_SHARE * dense_of.get(cid, floor) + (1 - DENSE_SHARE) * bm25_of.get(cid, 0.0) / top_bm25
                 + HEADING_SHARE * heading_similarity(cid)
                 for cid in dict.fromkeys([c for c, _ in dense] + [c for c, _ in sparse])}
        best = max(dense_of.values(), default=0.0)
        order = sorted(fused, key=lambda cid: (-fused[cid], -dense_of.get(cid, 0.0)))[:k]
        hits = []
        for cid in order:
            _, source, heading, start, end, text = lexical.rows[cid]
            hits.append(Hit(source, heading, start, end, fused[cid], text, dense_of.get(cid, 0.0),
                            bm25_of.get(cid, 0.0)))
        # Coverage is judged on the question's own words (no synonyms): its threshold was calibrated so.
        top_plain = lexical.bm25.top(tokens, 1)
        overlap = lexical.overlap(tokens, top_plain[0][0] if top_plain else None)
        unknown = lexical.unknown_names(question)
        coverage = best + LEXICAL_WEIGHT * overlap - (UNKNOWN_NAME_PENALTY if unknown else 0.0)
        threshold = float(self.config.get("rag.min_coverage"))
        return Retrieval(question, coverage >= threshold, hits, best, name, round(coverage, 4), unknown_names=unknown)
