"""Second stage: re-rank the fused candidates by their best-matching window.

A chunk is embedded as a whole, so one line that answers the question (a
`Dense(..., activation="sigmoid")` in a 40-line class, a single bullet of a
revision summary) is diluted by the rest. Here each candidate is cut into
small windows (a sentence, or two or three lines of code), each window is
embedded with the same MiniLM, and a candidate's window score is the best
cosine between the question and one of its windows. Window vectors are cached
per chunk for the life of the knowledge base generation, so a chunk is cut and
embedded once per process.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, Sequence

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`$*])")
MAX_WINDOW_WORDS = 40
CODE_LINES = 3


def windows(heading: str, text: str) -> list[str]:
    """Small pieces of a chunk, each prefixed with the chunk's nearest heading for context."""
    from plugins.rag.chunking import prose

    label = heading.rsplit(" > ", 1)[-1] if heading else ""
    pieces: list[str] = []
    lines = [line.strip() for line in prose(text).splitlines() if line.strip() and not line.strip().startswith("```")]
    code: list[str] = []

    def flush_code() -> None:
        for i in range(0, len(code), CODE_LINES):
            pieces.append(" ".join(code[i:i + CODE_LINES]))
        code.clear()

    for line in lines:
        looks_like_code = bool(re.search(r"[=(){}\[\]]", line)) and not re.search(r"[.!?]$", line)
        if looks_like_code:
            code.append(line)
            continue
        flush_code()
        for sentence in SENTENCE_END.split(line):
            words = sentence.split()
            for i in range(0, len(words), MAX_WINDOW_WORDS):
                pieces.append(" ".join(words[i:i + MAX_WINDOW_WORDS]))
    flush_code()
    pieces = [p for p in pieces if len(p) > 3]
    return [f"{label}: {p}" if label else p for p in pieces] or [label or text[:200]]


class WindowScorer:
    """Best window cosine per chunk, with window vectors cached by chunk id."""

    def __init__(self, embed_documents: Callable[[list[str]], Sequence[Sequence[float]]]):
        self.embed_documents = embed_documents
        self._vectors: dict[str, Any] = {}
        self._lock = threading.Lock()

    def best(self, query_vector: Sequence[float], candidates: list[tuple[str, str, str]]) -> dict[str, float]:
        """candidates: (chunk id, heading, text) -> {chunk id: best window cosine}."""
        import numpy as np

        missing = [(cid, heading, text) for cid, heading, text in candidates if cid not in self._vectors]
        if missing:
            texts: list[str] = []
            spans: list[tuple[str, int, int]] = []
            for cid, heading, text in missing:
                pieces = windows(heading, text)
                spans.append((cid, len(texts), len(texts) + len(pieces)))
                texts.extend(pieces)
            matrix = np.asarray(self.embed_documents(texts), dtype="float32")
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix = matrix / np.where(norms == 0, 1, norms)
            with self._lock:
                for cid, a, b in spans:
                    self._vectors[cid] = matrix[a:b]
        query = np.asarray(query_vector, dtype="float32")
        query = query / (np.linalg.norm(query) or 1.0)
        return {cid: float((self._vectors[cid] @ query).max()) for cid, _, _ in candidates}
