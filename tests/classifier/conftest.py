"""Shared, expensive things for the classifier tests: one real LoRA training run."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("USE_TF", "0")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def trained_intents(tmp_path_factory):
    """The intent router trained once on the shipped data: real MiniLM + PEFT, with --merge.

    Returns (home, events, result): the state dir holding models/classifiers/intents,
    the pipeline's events and the in-memory TrainResult.
    """
    import torch

    from course_assistant_plugins.classifier.service import builtin_data, train_and_save

    torch.set_num_threads(2)
    home = tmp_path_factory.mktemp("intents-home")
    data, info = builtin_data("intents")
    out: list = []
    events = list(train_and_save(home, "intents", data, merge=True, data_info=info, result_out=out))
    return home, events, out[0]


@pytest.fixture
def intents_home(home, trained_intents):
    """A fresh test home with a copy of the trained intent model (adapter only)."""
    source = trained_intents[0] / "models" / "classifiers" / "intents"
    target = home / "models" / "classifiers" / "intents"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("merged"))
    return home
