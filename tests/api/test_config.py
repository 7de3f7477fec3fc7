"""Config: declared settings, unknown-key warnings, one-run overrides, comment-preserving saves."""

from __future__ import annotations

import pytest

from assistant import Context, Plugin, Setting
from assistant.config import Config, ConfigError, resolve_home
from assistant.registry import Registry

USER_FILE = """\
# my settings, written by hand
[llm]
backend = "smollm2"   # the tiny one on this laptop
tempreature = 0.9

[rag]
k = "five"

[flashcard]
cards = 3
"""


class CardsPlugin(Plugin):
    name = "cards"
    settings = {"flashcards.cards": Setting(5, "cards per quiz")}

    def run(self, request, context):
        yield from ()


def make(home, text: str = USER_FILE) -> Context:
    (home / "config.toml").write_text(text, encoding="utf-8")
    registry = Registry.load(extra=[CardsPlugin])
    return Context(Config(resolve_home(home)), registry)


def test_declared_defaults_and_types(home):
    config = make(home).config
    assert config.get("llm.backend") == "smollm2"  # from the file
    assert config.get("flashcards.cards") == 5  # from the plugin's declaration
    assert config.get("rag.k") == 5  # "five" is not an integer: the declared default is used
    from plugins.rag.retriever import MIN_COVERAGE

    assert config.get("rag.min_coverage") == MIN_COVERAGE  # the plugin's one default
    assert config.get("router.training") == "background"  # declared by the classifier plugin


def test_unknown_keys_warn_naming_the_closest_known_key(home):
    problems = make(home).config.problems()
    assert any("unknown key 'llm.tempreature'; did you mean 'llm.temperature'?" in p for p in problems)
    assert any("unknown key 'flashcard.cards'; did you mean 'flashcards.cards'?" in p for p in problems)
    assert any("'rag.k' must be an integer, not 'five'" in p for p in problems)
    assert len(problems) == 3


def test_cli_warns_once_per_problem(home, run_cli):
    (home / "config.toml").write_text('[llm]\nbakend = "extractive"\n', encoding="utf-8")
    code, _, err = run_cli("plugins")
    assert code == 0
    assert "warning:" in err and "unknown key 'llm.bakend'; did you mean 'llm.backend'?" in err


def test_one_run_override_never_persists(home, run_cli):
    context = make(home)
    config = context.config
    config.override("llm.backend", "extractive")
    assert config.get("llm.backend") == "extractive"
    config.set("rag.kb", "mine")  # a later save (e.g. /kb mine) must not write the override
    saved = (home / "config.toml").read_text(encoding="utf-8")
    assert 'backend = "smollm2"' in saved and "extractive" not in saved
    assert Config(home).get("llm.backend") == "smollm2"
    # the same through the CLI: --model for one run, then a command that saves
    run_cli("--model", "extractive", "kb", "list")
    assert "extractive" not in (home / "config.toml").read_text(encoding="utf-8")


def test_saving_keeps_comments_and_layout(home):
    config = make(home).config
    config.set("llm.backend", "extractive")
    config.set("rag.kb", "exam")
    config.set("flashcards.cards", 7)
    saved = (home / "config.toml").read_text(encoding="utf-8")
    assert saved.startswith("# my settings, written by hand\n[llm]\n")
    assert 'backend = "extractive"   # the tiny one on this laptop' in saved
    assert "tempreature = 0.9" in saved  # unknown keys are the user's: kept, only warned about
    reread = Config(home)
    assert (reread.get("rag.kb"), reread.user["flashcards.cards"]) == ("exam", 7)


def test_bad_values_are_refused_before_saving(home):
    config = make(home).config
    with pytest.raises(ConfigError, match="'flashcards.cards' must be an integer"):
        config.set("flashcards.cards", "many")
    with pytest.raises(ConfigError, match="must be one of chroma, faiss"):
        config.set("vector_store.kind", "pinecone")
    assert "many" not in (home / "config.toml").read_text(encoding="utf-8")


def test_every_readme_key_is_declared_once(context):
    """The README's config.toml block lists exactly the declared keys with their defaults."""
    import re
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"`config.toml` \(every key optional; these are the defaults\):\n\n```toml\n(.*?)```", readme, re.S)
    assert block, "README lost its config.toml block"
    from assistant.config import _flatten

    documented = _flatten(tomllib.loads(block.group(1)))
    declared = {k: s.default for k, s in context.config.settings.items()}
    assert documented == declared
