"""Which module implements each image model, and the options they all accept.

Each module exposes:
  train(context, options) -> Iterator[Event]      (Progress, Notice, Image, Data)
  sample(context, options) -> Iterator[Event]     (an Image event with the grid; writes --npy)
  generate(context, n, options) -> np.ndarray     (n, 28, 28, 1) in [0, 1], for the evaluator
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from assistant import UserError

MODEL_MODULES = {"vae": "course_assistant_plugins.images.vae", "gan": "course_assistant_plugins.images.gan", "diffusion": "course_assistant_plugins.images.diffusion"}

# Every option key a model may receive (absent keys mean "the model's default").
OPTION_KEYS = ("epochs", "time_budget", "seed", "data", "data_path", "batch_size", "resume", "n", "out", "npy",
               "label", "guidance", "sampler", "steps", "eta", "latent_dim", "beta")
MAX_SAMPLES = 100_000


class UnknownModel(UserError, ValueError):
    pass


def known_models() -> list[str]:
    return list(MODEL_MODULES)


def model_module(name: str) -> ModuleType:
    """The module for a model name; a clear error for unknown or not-yet-installed models."""
    key = (name or "").strip().lower()
    if key not in MODEL_MODULES:
        raise UnknownModel(f"unknown image model {name!r}; known models: {', '.join(MODEL_MODULES)}")
    try:
        module = importlib.import_module(MODEL_MODULES[key])
    except ModuleNotFoundError as exc:
        if exc.name and MODEL_MODULES[key].startswith(exc.name):
            raise UnknownModel(f"the {key} model is not available in this build") from exc
        raise
    for attr in ("train", "sample", "generate"):
        if not callable(getattr(module, attr, None)):
            raise UnknownModel(f"the {key} model module does not provide {attr}()")
    return module


def clean_options(options: dict[str, Any]) -> dict[str, Any]:
    """Drop unset values so models apply their own defaults."""
    return {k: v for k, v in options.items() if v is not None and v is not False}


def check_n(n: Any) -> int:
    """Validate a sample count: 1..MAX_SAMPLES (generation runs in batches)."""
    try:
        value = int(n)
    except (TypeError, ValueError):
        raise ValueError(f"--n must be a whole number, got {n!r}") from None
    if value <= 0 or value > MAX_SAMPLES:
        raise ValueError(f"--n must be between 1 and {MAX_SAMPLES:,}, got {value:,}")
    return value


def default_output(context: Any, model: str, kind: str = "samples", suffix: str = ".png") -> Path:
    """<home>/outputs/images/<model>-<kind>-<timestamp><suffix> (never overwrites an earlier run)."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(context.home) / "outputs" / "images"
    path = base / f"{model}-{kind}-{stamp}{suffix}"
    i = 1
    while path.exists():
        path = base / f"{model}-{kind}-{stamp}-{i}{suffix}"
        i += 1
    return path
