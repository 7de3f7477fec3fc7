"""rag's config keys, each declared once with its default and type.

`RagPlugin.settings` is this table. The retriever and a knowledge base also
declare it on the config they are given (declaring the same key twice is a
no-op), so a bare `Config` in a script or a test reads the same defaults as
the app.
"""

from __future__ import annotations

from assistant import Setting

from .kb import DEFAULT_KB
from .retriever import MIN_COVERAGE

SETTINGS: dict[str, Setting] = {
    "rag.kb": Setting(DEFAULT_KB, "active knowledge base"),
    "rag.k": Setting(5, "passages retrieved per question"),
    "rag.min_coverage": Setting(MIN_COVERAGE, "below this score a question counts as not covered by the notes"),
    "rag.followup": Setting("rules", "how follow-up questions become self-contained: rules, or llm (the model rewrites them)",
                            choices=("rules", "llm")),
    "vector_store.kind": Setting("chroma", "where vectors are kept", choices=("chroma", "faiss")),
    "vector_store.url": Setting("", "a Chroma server, e.g. http://127.0.0.1:8000 (empty: on disk)"),
}
