"""Course knowledge and answers with sources (retrieval-augmented generation).

Light on purpose: the embedding model, Chroma and FAISS load inside the
functions that need them, so `assistant --help` stays fast.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from assistant import Command, Context, Event, Plugin, Request

from .settings import SETTINGS


def _make_retriever(context: Context):
    from course_assistant_plugins.rag.retriever import Retriever

    return Retriever(context.config)


class RagPlugin(Plugin):
    name = "rag"
    description = "answers from the course notes with their sources; your own documents as knowledge bases"
    commands = (
        Command("ask", "answer from the course notes, citing sources", "QUESTION [--k K] [--kb NAME] [--retrieval-only]"),
        Command("retrieve", "show the passages a question retrieves", "QUESTION [--k K] [--kb NAME]"),
        Command("ingest", "add files or folders (Markdown, text, HTML, PDF) to a knowledge base", "PATH... [--kb NAME]"),
        Command("kb", "show knowledge bases, or switch to NAME (a new one starts empty)", "[NAME]"),
    )
    intents = {"ask": "ask", "ingest": "ingest"}
    settings = SETTINGS

    def status(self, context: Context) -> list[tuple[str, str]]:
        return [("KB", str(context.config.get("rag.kb")))]

    def intent_examples(self) -> dict[str, list[str]]:
        from assistant import load_intent_examples

        return load_intent_examples(__name__)

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        from course_assistant_plugins.rag.commands import run

        return run(request, context)

    def add_cli(self, subparsers: Any) -> None:
        from course_assistant_plugins.rag.commands import add_cli

        add_cli(subparsers)

    def services(self) -> dict[str, Callable[[Context], Any]]:
        return {"retriever": _make_retriever}

    def doctor(self, context: Context) -> list[dict[str, Any]]:
        from course_assistant_plugins.rag.commands import doctor

        return doctor(context)
