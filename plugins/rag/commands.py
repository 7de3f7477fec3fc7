"""Slash commands and `assistant` subcommands of the rag plugin.

Slash: /ask, /retrieve, /ingest, /kb. CLI: ask, retrieve, ingest, kb, eval retrieval.
Both paths end in the same functions; known failures become one-line Errors.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from assistant.events import Data, Error, Event, Notice, Sources, Text
from assistant.plugin import Context, Request

ASK_FLAGS = {"k": int, "kb": str, "retrieval_only": bool, "json": bool}
INGEST_FLAGS = {"kb": str, "json": bool}


def _known_errors() -> tuple[type[BaseException], ...]:
    from assistant.templates import TemplateError
    from assistant.embeddings import EmbeddingsUnavailable
    from plugins.rag.evaluate import QaFileError
    from plugins.rag.kb import KbError
    from plugins.rag.stores import StoreError

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
    from assistant.router import parse_flags

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
        yield from retrieval_only(question, context, opts.get("k"), opts.get("kb"), opts.get("json", False))
        return
    from plugins.rag.answer import answer

    yield from answer(question, context, retriever_of(context), k=opts.get("k"), kb=opts.get("kb"),
                      as_json=opts.get("json", False), history=request.history)


def _slash_retrieve(request: Request, context: Context) -> Iterator[Event]:
    parsed = _flags(request, ASK_FLAGS)
    if isinstance(parsed, Error):
        yield parsed
        return
    question, opts = parsed
    yield from retrieval_only(question, context, opts.get("k"), opts.get("kb"), opts.get("json", False))


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
    else:  # free text routed by intent: keep the words that name existing paths
        slot = request.options.get("path")
        paths = [slot] if slot else [w.strip("'\".,;") for w in text.split()
                                     if Path(w.strip("'\".,;")).expanduser().exists()]
    if not paths:
        yield Error("ingest needs a file or folder", "e.g. /ingest ~/notes/lecture3.pdf --kb mynotes")
        return
    yield from ingest(paths, context, opts.get("kb"), opts.get("json", False))


def _slash_kb(request: Request, context: Context) -> Iterator[Event]:
    from plugins.rag.kb import check_name

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
def retrieval_only(question: str, context: Context, k: int | None, kb: str | None, as_json: bool) -> Iterator[Event]:
    if not question.strip():
        yield Error("retrieve needs a question")
        return
    retriever = retriever_of(context)
    yield from retriever.prepare(kb, cancel=context.cancel)
    result = retriever.search(question, k=k, kb=kb)
    if as_json:
        yield Data(result.as_dict())
        return
    verdict = "covered" if result.covered else "not covered by the course notes"
    yield Text(f"{len(result.hits)} passages from '{result.kb}' ({verdict}, coverage {result.coverage:.2f}).")
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
    from plugins.rag.kb import list_kbs

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
    from plugins.rag.kb import check_name, list_kbs

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
def _group(subparsers: Any, name: str, help: str):
    """The sub-subcommands of `name`, shared if another plugin already created it."""
    existing = subparsers.choices.get(name)
    if existing is not None and existing._subparsers is not None:  # noqa: SLF001 - argparse has no public lookup
        return existing._subparsers._group_actions[0]  # noqa: SLF001
    parser = subparsers.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest=f"{name}_command", metavar="WHAT", required=True)


def add_cli(subparsers: Any) -> None:
    from assistant.cliutil import add_command

    p = add_command(subparsers, "ask", "answer a question from the course notes with sources", _cli_ask)
    p.add_argument("question", help="the question (quote it)")
    p.add_argument("--k", type=int, default=None, help="passages to retrieve (default: rag.k = 5)")
    p.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: rag.kb)")
    p.add_argument("--retrieval-only", action="store_true", help="show the passages; no language model")

    p = add_command(subparsers, "retrieve", "retrieve passages for each line of stdin", _cli_retrieve,
                    description="Read one question per line on stdin; print one result per line "
                                '({"question", "covered", "hits": [...]} with --json).')
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

    evals = _group(subparsers, "eval", "evaluate a component on a data set")
    q = add_command(evals, "retrieval", "hit@k, MRR@5 and out-of-scope detection on a QA file", _cli_eval)
    q.add_argument("qa_file", metavar="QA.jsonl")
    q.add_argument("--k", type=int, default=5, help="passages per question (hit@5 always uses at least 5)")
    q.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: rag.kb)")

    q = add_command(evals, "answers", "correctness, citations, faithfulness, refusals and speed of answers on a QA file",
                    _cli_eval_answers,
                    description="Answer every question of QA.jsonl with the configured model and score each answer: "
                                "key facts stated (\"facts\"), share of [n] citations pointing at the gold lines, share "
                                "of sentences the grounding check supports, out-of-scope questions declined, seconds "
                                "to the first text and in total. No LLM judge. knowledge/qa/notes_answer_qa.jsonl is "
                                "over the built-in notes; knowledge/qa/course_answer_qa.jsonl over the course text, "
                                "ingested first: assistant ingest ../shared/course/module9-generative-ai.md --kb course")
    q.add_argument("qa_file", metavar="QA.jsonl")
    q.add_argument("--model", dest="eval_model", default=None, metavar="BACKEND",
                   help="LLM backend for this run (default: llm.backend)")
    q.add_argument("--kb", default=None, metavar="NAME", help="knowledge base (default: rag.kb)")
    q.add_argument("--k", type=int, default=None, help="passages per question (default: rag.k)")
    q.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only N questions (in-scope and out-of-scope in the file's proportion)")


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
    request = Request(text=args.question, command=None, intent="ask",
                      options={k: v for k, v in options.items() if v is not None})
    yield from guarded(lambda: _slash_ask(request, context))


def _cli_retrieve(args: Any, context: Context) -> Iterator[Event]:
    bad = _check_k(args)
    if bad:
        yield bad
        return

    def events() -> Iterator[Event]:
        retriever = retriever_of(context)
        for event in retriever.prepare(args.kb, cancel=context.cancel):
            yield event
        for line in sys.stdin:
            context.cancel.raise_if_cancelled()
            question = line.rstrip("\n")
            result = retriever.search(question, k=args.k, kb=args.kb)
            if args.json:
                yield Data(result.as_dict())
            else:
                yield Text(f"Q: {question}  [{'covered' if result.covered else 'not covered'}]\n" + "".join(
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
        from plugins.rag.evaluate import evaluate, load_qa

        items = load_qa(args.qa_file)
        retriever = retriever_of(context)
        yield from retriever.prepare(args.kb, cancel=context.cancel)
        for event in evaluate(retriever, items, k=args.k, kb=args.kb, cancel=context.cancel):
            if isinstance(event, Data) and not args.json:
                m = event.obj
                yield Text(
                    f"{m['questions']} questions ({m['in_scope']} in scope, {m['out_of_scope']} out of scope)\n"
                    f"hit@1 {m['hit@1']:.3f}  hit@3 {m['hit@3']:.3f}  hit@5 {m['hit@5']:.3f}  MRR@5 {m['mrr@5']:.3f}\n"
                    f"out-of-scope accuracy {m['out_of_scope_accuracy']}  in-scope rejection {m['in_scope_rejection']}\n")
            else:
                yield event

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
        from plugins.rag.answer_eval import evaluate_answers, load_answer_qa, report, subset

        items = subset(load_answer_qa(args.qa_file), args.limit)
        if args.eval_model:
            context.config.set("llm.backend", args.eval_model, save=False)
            context.drop_service("llm")
        for event in evaluate_answers(context, retriever_of(context), items, k=args.k, kb=args.kb):
            if isinstance(event, Data) and not args.json:
                yield Text(report(event.obj))
            else:
                yield event

    yield from guarded(events)


def doctor(context: Context) -> list[dict[str, Any]]:
    from plugins.rag.kb import list_kbs
    from plugins.rag.stores import StoreError, store_key

    try:
        key = store_key(context.config)
        ok = True
    except StoreError as exc:
        key, ok = str(exc), False
    return [{"name": "vector store", "ok": ok, "detail": key},
            {"name": "knowledge bases", "ok": True, "detail": ", ".join(list_kbs(context.config))}]
