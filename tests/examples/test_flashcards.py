"""The tutorial's plugin (examples/flashcards), installed from its own folder like any third-party
package, works through the CLI and the chat using only the public API."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flashcards"

pytestmark = pytest.mark.slow


def run(cmd: list, cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


def test_the_example_imports_only_the_public_api():
    import assistant

    for path in (EXAMPLE / "flashcards_plugin").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "assistant":
                assert node.module == "assistant", f"{path.name}: from {node.module} import ..."
                assert {a.name for a in node.names} <= set(assistant.__all__), path.name
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("assistant.") for a in node.names), path.name


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, env, home): a fresh venv that sees the assistant and its dependencies, with the example
    pip-installed (not editable) from a copy of its folder."""
    tmp = tmp_path_factory.mktemp("flashcards")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ASSISTANT_HOME", "VIRTUAL_ENV")}
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, env)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).stdout.strip())
    # the assistant from this checkout, and the project environment's packages
    (site / "project.pth").write_text(f"{ROOT}\n{sysconfig.get_paths()['purelib']}\n")
    source = tmp / "flashcards"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", source], tmp, env)
    home = tmp / "home"
    home.mkdir()
    # one config key of the plugin; the intent router uses its quick fallback (no LoRA training here), a
    # question that is not a quiz is answered without a language model, and the quiz reads a knowledge base
    # of three of the notes (indexing all of them would double the test's time)
    (home / "config.toml").write_text('[flashcards]\ncards = 2\n\n[router]\ntraining = "off"\n\n'
                                      '[llm]\nbackend = "extractive"\n\n[rag]\nkb = "cards"\n', encoding="utf-8")
    notes = [ROOT / "knowledge" / f"{name}.md" for name in ("vae", "gan", "diffusion")]
    run([python, "-m", "assistant.cli", "--home", home, "ingest", *notes, "--kb", "cards"], home, env)
    return python, env, home


def assistant_cli(installed, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    python, env, home = installed
    return run([python, "-m", "assistant.cli", "--home", home, *args], home, env, timeout)


def test_installed_plugin_is_listed_with_its_command_intent_and_checks(installed):
    python, env, home = installed
    where = run([python, "-c", "import flashcards_plugin; print(flashcards_plugin.__file__)"], home, env).stdout
    assert "site-packages" in where and str(EXAMPLE) not in where  # the installed copy, not the example folder
    rows = {p["name"]: p for p in json.loads(assistant_cli(installed, "plugins", "--json").stdout)}
    assert rows["flashcards"]["status"] == "ok"
    assert [c["name"] for c in rows["flashcards"]["commands"]] == ["quiz"] and rows["flashcards"]["intents"] == ["quiz"]
    report = json.loads(assistant_cli(installed, "doctor", "--json").stdout)
    mine = [c for c in report["checks"] if c["plugin"] == "flashcards"]
    assert len(mine) == 2 and all(c["ok"] for c in mine), mine
    assert "flashcards.cards = 2" in mine[1]["detail"]  # the config key, read from config.toml


def test_cli_subcommand_makes_cards_from_the_notes(installed):
    out = assistant_cli(installed, "flashcards", "the VAE loss", "--json")
    cards = json.loads(out.stdout.splitlines()[-1])
    assert len(cards) == 2  # flashcards.cards from config.toml
    for card in cards:
        assert "_____" in card["prompt"] and card["answer"] and card["answer"] not in card["prompt"].split()
        assert card["source"].startswith("knowledge/vae.md")
    bad = subprocess.run([str(installed[0]), "-m", "assistant.cli", "--home", str(installed[2]), "flashcards", "vae",
                          "--cards", "50"], cwd=installed[2], env=installed[1], capture_output=True, text=True,
                         timeout=600)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1] == "error: --cards must be between 1 and 10, not 50"


def test_chat_runs_the_slash_command_and_routes_free_text_to_the_intent(installed):
    python, env, home = installed
    out = run([python, ROOT / "tests" / "examples" / "pilot_flashcards.py", home], home, env)
    seen = json.loads(out.stdout.splitlines()[-1])
    slash, free, empty = seen["replies"]
    assert "**Card 1.**" in slash and "**Card 2.**" in slash and "Answers: 1." in slash
    assert "**Card 1.**" in free, seen  # "quiz me on ..." reached the plugin through its intent
    assert any("a quiz needs a topic" in e and "try: /quiz the VAE loss" in e for e in seen["errors"]), seen
    assert not empty.strip().startswith("**Card")
