"""Slash commands and `assistant` subcommands of the rag plugin.

Slash: /ask, /retrieve, /ingest, /kb. CLI: ask (ask - for batches), retrieve, ingest, kb, eval retrieval, eval answers.
Both paths end in the same functions; known failures become one-line Errors.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from assistant import Bounded, Context, Data, Error, Event, Notice, Request, Sources, Text

ASK_FLAGS = {"k": Bounded(int, 1, 100), "kb": str, "retrieval_only": bool, "json": bool}
INGEST_FLAGS = {"kb": str, "json": bool}


def _known_errors() -> tuple[type[BaseException], ...]:
    from assistant import TemplateError
    from assistant import EmbeddingsUnavailable
    from course_assistant_plugins.rag.evaluate import QaFileError
    from course_assistant_plugins.rag.kb import KbError
    from course_assistant_plugins.rag.stores import StoreError

    return (KbError, StoreError, QaFileError, EmbeddingsUnavailable, TemplateError)


def guarded(events: Callable[[], Iterator[Event]]) -> Iterator[Event]:
    """Turn our own exceptions into Error events (hint included)."""
    try:
        yield from events()
    except _known_errors() as exc:
        yield Error(str(exc), getattr(exc, "hint", ""))


def retriever_of(context: Context):
    return context.retriever


# -- slash commands / intents ---------------------------------------------------------
def run(request: Request, context: Context) -> Iterator[Event]:
    command = request.command or request.intent or "ask"
    handlers = {"ask": _slash_ask, "retrieve": _slash_retrieve, "ingest": _slash_ingest, "kb": _slash_kb}
    handler = handlers.get(command)
    if handler is None:
        yield Error(f"rag: unknown command {command!r}")
        return
    yield from guarded(lambda: handler(request, context))


def _flags(request: Request, flags: dict[str, type]) -> tuple[str, dict[str, Any]] | Error:
    from assistant import parse_flags

    try:
        text, options = parse_flags(request.text, flags) if request.intent is None else (request.text, {})
    except ValueError as exc:
        return Error(str(exc))
    return text, {**{k: v for k, v in request.options.items() if k in flags}, **options}


def _slash_ask(request: Request, context: Context) -> Iterator[Event]:
    parsed = _flags(request, ASK_FLAGS)
    if isinstance(parsed, Error):
        yield parsed
        return
    question, opts = parsed
    if opts.get("retrieval_only"):
        yield from retrieval_only(question, context, opts.get("k"), opts.get("kb"), opts.get("json", False),
                                  history=request.history)
        return
    from course_assistant_plugins.rag.answer import answer

    yield from answer(question, context, retriever_of(context), k=opts.get("k"), kb=opts.get("kb"),
                      as_json=opts.get("json", False), history=request.history)


def _slash_retrieve(request: Request, context: Context) -> Iterator[Event]:
    parsed = _flags(request, ASK_FLAGS)
    if isinstance(parsed, Error):
        yield parsed
        return
    question, opts = parsed
    yield from retrieval_only(question, context, opts.get("k"), opts.get("kb"), opts.get("json", False),
                              history=request.history)


def _slash_ingest(request: Request, context: Context) -> Iterator[Event]:
    parsed = _flags(request, INGEST_FLAGS)
    if isinstance(parsed, Error):
        yield parsed
        return
    text, opts = parsed
    if request.intent is None:  # a slash command: the words are paths
        try:
            paths = shlex.split(text)
        except ValueError:
            paths = text.split()
    else:  # free text routed by intent: only words that name an existing path
        paths = named_paths(request.options.get("path"), text)
        folders = [p for p in paths if Path(p).expanduser().is_dir()]
        if folders:
            # A folder found in a sentence may not be what was meant (".", "~"): ask first.
            shown = " ".join(shlex.quote(str(Path(f).expanduser().resolve())) for f in folders)
            yield Notice("info", f"ingest the whole folder {shown}? To confirm, type: /ingest {shown}")
            return
    if not paths:
        yield Error("ingest needs a file or folder", "e.g. /ingest ~/notes/lecture3.pdf --kb mynotes")
        return
    yield from ingest(paths, context, opts.get("kb"), opts.get("json", False))


def named_paths(slot: Any, text: str) -> list[str]:
    """Paths a free-text request names explicitly: non-empty words (or the slot) that exist.

    "please ingest my notes ..." names none: an empty word would be the
    current folder, which is never ingested by accident.
    """
    words = [str(slot)] if slot else text.split()
    paths = []
    for word in words:
        word = word.strip("'\"“”‘’,;:()")
        bare = word.rstrip(".")  # a sentence's full stop; "..." and "." name nothing
        if not bare.strip("/"):
            continue
        for candidate in (bare, word):
            if Path(candidate).expanduser().exists():
                paths.append(candidate)
                break
    return paths


def _slash_kb(request: Request, context: Context) -> Iterator[Event]:
    from course_assistant_plugins.rag.kb import check_name

    name = request.text.strip()
    if not name:
        yield from kb_list(context, as_json=False)
        return
    check_name(name)
    context.config.set("rag.kb", name)
    described = retriever_of(context).knowledge_base(name).describe()
    state = f"{described['chunks']} chunks from {described['files']} files" if described["files"] else (
        "the built-in course notes (indexed on first use)" if name == "default" else "empty: add files with /ingest PATH")
    yield Notice("info", f"knowledge base set to '{name}' ({state})")


# -- shared actions ---------------------------------------------------------------------
def rewriter(context: Context) -> Callable[[list[dict[str, str]]], str] | None:
    """The LLM rewrite of follow-ups when `rag.followup = "llm"`; None means the rules alone."""
    if str(context.config.get("rag.followup")).lower() != "llm":
        return None

    def complete(messages: list[dict[str, str]]) -> str:
        from assistant import complete as llm_complete

        return llm_complete(context, messages, max_tokens=60, temperature=0.0)

    return complete


def search(question: str, context: Context, k: int | None, kb: str | None,
           history: list[dict[str, str]] | None = None):
    """Retrieval for one question of a conversation (the follow-up resolved first)."""
    return retriever_of(context).search(question, k=k, kb=kb, history=history,
                                        complete=rewriter(context) if history else None)


def retrieval_only(question: str, context: Context, k: int | None, kb: str | None, as_json: bool,
                   history: list[dict[str, str]] | None = None) -> Iterator[Event]:
    if not question.strip():
        yield Error("retrieve needs a question")
        return
    retriever = retriever_of(context)
    yield from retriever.prepare(kb, cancel=context.cancel)
    result = search(question, context, k, kb, history)
    if as_json:
        yield Data(result.as_dict())
        return
    verdict = "covered" if result.covered else "not covered by the course notes"
    if result.unknown_names:
        verdict += f"; never mentions {', '.join(result.unknown_names)}"
    asked = f" for: {result.query}" if result.query != result.question else ""
    yield Text(f"{len(result.hits)} passages from '{result.kb}'{asked} ({verdict}, coverage {result.coverage:.2f}).")
    yield Sources([h.to_source() for h in result.hits])


def ingest(paths: list[str], context: Context, kb: str | None, as_json: bool) -> Iterator[Event]:
    retriever = retriever_of(context)
    base = retriever.knowledge_base(kb)
    if base.name == "default":
        # The default KB always holds the built-in notes: bring them in first.
        yield from retriever.prepare(base.name, cancel=context.cancel)
    report = None
    for event in base.ingest(paths, cancel=context.cancel):
        if isinstance(event, Data):
            report = event.obj
        else:
            yield event
    if report is None:
        return
    if as_json:
        yield Data(report.as_dict())
    else:
        yield Text(report.summary())


def kb_list(context: Context, as_json: bool) -> Iterator[Event]:
    from course_assistant_plugins.rag.kb import list_kbs

    retriever = retriever_of(context)
    current = retriever.kb_name()
    rows = []
    for name in list_kbs(context.config):
        row = retriever.knowledge_base(name).describe()
        row["current"] = name == current
        rows.append(row)
    if as_json:
        yield Data(rows)
        return
    lines = [f"{'*' if r['current'] else ' '} {r['name']:<20} {r['files']:>5} files {r['chunks']:>7} chunks" for r in rows]
    yield Text("Knowledge bases (* = current):\n" + "\n".join(lines) + "\n")


def kb_remove(name: str, context: Context, as_json: bool) -> Iterator[Event]:
    from course_assistant_plugins.rag.kb import check_name, list_kbs

    check_name(name)
    retriever = retriever_of(context)
    base = retriever.knowledge_base(name)
    if not base.dir.exists() and name not in list_kbs(context.config):
        yield Error(f"no knowledge base named {name!r}", "see: assistant kb list")
        return
    base.remove()
    retriever.forget(name)
    if context.config.get("rag.kb") == name and name != "default":
        context.config.set("rag.kb", "default")
    message = f"knowledge base '{name}' removed" + (
        " (the built-in notes are indexed again on next use)" if name == "default" else "")
    yield Data({"action": "kb-remove", "kb": name}) if as_json else Text(message + "\n")


# -- command line -----------------------------------------------------------------------
class _QuestionArgument(argparse.Action):
    """`ask -` is the batch interface: it always prints one JSON line per answer (as if --json were given)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        if values == "-":
            namespace.json = True


