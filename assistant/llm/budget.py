"""Token budgets: count tokens and fit retrieved sources into the model's window.

Counting uses the active model's own tokenizer when it is already in memory
(no waiting for a model to load just to count); otherwise a conservative
estimate of one token per 3.5 characters, which over-counts English text for
the tokenizers we ship, so a fitted prompt still fits.
"""

from __future__ import annotations

import math
import re
from typing import Any

CHARS_PER_TOKEN = 3.5
FENCE_OVERHEAD = 16  # tokens for `<source N file › heading>` ... `</source>` around one passage
TEMPLATE_OVERHEAD = 48  # chat-template markers and the instructions around sources and question


def _tokenizer_count(context: Any):
    """A counting function from the active model if it is loaded, else None."""
    llm = context.loaded_service("llm")
    if llm is None:
        return None
    tokenizer_if_ready = getattr(llm, "tokenizer_if_ready", None)
    if tokenizer_if_ready is not None:
        tokenizer = tokenizer_if_ready()
        if tokenizer is not None:
            return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
    counter = getattr(llm, "count_tokens", None)
    if counter is not None and callable(counter):
        return counter
    return None


def count_tokens(context: Any, text: str) -> int:
    """Tokens in `text` for the active model (exact when it is loaded, else an over-estimate)."""
    counter = _tokenizer_count(context)
    if counter is not None:
        try:
            return int(counter(text))
        except Exception:  # noqa: BLE001 - fall back to the estimate
            pass
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def context_window(context: Any) -> int:
    """Prompt + reply tokens the active backend accepts (`llm.context_window`, default 4096)."""
    configured = int(context.config.get("llm.context_window"))
    llm = context.loaded_service("llm")
    window = getattr(llm, "window", None)
    return min(configured, window()) if callable(window) else configured


def _cut(text: str, tokens: int, context: Any) -> str:
    """The longest prefix of `text` within `tokens`, ended at a sentence (else word) boundary."""
    if count_tokens(context, text) <= tokens:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # binary search on characters
        mid = (lo + hi + 1) // 2
        if count_tokens(context, text[:mid]) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    head = text[:lo]
    ends = [m.end() for m in re.finditer(r"[.!?](\s|$)", head)]
    if ends and ends[-1] > len(head) // 2:
        return head[: ends[-1]].rstrip() + " …"
    space = head.rfind(" ")
    return (head[:space] if space > len(head) // 2 else head).rstrip() + " …"


def fit_sources(context: Any, question: str, sources: list[str], budget: int | None = None,
                system: str = "", min_tokens: int = 40) -> list[str]:
    """Trim retrieved passages so the prompt fits the model's context window.

    For the RAG plugin: call it with the question and the passage texts, best
    first, BEFORE fencing and numbering them; fence and number what it returns.

    - `budget`: tokens allowed for the whole prompt (system + question +
      sources). Default: `context_window(context)` minus the reply's
      `llm.max_tokens`.
    - The question (and `system`) are never shortened: only sources are cut.
    - Sources keep their order. Whole sources are kept while they fit; the
      first that does not fit is cut at a sentence boundary if at least
      `min_tokens` remain, and the rest are dropped. The result may be
      shorter than `sources` (possibly empty when the question alone fills the
      budget), never longer; every kept item is a prefix of its original.
    """
    if budget is None:
        budget = context_window(context) - int(context.config.get("llm.max_tokens"))
    left = budget - TEMPLATE_OVERHEAD - count_tokens(context, question) - (count_tokens(context, system) if system else 0)
    kept: list[str] = []
    for text in sources:
        cost = count_tokens(context, text) + FENCE_OVERHEAD
        if cost <= left:
            kept.append(text)
            left -= cost
            continue
        room = left - FENCE_OVERHEAD
        if room >= min_tokens:
            kept.append(_cut(text, room, context))
        break
    return kept
