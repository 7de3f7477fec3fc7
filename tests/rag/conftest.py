"""Shared, expensive things for the rag tests: one MiniLM, one indexed copy of the course notes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def embeddings():
    """The real all-MiniLM-L6-v2, loaded once for every rag test."""
    from assistant.embeddings import get_embeddings

    return get_embeddings()


@pytest.fixture(scope="session")
def notes_index(tmp_path_factory, embeddings):
    """The default knowledge base over knowledge/ (real MiniLM + embedded Chroma), built once
    through the first-use path: the retriever indexes the built-in notes by itself."""
    from assistant.config import Config, resolve_home
    from assistant.events import Notice, Progress
    from course_assistant_plugins.rag.retriever import Retriever

    home = resolve_home(tmp_path_factory.mktemp("notes-home"))
    retriever = Retriever(Config(home), embeddings)
    assert not retriever.is_indexed()
    events = list(retriever.prepare())
    assert retriever.is_indexed()
    assert any(isinstance(e, Notice) and "first use" in e.message for e in events)
    assert any(isinstance(e, Progress) for e in events)
    assert retriever.knowledge_base().chunk_count() > 50
    retriever.forget()
    return home / "index" / "default"


@pytest.fixture
def notes_home(home, notes_index):
    """A per-test state directory that already holds the indexed course notes."""
    shutil.copytree(notes_index, Path(home) / "index" / "default")
    return home


@pytest.fixture
def make_context(embeddings):
    """Context over the installed plugins for a given home, with the shared MiniLM."""
    from assistant.config import Config, resolve_home
    from assistant.plugin import Context
    from assistant.registry import Registry

    def _make(home, **settings):
        config = Config(resolve_home(home))
        for key, value in settings.items():
            config.set(key, value, save=False)
        return Context(config, Registry.load())

    return _make


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
