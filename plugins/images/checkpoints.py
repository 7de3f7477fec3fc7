"""Checkpoints for the image models: one atomic .npz file, weights only.

A checkpoint holds the weights of each named part (e.g. "encoder",
"decoder"), optionally each optimizer's variables, and a JSON header with the
model config and training state. It is written through a temp file and a
rename, loaded with `allow_pickle=False` (arrays only: no code, no pickles),
and checked against the models it is loaded into before anything is assigned,
so a corrupt or incompatible file raises `CheckpointError` and changes nothing.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant import UserError

FORMAT = "course-assistant/images-checkpoint"
# Small default models shipped as package data (built by `make pretrained`): a fresh
# install draws good digits at once; the user's own training in the state dir wins.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
PRETRAINED_MANIFEST = "manifest.json"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.npz"
HISTORY_NAME = "history.json"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, corrupt or does not fit the model."""


class MissingCheckpoint(CheckpointError):
    """No checkpoint yet: the model has not been trained in this state directory."""


@dataclass
class Checkpoint:
    path: Path
    config: dict[str, Any]
    state: dict[str, Any]
    weights: dict[str, list[np.ndarray]] = field(default_factory=dict)
    optimizers: dict[str, list[np.ndarray]] = field(default_factory=dict)


def model_dir(context: Any, model: str) -> Path:
    """<home>/models/images/<model>/: checkpoint, history and training figures."""
    return Path(context.home) / "models" / "images" / model


def checkpoint_path(context: Any, model: str) -> Path:
    return model_dir(context, model) / CHECKPOINT_NAME


def shipped_checkpoint(model: str) -> Path | None:
    """The shipped default checkpoint for `model`, sha256-checked against the manifest; None if not shipped."""
    path = PRETRAINED_DIR / f"{model}.npz"
    manifest = PRETRAINED_DIR / PRETRAINED_MANIFEST
    if not path.is_file() or not manifest.is_file():
        return None
    key = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    if key not in _verified:
        import hashlib

        try:
            expected = json.loads(manifest.read_text(encoding="utf-8"))["models"][model]["sha256"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"the shipped image-model manifest {manifest} is unreadable ({exc}); reinstall the "
                                  f"package or train your own {model}") from exc
        if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise CheckpointError(f"the shipped {model} checkpoint {path} does not match its sha256 (damaged?); "
                                  f"reinstall the package or train your own {model}")
        _verified.add(key)
    return path


_verified: set[tuple] = set()


def sampling_checkpoint(context: Any, model: str) -> tuple[Path, bool]:
    """(checkpoint to draw from, whether it is the shipped one): the user's own model first."""
    own = checkpoint_path(context, model)
    if own.exists():
        return own, False
    shipped = shipped_checkpoint(model)
    return (shipped, True) if shipped is not None else (own, False)


def strip_for_sampling(source: str | Path, target: str | Path, keep: tuple[str, ...]) -> Path:
    """A copy of a checkpoint holding only the weights sampling needs (no optimizer state)."""
    ckpt = read_checkpoint(source)
    missing = [name for name in keep if name not in ckpt.weights]
    if missing:
        raise CheckpointError(f"{source} has no weights for {', '.join(missing)}")
    state = dict(ckpt.state, stripped_for_sampling=True)
    return save_checkpoint(target, {name: ckpt.weights[name] for name in keep}, ckpt.config, state)


def _variables(obj: Any) -> list:
    if isinstance(obj, list):  # already arrays (strip_for_sampling)
        return obj
    return list(obj.weights if hasattr(obj, "weights") and not hasattr(obj, "apply_gradients") else obj.variables)


def save_checkpoint(path: str | Path, parts: dict[str, Any], config: dict[str, Any],
                    state: dict[str, Any] | None = None, optimizers: dict[str, Any] | None = None) -> Path:
    """Write weights of each Keras model/layer in `parts` (+ optimizer variables) atomically."""
    from assistant import atomic_path

    arrays: dict[str, np.ndarray] = {}
    layout: dict[str, dict[str, int]] = {"weights": {}, "optimizers": {}}
    for kind, objects in (("weights", parts), ("optimizers", optimizers or {})):
        for name, obj in objects.items():
            values = [np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in _variables(obj)]
            layout[kind][name] = len(values)
            for i, value in enumerate(values):
                arrays[f"{kind}/{name}/{i}"] = value
    header = {"format": FORMAT, "version": VERSION, "config": config, "state": state or {}, "layout": layout}
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint file (no model needed)."""
    path = Path(path)
    if not path.exists():
        raise MissingCheckpoint(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"corrupt checkpoint {path}: not a checkpoint archive (truncated or overwritten?)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(bytes(npz["__header__"]).decode("utf-8"))
            if header.get("format") != FORMAT:
                raise CheckpointError(f"{path} is not an image-model checkpoint")
            if header.get("version") != VERSION:
                raise CheckpointError(f"{path} has checkpoint version {header.get('version')}; this build reads {VERSION}")
            groups: dict[str, dict[str, list[np.ndarray]]] = {"weights": {}, "optimizers": {}}
            for kind, names in header["layout"].items():
                for name, count in names.items():
                    groups[kind][name] = [npz[f"{kind}/{name}/{i}"] for i in range(int(count))]
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"corrupt checkpoint {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    return Checkpoint(path, header.get("config", {}), header.get("state", {}), groups["weights"], groups["optimizers"])


def _check_fit(label: str, variables: list, values: list[np.ndarray], path: Path) -> None:
    if len(variables) != len(values):
        raise CheckpointError(f"incompatible checkpoint {path}: {label} has {len(variables)} weight arrays, "
                              f"the file has {len(values)}")
    for var, value in zip(variables, values):
        if tuple(var.shape) != tuple(value.shape):
            raise CheckpointError(f"incompatible checkpoint {path}: {label} expects {tuple(var.shape)} "
                                  f"for {getattr(var, 'path', getattr(var, 'name', '?'))}, the file has {tuple(value.shape)}")


def restore(checkpoint: Checkpoint, parts: dict[str, Any], optimizers: dict[str, Any] | None = None) -> bool:
    """Assign saved weights to built models; True if optimizer state was restored too.

    Every shape is checked before the first assignment, so a mismatch leaves
    the models untouched.
    """
    missing = [name for name in parts if name not in checkpoint.weights]
    if missing:
        raise CheckpointError(f"incompatible checkpoint {checkpoint.path}: no weights for {', '.join(missing)}")
    for name, obj in parts.items():
        _check_fit(name, _variables(obj), checkpoint.weights[name], checkpoint.path)
    restore_optim = bool(optimizers) and all(
        name in checkpoint.optimizers and len(_variables(opt)) == len(checkpoint.optimizers[name])
        and all(tuple(v.shape) == tuple(a.shape) for v, a in zip(_variables(opt), checkpoint.optimizers[name]))
        for name, opt in (optimizers or {}).items())
    for name, obj in parts.items():
        for var, value in zip(_variables(obj), checkpoint.weights[name]):
            var.assign(value)
    if restore_optim:
        for name, opt in (optimizers or {}).items():
            for var, value in zip(_variables(opt), checkpoint.optimizers[name]):
                var.assign(value)
    return restore_optim


def save_history(path: str | Path, history: dict[str, Any]) -> Path:
    from assistant import atomic_write_text

    atomic_write_text(path, json.dumps(history, indent=1))
    return Path(path)


def load_history(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"corrupt training history {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"corrupt training history {path}: expected a JSON object")
    return data
