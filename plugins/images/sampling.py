"""Turn generated images into files and events, the same way for every model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from assistant import Data, Event, Image, Progress

GRID_MAX = 256  # a grid shows at most this many samples; --npy keeps all of them
GENERATE_BATCH = 1000


def generate_in_batches(make: Callable[[int, int], np.ndarray], n: int, context: Any = None,
                        batch: int = GENERATE_BATCH) -> np.ndarray:
    """Call make(start, count) for batches and join them: big N never builds one huge tensor."""
    out = np.empty((n, 28, 28, 1), dtype=np.float32)
    for start in range(0, n, batch):
        if context is not None:
            context.cancel.raise_if_cancelled()
        count = min(batch, n - start)
        out[start:start + count] = np.asarray(make(start, count), dtype=np.float32).reshape(count, 28, 28, 1)
    return np.nan_to_num(out, nan=0.0).clip(0.0, 1.0)


def check_outputs(options: dict[str, Any]) -> tuple[Path, Path | None]:
    """Validate --out/--npy before any work, so a bad path fails fast."""
    out = Path(options["out"]).expanduser()
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file, got {out.name!r}")
    npy = Path(options["npy"]).expanduser() if options.get("npy") else None
    if npy is not None and npy.suffix.lower() != ".npy":
        raise ValueError(f"--npy must end in .npy, got {npy.name!r}")
    for path in (out, npy):
        if path is not None and path.exists() and path.is_dir():
            raise ValueError(f"{path} is a directory")
    return out, npy


def write_samples(images: np.ndarray, options: dict[str, Any], caption: str) -> Iterator[Event]:
    """Save the grid PNG (and --npy), then yield Image and Data events."""
    from assistant import OUTPUT_MODE, atomic_path
    from course_assistant_plugins.images.display import save_grid

    out, npy = check_outputs(options)
    shown = images[:GRID_MAX]
    save_grid(shown, out)
    if npy is not None:
        with atomic_path(npy, OUTPUT_MODE) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, images.astype(np.float32), allow_pickle=False)
    note = f" (grid shows the first {len(shown)})" if len(shown) < len(images) else ""
    yield Image(str(out), caption + note)
    yield Data({"action": "sample", "path": str(out), "npy": str(npy) if npy else None, "n": int(len(images)),
                "shape": list(images.shape), "min": float(images.min()), "max": float(images.max())})


def generation_progress(label: str, n: int) -> Progress:
    return Progress(label, 0, n)
