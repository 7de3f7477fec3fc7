"""Fixtures for the prompting tests: a context whose LLM is a scripted fake
(logic only: votes, extraction, repair) and one on the real SmolLM2 GGUF."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def scripted(context):
    """scripted(["reply 1", "reply 2", ...]) -> the context, answering with those replies in turn."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    def _set(replies: list[str]):
        context.replace_service("llm", FakeListChatModel(responses=list(replies)))
        return context

    return _set


@pytest.fixture(scope="session")
def llm_cache():
    """The converted-model cache the LLM tests use too (keyed by the GGUF's sha256,
    so it can never serve the wrong weights); a clean machine converts once."""
    path = Path(tempfile.gettempdir()) / "course-assistant-test-models"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def smol(context, llm_cache):
    """The context on the real SmolLM2-135M backend, with short replies."""
    context.config.set("llm.backend", "smollm2", save=False)
    context.config.set("llm.cache_dir", str(llm_cache), save=False)
    context.drop_service("llm")
    return context


@pytest.fixture
def smol_cli(home, llm_cache, run_cli):
    """run_cli on the SmolLM2 backend: smol_cli("prompt", "cot", "...") -> (code, out, err)."""
    (home / "config.toml").write_text(f'[llm]\nbackend = "smollm2"\ncache_dir = "{llm_cache}"\n', encoding="utf-8")
    return run_cli
