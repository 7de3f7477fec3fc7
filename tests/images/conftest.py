"""Fixtures for the image tests: a digit classifier and tiny trained models, built once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def _context(home: Path):
    from assistant.config import Config, resolve_home
    from assistant.plugin import Context
    from assistant.registry import Registry

    return Context(Config(resolve_home(home)), Registry.load())


@pytest.fixture(scope="session")
def classifier_home(tmp_path_factory) -> Path:
    """A state dir holding the evaluator's classifier, trained once (2 epochs: enough to separate digits)."""
    from course_assistant_plugins.images.evaluate import train_classifier

    home = tmp_path_factory.mktemp("classifier-home")
    train_classifier(_context(home), epochs=2)
    return home


@pytest.fixture
def image_home(home, classifier_home) -> Path:
    """The per-test `home` with the cached classifier copied in."""
    shutil.copytree(classifier_home / "models", home / "models", dirs_exist_ok=True)
    return home


@pytest.fixture
def image_context(image_home):
    return _context(image_home)


@pytest.fixture(scope="session")
def trained_home(classifier_home, tmp_path_factory) -> Path:
    """One VAE and one GAN trained for one short epoch each, shared read-only by tests."""
    from assistant.events import Error
    from course_assistant_plugins.images import run_action

    home = tmp_path_factory.mktemp("trained-home")
    shutil.copytree(classifier_home / "models", home / "models", dirs_exist_ok=True)
    context = _context(home)
    for model in ("vae", "gan"):
        events = list(run_action("train", model, {"epochs": 1, "seed": 0, "quiet": True}, context))
        errors = [e for e in events if isinstance(e, Error)]
        assert not errors, errors
    return home


@pytest.fixture
def trained_context(home, trained_home):
    """A fresh copy of the trained state, so a test may damage it."""
    shutil.copytree(trained_home / "models", home / "models", dirs_exist_ok=True)
    return _context(home)


@pytest.fixture
def no_shipped_models(tmp_path, monkeypatch):
    """Hide the shipped default checkpoints, as in a build without them."""
    from course_assistant_plugins.images import checkpoints

    empty = tmp_path / "no-pretrained"
    empty.mkdir()
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", empty)
    return empty
