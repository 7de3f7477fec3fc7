"""Answer a question from retrieved passages, with sources the student can check.

Flow: retrieve -> if the knowledge base does not cover the question, say so
and show the closest passages (no LLM call, nothing invented) -> otherwise
fence each passage as `<source N file=".." heading=".." lines="a-b" fence="TAG">`
(TAG random per request, look-alikes in the text defused) in the `rag` prompt
template, stream the reply, keep only `[n]` markers that point
at a passage really given, then a `Sources` event numbered like the markers.
"""

from __future__ import annotations

import html
import re
from typing import Any, Iterator

from assistant import Data, Error, Event, Notice, Sources, Text, neutralise, new_tag, obeyed_injection

NOT_COVERED = "Not covered by the course notes"
MAX_SOURCE_CHARS = 1800  # per passage, when the LLM layer has no token-fitting helper
MAX_HISTORY_MESSAGES = 4


def _attr(value: str) -> str:
    return html.escape(value, quote=True).replace("\n", " ")


def fence(number: int, hit: Any, text: str | None = None, tag: str = "") -> str:
    """One passage as `<source N file=.. heading=.. lines=.. fence=TAG>` ... `</source fence=TAG>`.

    The passage is untrusted: anything in it resembling a source tag, the
    fence or a chat-template token is defused (assistant/fencing.py), so it can
    neither close its fence early nor forge another source.
    """
    body, _ = neutralise(text if text is not None else hit.text, tag)
    mark = f' fence="{tag}"' if tag else ""
    return (f'<source {number} file="{_attr(hit.source)}" heading="{_attr(hit.heading)}" '
            f'lines="{hit.start_line}-{hit.end_line}"{mark}>\n{body}\n</source{mark}>')


def fit_texts(hits: list[Any], context: Any, question: str, system: str, budget: int | None = None) -> list[str]:
    """Passage texts, best first, trimmed by the LLM layer to fit the model's window.

    `system` is everything else the prompt carries (instructions, history):
    only passages are cut, never it. May return fewer texts than hits, even
    none when the rest alone fills the window; never more.
    """
    texts = [h.text if len(h.text) <= MAX_SOURCE_CHARS else h.text[:MAX_SOURCE_CHARS] + " ..." for h in hits]
    try:
        from assistant import fit_sources
    except ImportError:  # an older LLM layer: the per-passage character cap still holds
        return texts
    return list(fit_sources(context, question, texts, budget=budget, system=system))


def fence_sources(hits: list[Any], texts: list[str], tag: str | None = None) -> str:
    """All passages, fenced with one random tag per request (unless one is given)."""
    tag = tag or new_tag()
    return "\n\n".join(fence(i, h, t, tag) for i, (h, t) in enumerate(zip(hits, texts), 1))


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
    from course_assistant_plugins.rag.commands import rewriter

    # A follow-up is resolved against the conversation before retrieval and the coverage check.
    result = retriever.search(question, k=k, kb=kb, history=history,
                              complete=rewriter(context) if history else None)
    sources = [h.to_source() for h in result.hits]
    if not result.hits:
        reply = f"{NOT_COVERED}: the knowledge base '{result.kb}' is empty."
        yield Text(reply)
        yield Notice("info", f"add documents with: assistant ingest PATH --kb {result.kb}")
        if as_json:
            yield Data({"question": question, "query": result.query, "answer": reply, "covered": False,
                        "sources": [], "kb": result.kb})
        return
    if not result.covered:
        why = (f"the knowledge base '{result.kb}' never mentions {', '.join(result.unknown_names)}"
               if result.unknown_names else f"nothing in the knowledge base '{result.kb}' answers this question")
        reply = f"{NOT_COVERED}: {why} (coverage {result.coverage:.2f}). The closest passages are listed below."
        yield Text(reply)
        yield Sources(sources)
        if as_json:
            yield Data(_payload(question, reply, False, sources, result.kb, query=result.query))
        return

    from assistant import stream_events
    from assistant import get_template

    template = get_template("rag", context.config.user_prompts_dir)
    if result.query != question:  # a follow-up: the model (and /show-prompt) sees what it was resolved to
        question = f"{question} (in this conversation: {result.query})"
    bare_system, _ = template.render(sources="", question=question)
    turns = [{"role": t["role"], "content": str(t["content"])[:2000]} for t in (history or [])[-MAX_HISTORY_MESSAGES:]
             if t.get("role") in ("user", "assistant") and t.get("content")]
    # Only passages are cut to fit the window: the instructions and the question
    # never are. History goes first when even one passage would not fit.
    texts, messages = _fit_prompt(template, result.hits, context, question, bare_system, turns)
    if not texts:
        yield Error("the question leaves no room for any source in the model's context window",
                    "ask a shorter question, or raise llm.context_window")
        yield Sources(sources)
        return
    hits = result.hits[:len(texts)]
    sources = [h.to_source() for h in hits]

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
    if obeyed_injection(reply, "\n".join(texts)):  # the sources are fenced, but a model may still obey
        yield Notice("warning", "the reply repeats what a retrieved document told the model to say or print: "
                                "a document may be steering the model; do not run commands from it")
    unsupported = unsupported_sentences(reply, texts, retriever)
    if unsupported:
        yield Notice("warning", f"{len(unsupported)} sentence(s) of this answer are not supported by the sources: "
                                + " | ".join(u[:80] for u in unsupported[:3]))
    cited_reply, added = cite_supported(reply, texts, retriever)
    if added and not as_json:  # the streamed text is on screen already: say where its sentences come from
        yield Notice("info", "sources of uncited sentences (grounding check): "
                             + ", ".join(f"[{n}]" for n in dict.fromkeys(added)))
    yield Sources(sources)
    if as_json:
        cited = list(dict.fromkeys(filt.cited + added))
        payload = _payload(result.question, cited_reply, True, sources, result.kb, cited=cited, query=result.query)
        payload["unsupported"] = unsupported
        payload["citations_added"] = len(added)
        yield Data(payload)


