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


def fence_sources(hits: list[Any], context: Any = None, budget_tokens: int | None = None) -> str:
    """All passages fenced; trimmed to fit the model's context when the LLM layer can tell."""
    texts = [h.text if len(h.text) <= MAX_SOURCE_CHARS else h.text[:MAX_SOURCE_CHARS] + " ..." for h in hits]
    fitter = _llm_helper("fit_passages")
    if fitter is not None and context is not None:
        try:
            texts = list(fitter(context, texts, budget_tokens)) if budget_tokens else list(fitter(context, texts))
        except Exception:  # noqa: BLE001 - fitting is an optimisation; the char cap still holds
            pass
    return "\n\n".join(fence(i, h, t) for i, (h, t) in enumerate(zip(hits, texts), 1) if t)


def _llm_helper(name: str):
    try:
        import assistant.llm as llm
    except ImportError:
        return None
    return getattr(llm, name, None)


MARKER_HOLD = re.compile(r"^\[(?:sources?\s*)?[\d,\s]*$", re.I)
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

    from assistant.llm import stream_chat
    from assistant.templates import get_template

    template = get_template("rag", context.config.user_prompts_dir)
    system, user = template.render(sources=fence_sources(result.hits, context), question=question)
    messages = [{"role": "system", "content": system}]
    for turn in (history or [])[-MAX_HISTORY_MESSAGES:]:
        if turn.get("role") in ("user", "assistant") and turn.get("content"):
            messages.append({"role": turn["role"], "content": str(turn["content"])[:2000]})
    messages.append({"role": "user", "content": user})

    filt = CitationFilter(len(result.hits))
    parts: list[str] = []
    try:
        for delta in stream_chat(context, messages):
            shown = filt.feed(delta)
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
    yield from _grounding(context, reply, result.hits)
    yield Sources(sources)
    if as_json:
        yield Data(_payload(question, reply, True, sources, result.kb, cited=filt.cited))


def _grounding(context: Any, reply: str, hits: list[Any]) -> Iterator[Event]:
    """Run the LLM layer's grounding check when it exists; a warning if the reply strays."""
    try:
        from assistant.llm import grounding
    except ImportError:
        return
    check = getattr(grounding, "check", None) or getattr(grounding, "check_grounding", None)
    if check is None:
        return
    try:
        verdict = check(reply, [h.text for h in hits])
    except Exception:  # noqa: BLE001 - a checker failure must not hide the answer
        return
    ok = getattr(verdict, "grounded", verdict.get("grounded") if isinstance(verdict, dict) else bool(verdict))
    if not ok:
        yield Notice("warning", "parts of this answer are not supported by the sources; check them")


def _payload(question: str, reply: str, covered: bool, sources: list[Any], kb: str,
             cited: list[int] | None = None) -> dict[str, Any]:
    from dataclasses import asdict

    return {"question": question, "answer": reply, "covered": covered, "kb": kb,
            "sources": [asdict(s) for s in sources], "cited": cited or []}
