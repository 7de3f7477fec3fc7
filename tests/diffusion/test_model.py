"""The U-Net, a tiny real training run with checkpoint + resume, sampling and bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from assistant.config import Config, resolve_home
from assistant.events import Data, Error, Image, Notice, Progress
from assistant.plugin import Context, Request
from assistant.registry import Registry

# A deliberately tiny model and chain so training and sampling take seconds.
TINY = {"base_channels": 8, "timesteps": 40, "batch_size": 32, "seed": 0}


def _context(home):
    return Context(Config(resolve_home(home)), Registry.load())


def _run(action, options, context):
    from course_assistant_plugins.images import run_action

    return list(run_action(action, "diffusion", dict(options), context))


def test_unet_shapes_and_conditioning():
    from course_assistant_plugins.images.diffusion.unet import UNetConfig, build_unet

    config = UNetConfig(base_channels=8, num_classes=10)
    net = build_unet(config)
    x = np.random.default_rng(0).standard_normal((3, 28, 28, 1)).astype(np.float32)
    t = np.array([0, 5, 39], np.int32)
    out = np.asarray(net.predict_on_batch([x, t, np.array([1, 2, 10], np.int32)]))
    assert out.shape == (3, 28, 28, 1)
    assert np.allclose(out, 0.0)  # zero-initialised output layer: training starts from "no noise"
    assert UNetConfig.from_dict(config.to_dict()) == config
    # With a non-zero head, the time step and the class change the prediction.
    head = net.get_layer("eps")
    head.set_weights([np.full_like(w, 0.05) for w in head.get_weights()])
    base = np.asarray(net.predict_on_batch([x[:1], t[:1], np.array([1], np.int32)]))
    other_t = np.asarray(net.predict_on_batch([x[:1], np.array([30], np.int32), np.array([1], np.int32)]))
    other_label = np.asarray(net.predict_on_batch([x[:1], t[:1], np.array([7], np.int32)]))
    assert not np.allclose(base, other_t) and not np.allclose(base, other_label)
    names = [layer.__class__.__name__ for layer in net.layers]
    assert "GroupNormalization" in names and "MultiHeadAttention" in names and "Concatenate" in names
    unconditional = build_unet(UNetConfig(base_channels=8, num_classes=0, attention=False))
    assert "MultiHeadAttention" not in [layer.__class__.__name__ for layer in unconditional.layers]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny diffusion model trained on real MNIST for a few seconds, then resumed."""
    home = tmp_path_factory.mktemp("diffusion-home")
    context = _context(home)
    first = _run("train", dict(TINY, time_budget=3), context)
    second = _run("train", dict(TINY, time_budget=2, resume=True), context)
    return home, context, first, second


@pytest.mark.slow
def test_training_checkpoints_and_resumes(trained):
    from course_assistant_plugins.images.checkpoints import checkpoint_path, read_checkpoint

    home, context, first, second = trained
    assert not [e for e in first + second if isinstance(e, Error)], [e for e in first + second if isinstance(e, Error)]
    assert any(isinstance(e, Progress) for e in first)
    done1 = [e.obj for e in first if isinstance(e, Data)][-1]
    done2 = [e.obj for e in second if isinstance(e, Data)][-1]
    assert done1["data"].startswith("mnist") and done1["conditional"] is True and done1["timesteps"] == 40
    assert done1["steps_done"] > 0 and np.isfinite(done1["final_loss"])
    assert any("resuming" in e.message for e in second if isinstance(e, Notice))
    assert done2["steps_done"] > done1["steps_done"]  # the step count carried over
    ckpt = read_checkpoint(checkpoint_path(context, "diffusion"))
    assert ckpt.config["model"] == "diffusion" and ckpt.config["schedule"]["steps"] == 40
    assert set(ckpt.weights) == {"net", "ema"} and ckpt.optimizers["adam"]
    assert ckpt.state["steps_done"] == done2["steps_done"]


