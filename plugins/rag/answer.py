"""Answer a question from retrieved passages, with sources the student can check.

Flow: retrieve -> if the knowledge base does not cover the question, say so
and show the closest passages (no LLM call, nothing invented) -> otherwise
fence each passage as `<source N file=".." heading=".." lines="a-b">` in the
`rag` prompt template, stream the reply, keep only `[n]` markers that point
at a passage really given, then a `Sources` event numbered like the markers.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterator

from assistant.events import Data, Error, Event, Notice, Sources, Text

NOT_COVERED = "Not covered by the course notes"
MAX_SOURCE_CHARS = 1800  # per passage, when the LLM layer has no token-fitting helper
MAX_HISTORY_MESSAGES = 4


def _attr(value: str) -> str:
    return html.escape(value, quote=True).replace("\n", " ")


def fence(number: int, hit: Any, text: str | None = None) -> str:
    body = (text if text is not None else hit.text).replace("</source>", "</ source>")
    return (f'<source {number} file="{_attr(hit.source)}" heading="{_attr(hit.heading)}" '
            f'lines="{hit.start_line}-{hit.end_line}">\n{body}\n</source>')


def fit_texts(hits: list[Any], context: Any, question: str, system: str) -> list[str]:
    """Passage texts, best first, trimmed by the LLM layer to fit the model's window.

    May return fewer texts than hits (the tail did not fit); never more.
    """
    texts = [h.text if len(h.text) <= MAX_SOURCE_CHARS else h.text[:MAX_SOURCE_CHARS] + " ..." for h in hits]
    try:
        from assistant.llm import fit_sources
    except ImportError:  # an older LLM layer: the per-passage character cap still holds
        return texts
    return list(fit_sources(context, question, texts, system=system)) or texts[:1]


def fence_sources(hits: list[Any], texts: list[str]) -> str:
    return "\n\n".join(fence(i, h, t) for i, (h, t) in enumerate(zip(hits, texts), 1))


# What may still become a marker: "[", "[sou" (a prefix of "source"), "[source 1, 2".
MARKER_HOLD = re.compile(r"^\[(?:s(?:o(?:u(?:r(?:c(?:es?)?)?)?)?)?\s*)?[\d,\s]*$", re.I)
MARKER = re.compile(r"^\[(?:sources?\s*)?([\d,\s]+)\]$", re.I)


class CitationFilter:
    """Streams text through, keeping `[n]` markers only when 1 <= n <= count.

    A marker may arrive split over several deltas, so text from a "[" is held
    back until it either closes as a marker or stops looking like one.
    `[source 2]` is rewritten as `[2]`; `[1, 7]` with 7 sources unknown -> `[1]`.
    """

    def __init__(self, count: int):
        self.count = count
        self.held = ""
        self.cited: list[int] = []
        self.dropped = 0

    def feed(self, delta: str) -> str:
        out: list[str] = []
        for ch in delta:
            if self.held:
                self.held += ch
                if ch == "]":
                    out.append(self._resolve(self.held))
                    self.held = ""
                elif not MARKER_HOLD.match(self.held) or len(self.held) > 24:
                    pending, self.held = self.held, ""
                    out.append(pending[:-1])
                    out.append(self.feed(pending[-1]))
            elif ch == "[":
                self.held = ch
            else:
                out.append(ch)
        return "".join(out)

    def _resolve(self, marker: str) -> str:
        found = MARKER.match(marker)
        if not found:
            return marker
        numbers = [int(n) for n in re.findall(r"\d+", found.group(1))]
        valid = [n for n in numbers if 1 <= n <= self.count]
        self.dropped += len(numbers) - len(valid)
        for n in valid:
            if n not in self.cited:
                self.cited.append(n)
        return "[" + ", ".join(str(n) for n in valid) + "]" if valid else ""

    def flush(self) -> str:
        rest, self.held = self.held, ""
        return rest


def clean_citations(text: str, count: int) -> tuple[str, list[int]]:
    f = CitationFilter(count)
    out = f.feed(text) + f.flush()
    return out, f.cited


def answer(question: str, context: Any, retriever: Any, k: int | None = None, kb: str | None = None,
           as_json: bool = False, history: list[dict[str, str]] | None = None) -> Iterator[Event]:
    question = " ".join(question.split())
    if not question:
        yield Error("ask needs a question", 'e.g. /ask "what does the KL term do in a VAE?"')
        return
    # Start loading the language model now: on the command line it loads while retrieval runs.
    getattr(context, "llm", None)
    yield from retriever.prepare(kb, cancel=context.cancel)
    result = retriever.search(question, k=k, kb=kb)
    sources = [h.to_source() for h in result.hits]
    if not result.hits:
        reply = f"{NOT_COVERED}: the knowledge base '{result.kb}' is empty."
        yield Text(reply)
        yield Notice("info", f"add documents with: assistant ingest PATH --kb {result.kb}")
        if as_json:
            yield Data({"question": question, "answer": reply, "covered": False, "sources": [], "kb": result.kb})
        return
    if not result.covered:
        reply = (f"{NOT_COVERED}: nothing in the knowledge base '{result.kb}' answers this question "
                 f"(coverage {result.coverage:.2f}). The closest passages are listed below.")
        yield Text(reply)
        yield Sources(sources)
        if as_json:
            yield Data(_payload(question, reply, False, sources, result.kb))
        return

    from assistant.llm import stream_events
    from assistant.templates import get_template

    template = get_template("rag", context.config.user_prompts_dir)
    bare_system, _ = template.render(sources="", question=question)
    texts = fit_texts(result.hits, context, question, bare_system)
    hits = result.hits[:len(texts)]
    sources = [h.to_source() for h in hits]
    system, user = template.render(sources=fence_sources(hits, texts), question=question)
    messages = [{"role": "system", "content": system}]
    for turn in (history or [])[-MAX_HISTORY_MESSAGES:]:
        if turn.get("role") in ("user", "assistant") and turn.get("content"):
            messages.append({"role": turn["role"], "content": str(turn["content"])[:2000]})
    messages.append({"role": "user", "content": user})

    filt = CitationFilter(len(hits))
    parts: list[str] = []
    try:
        for event in stream_events(context, messages):
            if not isinstance(event, Text):
                yield event  # model loading / fallback notices
                continue
            shown = filt.feed(event.delta)
            if shown:
                parts.append(shown)
                yield Text(shown)
            if context.cancel.cancelled:
                break
    except Exception as exc:  # noqa: BLE001 - a failing backend still leaves the sources
        yield Error(f"the language model failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                    "try --model extractive, or --retrieval-only for passages alone")
        yield Sources(sources)
        return
    tail = filt.flush()
    if tail:
        parts.append(tail)
        yield Text(tail)
    reply = "".join(parts)
    if filt.dropped:
        yield Notice("info", f"removed {filt.dropped} citation(s) to sources that were not retrieved")
    unsupported = unsupported_sentences(reply, texts, retriever)
    if unsupported:
        yield Notice("warning", f"{len(unsupported)} sentence(s) of this answer are not supported by the sources: "
                                + " | ".join(u[:80] for u in unsupported[:3]))
    yield Sources(sources)
    if as_json:
        payload = _payload(question, reply, True, sources, result.kb, cited=filt.cited)
        payload["unsupported"] = unsupported
        yield Data(payload)


def unsupported_sentences(reply: str, texts: list[str], retriever: Any) -> list[str]:
    """The LLM layer's grounding check (lexical, then MiniLM similarity), when it exists."""
    try:
        from assistant.llm.grounding import mark_unsupported
    except ImportError:
        return []
    try:
        import numpy as np

        embeddings = retriever.embeddings  # already loaded for retrieval: no second model

        def embed(batch: list[str]):
            return np.asarray(embeddings.embed_documents(list(batch)), dtype="float32")

        return list(mark_unsupported(reply, texts, embed_fn=embed)[1])
    except Exception:  # noqa: BLE001 - a checker failure must not hide the answer
        return []


def _payload(question: str, reply: str, covered: bool, sources: list[Any], kb: str,
             cited: list[int] | None = None) -> dict[str, Any]:
    from dataclasses import asdict

    return {"question": question, "answer": reply, "covered": covered, "kb": kb,
            "sources": [asdict(s) for s in sources], "cited": cited or []}
