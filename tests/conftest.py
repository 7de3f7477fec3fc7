"""Shared fixtures: every test gets its own temporary state directory."""

from __future__ import annotations

import os

# Before any heavy import: offline, quiet, and no thread storms on 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session):
    """The built-in plugins under test must be this checkout's: plugins/ is importable only under its
    installed name, course_assistant_plugins, and an editable install of another checkout maps that
    name to its own folder (PYTHONPATH does not change that)."""
    spec = importlib.util.find_spec("course_assistant_plugins")
    where = Path(spec.submodule_search_locations[0]).resolve() if spec and spec.submodule_search_locations else None
    if where != ROOT / "plugins":
        pytest.exit(f"course_assistant_plugins comes from {where or 'nowhere'}, not {ROOT / 'plugins'}: "
                    f"install this checkout (pip install --no-deps -e {ROOT})", returncode=4)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh state directory, also exported as $ASSISTANT_HOME."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("ASSISTANT_HOME", str(path))
    return path


@pytest.fixture
def context(home):
    """A Context over the installed plugins and a temporary home."""
    from assistant.config import Config, resolve_home
    from assistant.plugin import Context
    from assistant.registry import Registry

    return Context(Config(resolve_home(home)), Registry.load())


@pytest.fixture
def run_cli(home, capsys):
    """Run `assistant ARGS...` in-process with --home set; returns (code, stdout, stderr)."""
    from assistant.cli import main

    def _run(*args: str, stdin: str | None = None, monkeypatch=None):
        import io
        import sys

        old_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            try:
                code = main(["--home", str(home), *args])
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdin = old_stdin
        out, err = capsys.readouterr()
        return code, out, err

    return _run