@pytest.mark.slow
@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("ddim", 8)])
def test_sampling_yields_frames_and_images_in_unit_range(trained, tmp_path, sampler, steps):
    from PIL import Image as PILImage

    _, context, _, _ = trained
    options = {"n": 6, "out": str(tmp_path / "grid.png"), "npy": str(tmp_path / "s.npy"), "sampler": sampler,
               "seed": 1, "label": 3}
    if steps:
        options["steps"] = steps
    events = _run("sample", options, context)
    assert not [e for e in events if isinstance(e, Error)]
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total == (steps or 40)
    frames = [e for e in events if isinstance(e, Image) and "denoising" in e.caption]
    assert len(frames) == 8 and len({e.path for e in frames}) == 1
    assert PILImage.open(frames[0].path).size[0] > PILImage.open(frames[0].path).size[1]  # a wide strip
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (6, 28, 28, 1) and np.isfinite(samples).all()
    assert samples.min() >= 0.0 and samples.max() <= 1.0 and samples.std() > 0.01
    assert (tmp_path / "grid.png").exists()


@pytest.mark.slow
def test_ddim_eta_zero_same_seed_same_images_and_generate(trained):
    from course_assistant_plugins.images.diffusion import generate

    _, context, _, _ = trained
    opts = {"sampler": "ddim", "steps": 5, "eta": 0.0, "seed": 4}
    a, b = generate(context, 3, opts), generate(context, 3, opts)
    assert a.shape == (3, 28, 28, 1) and np.array_equal(a, b)
    c = generate(context, 3, dict(opts, seed=5))
    assert not np.array_equal(a, c)


@pytest.mark.slow
@pytest.mark.parametrize("options,message", [
    ({"label": 12}, "outside the classes 0..9"),
    ({"label": -1}, "outside the classes"),
    ({"sampler": "ddim", "steps": 41}, "more than the 40 diffusion steps"),
    ({"sampler": "ddpm", "steps": 10}, "always runs all 40 steps"),
    ({"sampler": "ddim", "eta": 2.0}, "eta"),
    ({"guidance": -1.0, "label": 2}, "guidance"),
])
def test_bad_sampling_requests_give_one_clear_error(trained, tmp_path, options, message):
    _, context, _, _ = trained
    out = tmp_path / "never.png"
    events = _run("sample", dict(options, n=2, out=str(out)), context)
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 1 and message in errors[0].message, errors
    assert not out.exists()


@pytest.mark.slow
def test_labelled_subfolders_train_the_class_conditional_model(home, tmp_path):
    from tests.images.test_data import export_mnist_pngs
    from course_assistant_plugins.images.checkpoints import checkpoint_path, read_checkpoint

    folder = tmp_path / "my digits"
    export_mnist_pngs(folder, per_class=12)  # sub-folders 0..9
    context = _context(home)
    events = _run("train", dict(TINY, time_budget=3, data=str(folder)), context)  # --data DIR
    assert not [e for e in events if isinstance(e, Error)]
    summary = [e.obj for e in events if isinstance(e, Data)][-1]
    assert summary["conditional"] is True and summary["data"] == "folder" and summary["steps_done"] > 0
    line = next(e.message for e in events if isinstance(e, Notice) and e.message.startswith("data: folder"))
    assert f"from {folder}" in line and "100 training images" in line and "labelled (10 classes)" in line
    preview = [e for e in events if isinstance(e, Image) and "prepared training images" in e.caption]
    assert preview and "outputs" in preview[0].path
    state = read_checkpoint(checkpoint_path(context, "diffusion")).state
    assert state["data"] == "folder" and state["data_path"] == str(folder)
    sevens = _run("sample", {"n": 4, "label": 7, "steps": 5, "out": str(tmp_path / "s.png")}, context)
    assert not [e for e in sevens if isinstance(e, Error)] and (tmp_path / "s.png").exists()