def add_cli(subparsers: Any) -> None:
    from assistant import add_command

    p = add_command(subparsers, "ask", "answer a question from the course notes with sources", _cli_ask,
                    description="Answer QUESTION from the course notes, citing sources. QUESTION '-' reads "
                                "one question per line from stdin: a plain line is a question on its own, a JSON "
                                'line {"question": ..., "history": [{"role": "user"|"assistant", "content": ...}]} '
                                "carries the conversation so far, and a follow-up (\"what does the second one "
                                "do?\") is resolved against it before retrieval. With '-' every answer is one JSON "
                                'line on stdout ({"question", "query", "answer", "covered", "sources", "cited", '
                                '"unsupported", "seconds"}; a bad line gives {"line", "error"}) and the model is '
                                "loaded once for all of them (while the first question is retrieved). --session ID "
                                "continues a saved chat conversation and adds this turn to it.")
    p.add_argument("question", action=_QuestionArgument,
                   help="the question (quote it), or - to read questions / JSON lines from stdin (JSON out)")
    p.add_argument("--session", type=Bounded(int, 1, 2**63 - 1), default=None, metavar="ID",
                   help="continue the saved conversation ID (its history resolves follow-ups; the turn is saved)")
    p.add_argument("--k", type=int, default=None, help="passages to retrieve (default: rag.k = 5)")
    p.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: rag.kb)")
    p.add_argument("--retrieval-only", action="store_true", help="show the passages; no language model")

    p = add_command(subparsers, "retrieve", "retrieve passages for each line of stdin", _cli_retrieve,
                    description="Read one question per line on stdin; print one result per line "
                                '({"question", "query", "covered", "hits": [...]} with --json). A line may be JSON: '
                                '{"question": ..., "history": [{"role": "user"|"assistant", "content": ...}]}; '
                                'a follow-up is then resolved against its history and "query" shows the result.')
    p.add_argument("--k", type=int, default=None, help="passages per question (default 5)")
    p.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: rag.kb)")

    p = add_command(subparsers, "ingest", "index files or folders (Markdown, text, HTML, PDF) incrementally", _cli_ingest)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    p.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: rag.kb); a new one starts empty")

    p = subparsers.add_parser("kb", help="list or remove knowledge bases", description="list or remove knowledge bases")
    kb_sub = p.add_subparsers(dest="kb_command", metavar="ACTION", required=True)
    q = add_command(kb_sub, "list", "list knowledge bases with their files and chunks", _cli_kb_list)
    q = add_command(kb_sub, "remove", "delete a knowledge base's index", _cli_kb_remove)
    q.add_argument("name", metavar="NAME")
    q = add_command(kb_sub, "use", "make NAME the knowledge base used by default", _cli_kb_use)
    q.add_argument("name", metavar="NAME")

    from assistant import add_eval_command

    q = add_eval_command(subparsers, "retrieval", "hit@k, MRR@5, follow-ups and out-of-scope detection on QA files", _cli_eval,
                         description="Evaluate retrieval on one or more QA files in one run. A file whose gold sources "
                                     "are documents outside the knowledge base (found relative to the QA file, or by name "
                                     "in --documents DIR) is evaluated on a knowledge base of its own, eval-<file name>, "
                                     "into which those documents are ingested first (as a user would); the others use "
                                     "--kb / rag.kb. Lines with \"history\" are follow-ups, scored against their "
                                     "\"self_contained\" version.")
    q.add_argument("qa_files", nargs="+", metavar="QA.jsonl")
    q.add_argument("--k", type=int, default=5, help="passages per question (hit@5 always uses at least 5)")
    q.add_argument("--kb", default=None, metavar="NAME", help="knowledge base for QA sets over it (default: rag.kb)")
    q.add_argument("--documents", default=None, metavar="DIR",
                   help="where to find the documents a QA set is about, when not relative to the QA file")

    q = add_eval_command(subparsers, "answers",
                         "correctness, citations, faithfulness, refusals and speed of answers on a QA file",
                         _cli_eval_answers,
                         description="Answer every question of QA.jsonl with the configured model and score each answer: "
                                "key facts stated (\"facts\"), share of [n] citations pointing at the gold lines, share "
                                "of sentences the grounding check supports, out-of-scope questions declined, seconds "
                                "to the first text and in total. No LLM judge. knowledge/qa/notes_answer_qa.jsonl is "
                                "over the built-in notes; knowledge/qa/course_answer_qa.jsonl over the course text, "
                                "which (like any set whose sources are documents outside the knowledge base) is "
                                "ingested first into a knowledge base of its own, eval-<file name>.")
    q.add_argument("qa_file", metavar="QA.jsonl")
    q.add_argument("--model", dest="eval_model", default=None, metavar="BACKEND",
                   help="LLM backend for this run (default: llm.backend)")
    q.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: rag.kb)")
    q.add_argument("--k", type=int, default=None, help="passages per question (default: rag.k)")
    q.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only N questions (in-scope and out-of-scope in the file's proportion)")
    q.add_argument("--documents", default=None, metavar="DIR",
                   help="where to find the documents a QA set is about, when not relative to the QA file")


def _check_k(args: Any) -> Error | None:
    if getattr(args, "k", None) is not None and not 1 <= args.k <= 100:
        return Error(f"--k must be between 1 and 100, got {args.k}")
    return None


def _cli_ask(args: Any, context: Context) -> Iterator[Event]:
    bad = _check_k(args)
    if bad:
        yield bad
        return
    options = {"k": args.k, "kb": args.kb, "retrieval_only": args.retrieval_only, "json": args.json}
    options = {k: v for k, v in options.items() if v is not None}
    yield from guarded(lambda: _ask_with_history(args, context, options))


def _ask_one(question: str, history: list[dict[str, str]], options: dict[str, Any],
             context: Context) -> Iterator[Event]:
    request = Request(text=question, command=None, intent="ask", options=options, history=history)
    yield from _slash_ask(request, context)


def _ask_with_history(args: Any, context: Context, options: dict[str, Any]) -> Iterator[Event]:
    """`ask QUESTION` or `ask -` (stdin lines), optionally continuing a saved session."""
    from course_assistant_plugins.rag.inputs import Question, read_questions

    store, history = None, []
    if args.session is not None:
        store = _session_store(context, args.session)
        if isinstance(store, Error):
            yield store
            return
        history = store.history(args.session)
    if args.question != "-":
        yield from _ask_turn(args.question, history, options, context, store, args.session)
        return
    for question in read_questions(sys.stdin, args.json, context.cancel):
        if not isinstance(question, Question):  # a bad line's warning
            yield question
            continue
        turns = history + question.history if store is not None else question.history
        yield from _ask_turn(question.text, turns, options, context, store, args.session)
        if store is not None:  # the next line continues the session, this turn included
            history = store.history(args.session)


def _ask_turn(question: str, history: list[dict[str, str]], options: dict[str, Any], context: Context,
              store: Any, session_id: int | None) -> Iterator[Event]:  # noqa: PLR0913
    """Answer one question; with a session, save the question and the answer to it."""
    import time

    parts: list[str] = []
    started, first = time.perf_counter(), None
    for event in _ask_one(question, history, options, context):
        if isinstance(event, Text):
            parts.append(event.delta)
            first = first or time.perf_counter()
        elif isinstance(event, Data) and isinstance(event.obj, dict) and "answer" in event.obj:
            parts = [str(event.obj["answer"])]
            now = time.perf_counter()  # what a batch user needs to see where the time goes
            event.obj["seconds"] = {"first_text": round((first or now) - started, 3), "total": round(now - started, 3)}
        yield event
    if store is not None and session_id is not None:
        store.add_message(session_id, "user", question)
        store.add_message(session_id, "assistant", "".join(parts).strip() or "*(no text)*")


def _session_store(context: Context, session_id: int):
    """The session database with `session_id` in it, or an Error."""
    from assistant import SessionStore

    store = context.sessions
    if store is None:
        path = context.config.sessions_db
        if not path.exists():
            return Error(f"no saved conversations yet (no {path.name})", "start one in the chat: assistant")
        store = context.sessions = SessionStore(path)
    if not store.exists(session_id):
        return Error(f"no saved conversation with id {session_id}", "see /sessions in the chat")
    return store


def _cli_retrieve(args: Any, context: Context) -> Iterator[Event]:
    bad = _check_k(args)
    if bad:
        yield bad
        return

    def events() -> Iterator[Event]:
        from course_assistant_plugins.rag.inputs import Question, read_questions

        retriever = retriever_of(context)
        for event in retriever.prepare(args.kb, cancel=context.cancel):
            yield event
        # a blank line still gets its (empty) result line
        for question in read_questions(sys.stdin, args.json, context.cancel, keep_blank=True):
            if not isinstance(question, Question):  # a bad line's warning
                yield question
                continue
            result = search(question.text, context, args.k, args.kb, question.history)
            if args.json:
                yield Data(result.as_dict())
            else:
                asked = f"  (searched: {result.query})" if result.query != result.question else ""
                yield Text(f"Q: {question.text}{asked}  [{'covered' if result.covered else 'not covered'}]\n" + "".join(
                    f"  {i}. {h.to_source().label()}  score {h.score:.3f}\n" for i, h in enumerate(result.hits, 1)))

    yield from guarded(events)


def _cli_ingest(args: Any, context: Context) -> Iterator[Event]:
    yield from guarded(lambda: ingest(args.paths, context, args.kb, args.json))


def _cli_kb_list(args: Any, context: Context) -> Iterator[Event]:
    yield from guarded(lambda: kb_list(context, args.json))


def _cli_kb_remove(args: Any, context: Context) -> Iterator[Event]:
    yield from guarded(lambda: kb_remove(args.name, context, args.json))


def _cli_kb_use(args: Any, context: Context) -> Iterator[Event]:
    request = Request(text=args.name, command="kb")
    yield from guarded(lambda: _slash_kb(request, context))


def _cli_eval(args: Any, context: Context) -> Iterator[Event]:
    bad = _check_k(args)
    if bad:
        yield bad
        return

    def events() -> Iterator[Event]:
        results = []
        for qa_file in args.qa_files:
            metrics = None
            for event in eval_file(qa_file, context, args.k, args.kb, args.documents):
                if isinstance(event, Data):
                    metrics = event.obj
                else:
                    yield event
            if metrics is not None:
                results.append(metrics)
                if not args.json:
                    yield Text(eval_summary(metrics))
        if args.json:
            yield Data(results[0] if len(results) == 1 else {"sets": results})

    yield from guarded(events)


def _cli_eval_answers(args: Any, context: Context) -> Iterator[Event]:
    bad = _check_k(args)
    if bad:
        yield bad
        return
    if args.limit is not None and args.limit < 1:
        yield Error(f"--limit must be at least 1, got {args.limit}")
        return

    def events() -> Iterator[Event]:
        from course_assistant_plugins.rag.answer_eval import evaluate_answers, load_answer_qa, report, subset

        items = subset(load_answer_qa(args.qa_file), args.limit)
        items, kb = yield from eval_documents(args.qa_file, items, context, args.kb, args.documents)
        if args.eval_model:
            context.config.set("llm.backend", args.eval_model, save=False)
        # Greedy decoding: two runs of the same code and model give the same figures.
        context.config.override("llm.temperature", 0.0)
        context.drop_service("llm")
        for event in evaluate_answers(context, retriever_of(context), items, k=args.k, kb=kb):
            if isinstance(event, Data) and not args.json:
                yield Text(report(event.obj))
            else:
                yield event

    yield from guarded(events)


def eval_documents(qa_file: str, items: list[dict[str, Any]], context: Context, kb: str | None,
                   documents: str | None):
    """A QA set over outside documents gets a knowledge base of its own, eval-<file name>, with them ingested.

    A generator (yields ingest events); returns (items with sources as the ingested paths, the kb to use).
    """
    from course_assistant_plugins.rag.evaluate import document_sources, with_sources

    sources = document_sources(qa_file, items, documents)
    if not sources:
        return items, kb
    import re

    kb = "eval-" + re.sub(r"[^A-Za-z0-9_-]+", "-", Path(qa_file).stem)[:58]
    for event in ingest([str(p) for p in sorted(set(sources.values()))], context, kb, as_json=True):
        if not isinstance(event, Data):
            yield event
    return with_sources(items, sources), kb


def eval_file(qa_file: str, context: Context, k: int, kb: str | None, documents: str | None) -> Iterator[Event]:
    """Evaluate one QA file; a set over outside documents gets its own knowledge base with them ingested."""
    from course_assistant_plugins.rag.evaluate import evaluate, load_qa

    retriever = retriever_of(context)
    items, kb = yield from eval_documents(qa_file, load_qa(qa_file), context, kb, documents)
    yield from retriever.prepare(kb, cancel=context.cancel)
    for event in evaluate(retriever, items, k=k, kb=kb, cancel=context.cancel):
        if isinstance(event, Data):
            event.obj.update({"file": qa_file, "kb": retriever.kb_name(kb)})
        yield event


def eval_summary(m: dict[str, Any]) -> str:
    lines = [f"{m['file']} (knowledge base '{m['kb']}'): {m['questions']} questions, {m['in_scope']} in scope, "
             f"{m['out_of_scope']} out of scope, {m['followups']} follow-ups"]
    if m.get("in_scope"):
        lines.append(f"exact hit@1 {m['hit@1']:.3f}  hit@3 {m['hit@3']:.3f}  hit@5 {m['hit@5']:.3f}  "
                     f"MRR@5 {m['mrr@5']:.3f}  any@5 {m['any@5']:.3f}  in-scope rejected {m['in_scope_rejection']:.3f}")
    if m.get("out_of_scope_accuracy") is not None:
        lines.append(f"out-of-scope accuracy {m['out_of_scope_accuracy']:.3f}")
    if m.get("followups"):
        lines.append(f"follow-ups hit@3 {m['followup_hit@3']:.3f} vs self-contained {m['self_contained_hit@3']:.3f}"
                     f"  (rejected {m['followup_rejection']:.3f})")
    if "query_ms_p50" in m:
        lines.append(f"query p50 {m['query_ms_p50']:.1f} ms, p95 {m['query_ms_p95']:.1f} ms")
    return "\n".join(lines) + "\n"


def doctor(context: Context) -> list[dict[str, Any]]:
    from course_assistant_plugins.rag.kb import list_kbs
    from course_assistant_plugins.rag.stores import StoreError, store_key

    try:
        key = store_key(context.config)
        ok = True
    except StoreError as exc:
        key, ok = str(exc), False
    return [{"name": "vector store", "ok": ok, "detail": key},
            {"name": "knowledge bases", "ok": True, "detail": ", ".join(list_kbs(context.config))}]
