"""Trained classifiers on disk: <home>/models/classifiers/<name>/.

    adapter/     PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors)
    merged/      optional standalone model with the adapter folded in (--merge)
    meta.json    classes, data file and its sha256, settings, evaluation report

A model directory is built beside its target and renamed into place, so a
crash never leaves a half-written classifier; an old one is replaced whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from assistant import UserError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LOAD_LOCK = threading.Lock()


class ClassifierError(UserError, RuntimeError):
    """A missing or damaged classifier, worded for the user."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise ClassifierError(f"bad classifier name {name!r}", "use letters, digits, '-', '_' or '.', up to 64 characters")
    return name


def classifiers_dir(home: Path) -> Path:
    return Path(home) / "models" / "classifiers"


def model_dir(home: Path, name: str) -> Path:
    return classifiers_dir(home) / check_name(name)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temp dir beside `target`; on success it replaces `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_meta(directory: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and isinstance(meta.get("classes"), list) else None


def list_classifiers(home: Path) -> list[dict[str, Any]]:
    root = classifiers_dir(home)
    rows = []
    if root.is_dir():
        for directory in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            meta = read_meta(directory)
            if meta:
                rows.append({"name": directory.name, "classes": meta["classes"],
                             "accuracy": meta.get("report", {}).get("accuracy"),
                             "merged": (directory / "merged").is_dir(), "path": str(directory)})
    return rows


def save(directory: Path, model, tokenizer, meta: dict[str, Any], merge: bool = False) -> Path:
    """Write adapter (+ merged model) and meta.json atomically; returns the directory."""
    with atomic_dir(directory) as tmp:
        model.save_pretrained(str(tmp / "adapter"), safe_serialization=True)
        if merge:
            save_merged(model, tokenizer, tmp / "merged")
        meta = dict(meta, merged=merge)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return directory


def save_merged(peft_model, tokenizer, target: Path) -> None:
    """Fold the LoRA matrices into the base weights: a standalone model, no PEFT needed."""
    import copy

    merged = copy.deepcopy(peft_model).merge_and_unload()
    merged.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))


def merge_existing(directory: Path) -> Path:
    """Add merged/ to an already trained classifier."""
    meta = read_meta(directory)
    if meta is None:
        raise ClassifierError(f"no trained classifier in {directory}")
    model, tokenizer = load_adapter(directory, meta)
    with atomic_dir(directory / "merged") as tmp:
        save_merged(model, tokenizer, tmp)
    meta["merged"] = True
    from assistant import atomic_write_text

    atomic_write_text(directory / "meta.json", json.dumps(meta, indent=2, ensure_ascii=False))
    return directory / "merged"


def load_adapter(directory: Path, meta: dict[str, Any]):
    """Base MiniLM + the saved LoRA adapter, as a PeftModel in eval mode."""
    from peft import PeftModel

    from .lora import load_base, load_tokenizer

    from assistant import MODEL_LOAD_LOCK

    base = load_base(meta["classes"])
    with MODEL_LOAD_LOCK:
        model = PeftModel.from_pretrained(base, str(directory / "adapter"), is_trainable=False)
    return model.eval(), load_tokenizer()


def load_merged(directory: Path):
    from transformers import AutoTokenizer

    from .model import MiniLMClassifier

    from assistant import MODEL_LOAD_LOCK

    merged = directory / "merged"
    with MODEL_LOAD_LOCK:
        return MiniLMClassifier.from_pretrained(str(merged)).eval(), AutoTokenizer.from_pretrained(str(merged))


def load(directory: Path, prefer_merged: bool = True):
    """(model, tokenizer, meta) ready for inference; ClassifierError when missing or damaged."""
    meta = read_meta(directory)
    name = directory.name
    if meta is None:
        raise ClassifierError(f"no trained classifier named {name!r}",
                              f"train one: assistant classify train --data FILE --name {name}")
    from .lora import quiet_transformers

    quiet_transformers()
    try:
        with _LOAD_LOCK:
            if prefer_merged and (directory / "merged" / "config.json").is_file():
                model, tokenizer = load_merged(directory)
            else:
                model, tokenizer = load_adapter(directory, meta)
                # Inference is faster with the update folded in; the files stay as saved.
                model = model.merge_and_unload()
    except Exception as exc:  # noqa: BLE001 - any failure here means damaged files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClassifierError(f"classifier {name!r} in {directory} could not be loaded ({first})",
                              f"retrain it: assistant classify train ... --name {name}") from exc
    if model.config.num_labels != len(meta["classes"]):
        raise ClassifierError(f"classifier {name!r}: the model has {model.config.num_labels} classes "
                              f"but meta.json lists {len(meta['classes'])}", "retrain it")
    return model.eval(), tokenizer, meta
