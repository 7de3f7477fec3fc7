"""A third-party LLM backend registers through the same entry-point group as the built-in six."""

from __future__ import annotations

import json

import pytest

from ..distributions import fake_distribution

BACKEND_SOURCE = '''
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from assistant import LLMBackend


class ParrotBackend(LLMBackend):
    name = "parrot"
    description = "repeats a fixed reply"

    def build(self, context):
        return FakeListChatModel(responses=["polly says hello"])

    def status(self, context):
        return True, "always ready"
'''


@pytest.fixture
def parrot(tmp_path, monkeypatch):
    fake_distribution(tmp_path, monkeypatch, "parrot-backend", {"parrot_backend": BACKEND_SOURCE}, """
        [assistant.llm_backends]
        parrot = parrot_backend:ParrotBackend
        broken = parrot_backend:Missing
    """)
    from assistant.llm import backends

    backends.backends(refresh=True)
    yield
    monkeypatch.undo()
    backends.backends(refresh=True)


def test_third_party_backend_is_used_listed_and_switchable(parrot, context, run_cli):
    from assistant import complete
    from assistant.events import Collected
    from assistant.router import dispatch

    context.config.override("llm.backend", "parrot")
    assert complete(context, [{"role": "user", "content": "hi"}]) == "polly says hello"
    assert "parrot" in Collected(dispatch("/model", context)).text
    assert not Collected(dispatch("/model parrot", context)).errors
    code, out, err = run_cli("doctor", "--json")
    rows = {row["name"]: row for row in json.loads(out)["llm_backends"]}
    assert rows["parrot"]["ok"] and rows["parrot"]["active"] and rows["parrot"]["detail"] == "in use; always ready"
    assert not rows["broken"]["ok"] and "failed to load" in rows["broken"]["detail"]
    assert {"local", "smollm2", "llamacpp", "ollama", "openai", "extractive"} <= set(rows)