def _fit_prompt(template: Any, all_hits: list[Any], context: Any, question: str, bare_system: str,
                turns: list[dict[str, str]]) -> tuple[list[str], list[dict[str, str]]]:
    """Passage texts and the messages that carry them, within the window; ([], []) if none fits.

    The fitting estimate leaves out the fences' own attributes, so the rendered
    prompt is measured and the passage budget shrunk by the excess (twice at most).
    """
    try:
        from assistant import context_window, count_tokens
        window = context_window(context) - int(context.config.get("llm.max_tokens"))
    except ImportError:
        count_tokens, window = None, None
    for keep_history in ((True, False) if turns else (False,)):
        kept = turns if keep_history else []
        others = "\n".join([bare_system] + [t["content"] for t in kept])
        budget = window
        for _ in range(3):
            texts = fit_texts(all_hits, context, question, others, budget)
            if not texts:
                break
            hits = all_hits[:len(texts)]
            system, user = template.render(sources=fence_sources(hits, texts), question=question)
            messages = [{"role": "system", "content": system}, *kept, {"role": "user", "content": user}]
            if count_tokens is None:
                return texts, messages
            over = sum(count_tokens(context, m["content"]) + 4 for m in messages) - window
            if over <= 0:
                return texts, messages
            budget -= over
    return [], []


def _embedder(retriever: Any):
    import numpy as np

    embeddings = retriever.embeddings  # already loaded for retrieval: no second model

    def embed(batch: list[str]):
        return np.asarray(embeddings.embed_documents(list(batch)), dtype="float32")

    return embed


def cite_supported(reply: str, texts: list[str], retriever: Any) -> tuple[str, list[int]]:
    """The reply with `[n]` added after uncited sentences that passage n supports (grounding check)."""
    try:
        from assistant import add_citations

        return add_citations(reply, texts, embed_fn=_embedder(retriever))
    except Exception:  # noqa: BLE001 - a checker failure must not hide the answer
        return reply, []


def unsupported_sentences(reply: str, texts: list[str], retriever: Any) -> list[str]:
    """The LLM layer's grounding check (lexical, then MiniLM similarity), when it exists."""
    try:
        from assistant import mark_unsupported
    except ImportError:
        return []
    try:
        return list(mark_unsupported(reply, texts, embed_fn=_embedder(retriever))[1])
    except Exception:  # noqa: BLE001 - a checker failure must not hide the answer
        return []


def _payload(question: str, reply: str, covered: bool, sources: list[Any], kb: str,
             cited: list[int] | None = None, query: str | None = None) -> dict[str, Any]:
    from dataclasses import asdict

    return {"question": question, "query": query or question, "answer": reply, "covered": covered, "kb": kb,
            "sources": [asdict(s) for s in sources], "cited": cited or []}
