"""The evaluator, the pictures and the checkpoint format, on real digits."""

from __future__ import annotations

import numpy as np
import pytest

from course_assistant_plugins.images.data import load_digits_data


def test_fid_is_low_for_real_digits_and_high_for_noise(image_context):
    from course_assistant_plugins.images.evaluate import evaluate_samples

    train = load_digits_data("mnist", "train", context=image_context)
    pick = np.random.default_rng(0).choice(len(train.x), 500, replace=False)
    real = evaluate_samples(train.x[pick], image_context, n_real=500)
    noise = evaluate_samples(np.random.default_rng(1).random((500, 28, 28, 1)), image_context, n_real=500)
    blank = evaluate_samples(np.zeros((500, 28, 28, 1)), image_context, n_real=500)
    for m in (real, noise):
        assert np.isfinite(m["fid"]) and np.isfinite(m["kid"])
        assert abs(sum(m["class_histogram"]) - 1.0) < 1e-3
    assert real["fid"] < noise["fid"] / 5 and real["fid"] < blank["fid"] / 5
    assert real["kid"] < noise["kid"]
    assert real["classes_over_5pct"] == 10 and real["coverage_entropy"] > 3.0
    assert real["confidence"] > noise["confidence"]
    assert blank["classes_over_5pct"] == 1  # a constant image is one class: collapse is visible
    assert real["classifier_test_accuracy"] > 0.8


def test_evaluator_rejects_bad_samples(image_context):
    from course_assistant_plugins.images.evaluate import evaluate_samples

    with pytest.raises(ValueError, match="28, 28, 1"):
        evaluate_samples(np.zeros((10, 32, 32, 1)), image_context)
    bad = np.zeros((10, 28, 28, 1))
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_samples(bad, image_context)


def test_grids_strips_and_plots_are_pngs(tmp_path):
    from PIL import Image as PILImage

    from course_assistant_plugins.images.display import save_grid, save_line_plot, save_scatter, save_strip

    x = load_digits_data("digits", "test").x
    grid = save_grid(x[:10], tmp_path / "g.png", nrow=5, scale=1)
    with PILImage.open(grid) as img:
        assert img.size == (5 * 30 + 2, 2 * 30 + 2)  # 28 px + 2 px padding per cell
        assert np.asarray(img).max() == 255
    with PILImage.open(save_strip(x[:4], tmp_path / "s.png", scale=1)) as img:
        assert img.size == (4 * 30 + 2, 32)
    save_line_plot({"a": [3, 2, 1], "b": [1, float("nan"), 2]}, tmp_path / "l.png", "losses")
    save_scatter(np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 10, tmp_path / "sc.png")
    for name in ("l.png", "sc.png"):
        with PILImage.open(tmp_path / name) as img:
            assert img.format == "PNG" and len(set(np.asarray(img).reshape(-1, 3)[:, 0].tolist())) > 2
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temp files
    with pytest.raises(ValueError):
        save_grid(np.zeros((0, 28, 28)), tmp_path / "empty.png")


def _tiny_model(width: int = 4):
    from course_assistant_plugins.images.runtime import keras_module

    keras = keras_module()
    return keras.Sequential([keras.Input((width,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])


def test_checkpoint_round_trip_and_safe_failures(tmp_path):
    from course_assistant_plugins.images.checkpoints import CheckpointError, MissingCheckpoint, read_checkpoint, restore, save_checkpoint
    from course_assistant_plugins.images.runtime import keras_module

    keras = keras_module()
    model = _tiny_model()
    model.layers[0].kernel.assign(np.arange(12, dtype=np.float32).reshape(4, 3))
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    path = save_checkpoint(tmp_path / "c.npz", {"net": model}, {"latent_dim": 7}, {"epoch": 3}, {"opt": optimizer})
    ckpt = read_checkpoint(path)
    assert ckpt.config == {"latent_dim": 7} and ckpt.state == {"epoch": 3}

    other = _tiny_model()
    other_opt = keras.optimizers.Adam()
    other_opt.build(other.trainable_variables)
    assert restore(ckpt, {"net": other}, {"opt": other_opt}) is True
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)

    # Incompatible: nothing is assigned.
    wider = _tiny_model(width=5)
    before = [w.copy() for w in wider.get_weights()]
    with pytest.raises(CheckpointError, match="incompatible"):
        restore(ckpt, {"net": wider})
    for a, b in zip(before, wider.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(CheckpointError, match="no weights for"):
        restore(ckpt, {"other": model})

    # Corrupt or truncated: a clear error; the bad file stays as it was.
    data = path.read_bytes()
    for bad in (b"garbage", data[: len(data) // 2]):
        path.write_bytes(bad)
        with pytest.raises(CheckpointError, match="corrupt"):
            read_checkpoint(path)
        assert path.read_bytes() == bad
    with pytest.raises(MissingCheckpoint):
        read_checkpoint(tmp_path / "none.npz")