def test_guidance_or_label_on_unconditional_model_is_refused():
    from course_assistant_plugins.images.diffusion.model import DiffusionModel, SamplingError
    from course_assistant_plugins.images.diffusion.scheduler import ScheduleConfig
    from course_assistant_plugins.images.diffusion.unet import UNetConfig

    model = DiffusionModel(UNetConfig(base_channels=8, num_classes=0, attention=False), ScheduleConfig.rescaled(20))
    with pytest.raises(SamplingError, match="guidance needs a class-conditional model"):
        model.sampler(2, guidance=3.0)
    with pytest.raises(SamplingError, match="trained without labels"):
        model.sampler(2, label=7)
    steps = list(model.sampler(2, sampler="ddim", steps=4, seed=0))
    assert len(steps) == 4 and steps[-1].x.shape == (2, 28, 28, 1)


@pytest.mark.slow
def test_cli_and_chat_draw_sevens(trained, home, run_cli):
    from course_assistant_plugins.images.checkpoints import checkpoint_path

    src_home, src_context, _, _ = trained
    context = _context(home)
    target = checkpoint_path(context, "diffusion")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(checkpoint_path(src_context, "diffusion"), target)
    out = home / "sevens.png"
    code, stdout, stderr = run_cli("image", "sample", "diffusion", "--n", "16", "--label", "7", "--guidance", "3",
                                   "--steps", "5", "--out", str(out))
    assert code == 0, stderr
    assert out.exists()
    code, _, stderr = run_cli("image", "sample", "diffusion", "--n", "2", "--label", "12", "--out", str(home / "x.png"))
    assert code == 2 and "must be between 0 and 9, got 12" in stderr  # a usage error, with the range
    # The chat: the intent router fills the slots model=diffusion, n=16, label=7.
    from course_assistant_plugins.images import ImagesPlugin

    plugin = ImagesPlugin()
    request = Request(text="draw 16 sevens", command="image", intent="image_sample",
                      options={"model": "diffusion", "n": 16, "label": 7, "steps": 4})
    events = list(plugin.run(request, context))
    assert not [e for e in events if isinstance(e, Error)]
    final = [e.obj for e in events if isinstance(e, Data)][-1]
    assert final["n"] == 16
    assert any(isinstance(e, Image) and "digit 7" in e.caption for e in events)


@pytest.mark.slow
def test_corrupt_checkpoint_is_a_clear_error(trained, home, tmp_path, monkeypatch):
    from course_assistant_plugins.images import checkpoints
    from course_assistant_plugins.images.checkpoints import checkpoint_path

    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", tmp_path / "none")  # as a build without shipped models
    context = _context(home)
    events = _run("sample", {"n": 2, "out": str(home / "a.png")}, context)
    assert [e for e in events if isinstance(e, Error)][0].message == "no trained diffusion model yet"
    target = checkpoint_path(context, "diffusion")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"not a checkpoint at all")
    events = _run("sample", {"n": 2, "out": str(home / "a.png")}, context)
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 1 and "corrupt checkpoint" in errors[0].message
    assert target.read_bytes() == b"not a checkpoint at all"  # nothing overwritten


def test_epochs_with_resume_count_the_total_like_the_vae_and_gan(tmp_path):
    """One convention for --epochs with --resume across the image models: the total, not N more."""
    from course_assistant_plugins.images.checkpoints import checkpoint_path, read_checkpoint

    context = _context(tmp_path / "home")
    options = dict(TINY, data="digits", batch_size=256)
    _run("train", dict(options, epochs=1), context)
    resumed = _run("train", dict(options, epochs=2, resume=True), context)
    assert [e.obj["epochs_done"] for e in resumed if isinstance(e, Data)] == [1]  # epoch 2 only
    assert read_checkpoint(checkpoint_path(context, "diffusion")).state["epoch"] == 2
    again = _run("train", dict(options, epochs=2, resume=True), context)
    assert any("counts the total" in e.message for e in again if isinstance(e, Notice))
