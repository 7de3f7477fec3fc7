"""Pictures for the image models, drawn with Pillow and written atomically.

Grids of samples, strips of frames (interpolations, denoising steps), line
plots of losses and a scatter of latent codes coloured by class.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

PAD = 2
# Ten colours that stay distinct on white (one per digit class); grey for unknown.
CLASS_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                 (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def _as_gray_stack(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"expected images shaped (N, H, W[, 1]) with N >= 1, got {np.shape(images)}")
    return np.nan_to_num(arr, nan=0.0).clip(0.0, 1.0)


def grid_array(images: np.ndarray, nrow: int | None = None, pad: int = PAD) -> np.ndarray:
    """Tile N images into one uint8 picture, `nrow` images per row (default: square)."""
    arr = _as_gray_stack(images)
    n, h, w = arr.shape
    per_row = max(1, int(nrow or math.ceil(math.sqrt(n))))
    rows = math.ceil(n / per_row)
    canvas = np.full((rows * (h + pad) + pad, per_row * (w + pad) + pad), 0.25, dtype=np.float32)
    for i, img in enumerate(arr):
        r, c = divmod(i, per_row)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return (canvas * 255).round().astype(np.uint8)


def _save_pil(picture, path: str | Path) -> Path:
    from assistant import OUTPUT_MODE, atomic_path

    path = Path(path)
    with atomic_path(path, OUTPUT_MODE) as tmp:  # a picture the user asked for
        picture.save(tmp, format="PNG")
    return path


def save_grid(images: np.ndarray, path: str | Path, nrow: int | None = None, scale: int = 2) -> Path:
    """Write a PNG grid of images in [0,1]; returns the path."""
    from PIL import Image as PILImage

    picture = PILImage.fromarray(grid_array(images, nrow), mode="L")
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), PILImage.NEAREST)
    return _save_pil(picture, path)


def save_strip(frames: np.ndarray, path: str | Path, scale: int = 2) -> Path:
    """One row of frames, e.g. an interpolation or a denoising trajectory."""
    frames = _as_gray_stack(frames)
    return save_grid(frames, path, nrow=len(frames), scale=scale)


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def save_line_plot(series: dict[str, Sequence[float]], path: str | Path, title: str = "",
                   xlabel: str = "epoch", size: tuple[int, int] = (480, 300)) -> Path:
    """A small line chart (e.g. losses per epoch) with a legend."""
    from PIL import Image as PILImage, ImageDraw

    width, height = size
    left, right, top, bottom = 48, 12, 24, 30
    picture = PILImage.new("RGB", size, "white")
    draw = ImageDraw.Draw(picture)
    values = [float(v) for s in series.values() for v in s if np.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    longest = max((len(s) for s in series.values()), default=1)
    draw.rectangle([left, top, width - right, height - bottom], outline=(0, 0, 0))

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (width - left - right) * (i / max(1, longest - 1))
        y = height - bottom - (height - top - bottom) * ((v - lo) / (hi - lo))
        return x, y

    font = _font()
    for k, (name, s) in enumerate(series.items()):
        colour = CLASS_COLOURS[k % len(CLASS_COLOURS)]
        points = [xy(i, float(v)) for i, v in enumerate(s) if np.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for p in points if len(points) <= 40 else []:
            draw.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=colour)
        draw.text((left + 8, top + 4 + 12 * k), name, fill=colour, font=font)
    draw.text((4, top - 2), f"{hi:.3g}", fill=(0, 0, 0), font=font)
    draw.text((4, height - bottom - 10), f"{lo:.3g}", fill=(0, 0, 0), font=font)
    draw.text((left, height - bottom + 6), f"1 .. {longest} {xlabel}", fill=(0, 0, 0), font=font)
    if title:
        draw.text((left, 6), title, fill=(0, 0, 0), font=font)
    return _save_pil(picture, path)


def save_scatter(points: np.ndarray, labels: np.ndarray, path: str | Path, title: str = "",
                 size: int = 420) -> Path:
    """2-d points coloured by class label (0-9; others grey), with a legend."""
    from PIL import Image as PILImage, ImageDraw

    pts = np.asarray(points, dtype=np.float32)[:, :2]
    labels = np.asarray(labels)
    picture = PILImage.new("RGB", (size + 70, size), "white")
    draw = ImageDraw.Draw(picture)
    finite = np.isfinite(pts).all(axis=1)
    pts, labels = pts[finite], labels[finite]
    lo = np.percentile(pts, 0.5, axis=0) if len(pts) else np.zeros(2)
    hi = np.percentile(pts, 99.5, axis=0) if len(pts) else np.ones(2)
    span = np.maximum(hi - lo, 1e-6)
    margin = 16
    for (px, py), label in zip(pts, labels):
        x = margin + (size - 2 * margin) * (px - lo[0]) / span[0]
        y = size - margin - (size - 2 * margin) * (py - lo[1]) / span[1]
        colour = CLASS_COLOURS[int(label)] if 0 <= int(label) < 10 else (160, 160, 160)
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=colour)
    font = _font()
    for d in range(10):
        draw.rectangle([size + 10, 20 + 16 * d, size + 20, 30 + 16 * d], fill=CLASS_COLOURS[d])
        draw.text((size + 26, 19 + 16 * d), str(d), fill=(0, 0, 0), font=font)
    if title:
        draw.text((margin, 2), title, fill=(0, 0, 0), font=font)
    return _save_pil(picture, path)
