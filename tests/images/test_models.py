"""VAE and GAN end to end on real MNIST digits: train, resume, sample, eval, bad input, cancel."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_trained_model_samples_and_evaluates(model, trained_context, run_cli, tmp_path):
    from course_assistant_plugins.images.checkpoints import checkpoint_path, model_dir, read_checkpoint

    ckpt = read_checkpoint(checkpoint_path(trained_context, model))
    assert ckpt.config["model"] == model and ckpt.state["epoch"] == 1
    history = json.loads((model_dir(trained_context, model) / "history.json").read_text())
    assert all(len(v) == 1 and np.isfinite(v[0]) for v in history["losses"].values())
    assert (model_dir(trained_context, model) / "losses.png").stat().st_size > 0

    out, npy = tmp_path / "grid.png", tmp_path / "s.npy"
    code, stdout, stderr = run_cli("image", "sample", model, "--n", "12", "--out", str(out), "--npy", str(npy),
                                   "--seed", "3", "--json")
    assert code == 0, stderr
    reply = json.loads(stdout.strip().splitlines()[-1])
    assert reply["path"] == str(out) and out.stat().st_size > 0
    samples = np.load(npy)
    assert samples.shape == (12, 28, 28, 1) and samples.dtype == np.float32
    assert 0.0 <= samples.min() and samples.max() <= 1.0 and samples.std() > 0.01

    code, stdout, stderr = run_cli("image", "eval", model, "--n", "300", "--seed", "0", "--json")
    assert code == 0, stderr
    metrics = json.loads(stdout.strip().splitlines()[-1])
    assert np.isfinite(metrics["fid"]) and metrics["fid"] > 0 and metrics["n_samples"] == 300
    assert 0.0 < metrics["confidence"] <= 1.0 and len(metrics["class_histogram"]) == 10


def test_resume_continues_the_history(trained_context):
    from assistant.events import Collected, Notice
    from course_assistant_plugins.images import run_action
    from course_assistant_plugins.images.checkpoints import checkpoint_path, model_dir, read_checkpoint

    before = read_checkpoint(checkpoint_path(trained_context, "vae"))
    events = Collected(run_action("train", "vae", {"epochs": 2, "resume": True, "seed": 1, "quiet": True},
                                  trained_context))
    assert not events.errors, events.errors
    assert any("resuming the vae from epoch 1" in n.message for n in events.of(Notice))
    after = read_checkpoint(checkpoint_path(trained_context, "vae"))
    assert after.state["epoch"] == 2
    assert not all(np.array_equal(a, b) for a, b in zip(before.weights["decoder"], after.weights["decoder"]))
    history = json.loads((model_dir(trained_context, "vae") / "history.json").read_text())
    assert len(history["losses"]["loss"]) == 2 and len(history["runs"]) == 2
    assert events.data[-1]["epochs_done"] == 1
    # Asking for another architecture on resume is refused before anything is written.
    stamp = checkpoint_path(trained_context, "vae").stat().st_mtime_ns
    refused = Collected(run_action("train", "vae", {"epochs": 3, "resume": True, "latent_dim": 3}, trained_context))
    assert "latent-dim" in refused.errors[0].message
    assert checkpoint_path(trained_context, "vae").stat().st_mtime_ns == stamp


def test_corrupt_checkpoint_is_reported_and_left_alone(trained_context, run_cli, tmp_path):
    from course_assistant_plugins.images.checkpoints import checkpoint_path

    path = checkpoint_path(trained_context, "gan")
    path.write_bytes(path.read_bytes()[:1000])
    damaged = path.read_bytes()
    out = tmp_path / "g.png"
    code, _, stderr = run_cli("image", "sample", "gan", "--out", str(out))
    assert code == 1 and "corrupt checkpoint" in stderr and "retrain" in stderr
    code, _, stderr = run_cli("image", "train", "gan", "--resume", "--epochs", "1")
    assert code == 1 and "corrupt checkpoint" in stderr
    assert path.read_bytes() == damaged and not out.exists()
    # A checkpoint of the other model does not load silently either.
    path.write_bytes(checkpoint_path(trained_context, "vae").read_bytes())
    code, _, stderr = run_cli("image", "sample", "gan", "--out", str(out))
    assert code == 1 and "incompatible" in stderr


def test_bad_requests_give_one_clear_line(image_home, run_cli, tmp_path, no_shipped_models):
    code, _, stderr = run_cli("image", "sample", "bigfoot")
    assert code == 1 and "known models: vae, gan, diffusion" in stderr
    code, _, stderr = run_cli("image", "sample", "vae")
    assert code == 1 and "no trained vae" in stderr and "assistant image train vae" in stderr
    for n in ("0", "-5", "1000000"):
        code, _, stderr = run_cli("image", "sample", "vae", "--n", n)
        assert code == 2 and "--n: must be between 1 and" in stderr  # a usage error, with the range
    code, _, stderr = run_cli("image", "train", "vae", "--epochs", "0")
    assert code == 2 and "--epochs: must be between 1 and" in stderr
    code, _, stderr = run_cli("image", "train", "vae", "--data", "folder", "--data-path", str(tmp_path))
    assert code == 1 and "no readable images" in stderr
    assert not list((image_home / "models").glob("images/vae/checkpoint.npz"))
    code, _, _ = run_cli("image", "sample", "vae", "--n", "nine")
    assert code == 2  # argparse usage error


def test_large_n_is_generated_in_batches(trained_context, tmp_path):
    from course_assistant_plugins.images.models import model_module

    module = model_module("gan")
    images = module.generate(trained_context, 2500, {"seed": 0})
    assert images.shape == (2500, 28, 28, 1) and 0.0 <= images.min() and images.max() <= 1.0
    # Different batches draw different noise.
    assert not np.allclose(images[:10], images[1000:1010])


def test_chat_commands_and_quick_training(image_context, no_shipped_models):
    """Without a shipped model (a build without package data), the chat trains a quick one first."""
    from assistant.events import Collected, Image, Notice
    from assistant.router import dispatch

    image_context.config.set("images.quick_budget", 4.0, save=False)
    events = Collected(dispatch("/image vae --n 9 --seed 1", image_context))
    assert not events.errors, events.errors
    assert any("training a quick one" in n.message for n in events.of(Notice))
    grids = [e for e in events.of(Image) if "samples from the prior" in e.caption and "outputs" in e.path]
    assert grids and grids[-1].path.endswith(".png")

    bad = Collected(dispatch("/train vae --epochs many", image_context))
    assert "--epochs expects int" in bad.errors[0].message
    unknown = Collected(dispatch("/train unicorn", image_context))
    assert "known models" in unknown.errors[0].message


def test_cancel_stops_between_batches_and_keeps_a_checkpoint(image_context):
    from assistant.events import Notice, Progress
    from course_assistant_plugins.images import run_action
    from course_assistant_plugins.images.checkpoints import checkpoint_path, read_checkpoint

    events = []
    for event in run_action("train", "gan", {"epochs": 50, "seed": 0, "quiet": True}, image_context):
        events.append(event)
        if isinstance(event, Progress):
            image_context.cancel.cancel()
    assert any(isinstance(e, Notice) and "cancelled" in e.message for e in events)
    state = read_checkpoint(checkpoint_path(image_context, "gan")).state
    assert 0 < state["epoch"] < 1  # a partial first epoch, saved


def test_intents_and_slots_reach_the_models(image_context):
    from assistant.events import Collected
    from assistant.plugin import Request
    from course_assistant_plugins.images import ImagesPlugin, model_from_text

    assert model_from_text("draw me some digits with the variational autoencoder") == "vae"
    assert model_from_text("train the adversarial network") == "gan"
    assert model_from_text("denoising diffusion please") == "diffusion"
    plugin = ImagesPlugin()
    request = Request(text="train the autoencoder for one epoch", command="train", intent="image_train",
                      options={"epochs": 1})
    events = Collected(plugin.run(request, image_context))
    assert not events.errors, events.errors
    summary = [d for d in events.data if isinstance(d, dict) and d.get("action") == "train"][-1]
    assert summary["model"] == "vae" and summary["epochs_done"] == 1
    request = Request(text="show me 5 samples", command="image", intent="image_sample",
                      options={"model": "vae", "n": 5, "label": 3})
    events = Collected(plugin.run(request, image_context))
    assert any("--label is ignored" in getattr(e, "message", "") for e in events)
    assert [d for d in events.data if isinstance(d, dict) and d.get("n") == 5]


def test_seed_makes_training_repeatable(image_context):
    from assistant.events import Collected
    from course_assistant_plugins.images import run_action

    def final_loss(seed: int) -> float:
        events = Collected(run_action("train", "vae", {"epochs": 1, "seed": seed, "data": "digits", "quiet": True},
                                      image_context))
        assert not events.errors, events.errors
        return [d for d in events.data if isinstance(d, dict) and d.get("action") == "train"][-1]["final_losses"]["loss"]

    first, again, other = final_loss(5), final_loss(5), final_loss(6)
    assert abs(first - again) < 1e-3 * abs(first)
    assert abs(first - other) > 1e-3 * abs(first)


def test_a_requested_digit_picks_the_class_conditional_model():
    from course_assistant_plugins.images import default_model

    assert default_model({"n": 16, "label": 7}) == "diffusion"  # "draw 16 sevens"
    assert default_model({"n": 16}) == "vae"
