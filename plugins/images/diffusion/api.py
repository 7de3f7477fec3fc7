"""The diffusion model's train / sample / generate, as the images plugin calls them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from assistant import Event, Image, Notice, Progress
from course_assistant_plugins.images.diffusion.model import DiffusionModel, to_unit

MODEL = "diffusion"
STRIP_FRAMES = 8  # snapshots of the chain shown while denoising
STRIP_ROWS = 4  # samples shown in the strip
GENERATE_BATCH = 250
# DDIM noise by default: on our briefly trained models eta=1 scores far better
# than the deterministic eta=0 (FID 11.4 vs 22.0 after 15 minutes; docs/diffusion.md).
DEFAULT_ETA = 1.0
_loaded: dict[tuple, DiffusionModel] = {}


def load_model(context: Any) -> DiffusionModel:
    """The trained model (EMA weights), cached while its checkpoint file is unchanged;
    the user's own checkpoint, else the shipped one."""
    from course_assistant_plugins.images.checkpoints import sampling_checkpoint

    path, _ = sampling_checkpoint(context, MODEL)
    key = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
    if key not in _loaded:
        _loaded.clear()
        _loaded[key] = DiffusionModel.load(path)
    return _loaded[key]


def _sampler_args(options: dict[str, Any]) -> dict[str, Any]:
    return {"sampler": options.get("sampler") or "ddim", "steps": options.get("steps"),
            "eta": DEFAULT_ETA if options.get("eta") is None else float(options["eta"]), "label": options.get("label"),
            "guidance": options.get("guidance"), "seed": options.get("seed")}


def strip_path(out: Path) -> Path:
    return out.with_name(out.stem + "-denoising.png")


def sample(context: Any, options: dict[str, Any]) -> Iterator[Event]:
    """Draw n samples; the denoising strip is re-saved and shown as the chain runs."""
    from course_assistant_plugins.images.display import save_grid
    from course_assistant_plugins.images.sampling import check_outputs, write_samples

    out, _ = check_outputs(options)
    n = int(options.get("n", 16))
    model = load_model(context)
    args = _sampler_args(options)
    steps = model.sampler(n, **args)  # validates label, guidance, steps, eta before any work
    rows = min(n, STRIP_ROWS)
    frames = np.zeros((rows, STRIP_FRAMES, 28, 28, 1), dtype=np.float32)
    strip = strip_path(out)
    shown = 0
    started = time.perf_counter()
    x = None
    for step in steps:
        context.cancel.raise_if_cancelled()
        x = step.x
        yield Progress(f"denoising ({args['sampler']})", step.index, step.total)
        # Snapshot at evenly spaced points of the chain, always including the last step.
        due = int(np.ceil(step.index * STRIP_FRAMES / step.total))
        if due > shown:
            frames[:, shown] = to_unit(x[:rows])
            shown = due
            save_grid(frames.reshape(-1, 28, 28, 1), strip, nrow=STRIP_FRAMES)
            yield Image(str(strip), f"denoising: step {step.index}/{step.total} (left: noise, right: now)")
    seconds = time.perf_counter() - started
    images = to_unit(x)
    what = f"digit {args['label']}" if args["label"] is not None else "digits"
    sampler_text = f"{args['sampler'].upper()} {step.total} steps"
    yield from write_samples(images, options, f"diffusion: {n} {what}, {sampler_text} ({seconds:.1f} s)")
    yield Notice("info", f"denoising strip: {strip}")


def generate(context: Any, n: int, options: dict[str, Any]) -> np.ndarray:
    """n samples (n, 28, 28, 1) in [0, 1] for the evaluator; checks cancel between steps."""
    from course_assistant_plugins.images.sampling import generate_in_batches

    model = load_model(context)
    args = _sampler_args(options)
    model.sampler(1, **dict(args, seed=None))  # fail fast on bad options

    def make(start: int, count: int) -> np.ndarray:
        seed = None if args["seed"] is None else int(args["seed"]) + start
        x = None
        for step in model.sampler(count, **dict(args, seed=seed)):
            context.cancel.raise_if_cancelled()
            x = step.x
        return to_unit(x)

    return generate_in_batches(make, int(n), context, batch=GENERATE_BATCH)
