"""Model files: assembly from parts, sha256 verification once, and what a corrupt file does."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from assistant import llm
from assistant.events import Notice, Text
from assistant.llm import weights
from assistant.llm.weights import GgufSpec, WeightsError, gguf_path


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Three installed 'packages' whose data files concatenate to a known blob."""
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 999, b"end" * 12345]
    for i, chunk in enumerate(chunks, 1):
        (tmp_path / f"pkg{i}" / "data").mkdir(parents=True)
        (tmp_path / f"pkg{i}" / "data" / f"part0{i}.bin").write_bytes(chunk)
    monkeypatch.setattr(weights, "package_dir", lambda module: tmp_path / module)
    blob = b"".join(chunks)
    spec = GgufSpec(name="tiny", label="Tiny", sha256=hashlib.sha256(blob).hexdigest(), filename="tiny.gguf",
                    parts=tuple((f"pkg{i}", f"data/part0{i}.bin") for i in range(1, 4)), install_hint="reinstall")
    return spec, blob


def test_parts_are_assembled_verified_once_and_reused(parts, tmp_path, monkeypatch):
    spec, blob = parts
    target_dir = tmp_path / "models"
    target_dir.mkdir()
    path = gguf_path(spec, target_dir)
    assert path == target_dir / "tiny.gguf" and path.read_bytes() == blob
    # verified once: a second start trusts the marker and does not hash again
    monkeypatch.setattr(weights, "sha256_file", lambda p: pytest.fail("hashed twice"))
    assert gguf_path(spec, target_dir) == path


def test_a_corrupt_assembled_file_is_rebuilt_from_the_parts(parts, tmp_path):
    spec, blob = parts
    target_dir = tmp_path / "models"
    target_dir.mkdir()
    path = gguf_path(spec, target_dir)
    path.write_bytes(blob[:1000])  # truncated by a crash or a bad disk
    assert gguf_path(spec, target_dir).read_bytes() == blob


def test_corrupt_parts_give_a_clear_error_and_leave_no_file(parts, tmp_path):
    spec, _ = parts
    wrong = dataclasses.replace(spec, sha256="0" * 64)
    target_dir = tmp_path / "models"
    target_dir.mkdir()
    with pytest.raises(WeightsError, match="sha256.*corrupt.*reinstall"):
        gguf_path(wrong, target_dir)
    assert list(target_dir.iterdir()) == []  # atomic: no half-written or unverified file


def test_missing_part_is_reported(parts, tmp_path):
    spec, _ = parts
    (tmp_path / "pkg2" / "data" / "part02.bin").unlink()
    with pytest.raises(WeightsError, match="not installed"):
        gguf_path(spec, tmp_path)


def test_sha_mismatch_of_the_model_falls_back_to_extractive(configure, tmp_path, monkeypatch):
    """A corrupt SmolLM2 file: one clear notice, an extractive answer, and the chat goes on."""
    from assistant.llm.hf_local import forget_loads

    bad = dataclasses.replace(weights.SMOLLM2, sha256="f" * 64)
    monkeypatch.setitem(weights.SPECS, "smollm2", bad)
    context = configure("smollm2", cache_dir=str(tmp_path / "fresh-cache"))
    prompt = [{"role": "user", "content": "<source 1 gan.md>\nA GAN trains a generator against a discriminator "
                                          "that tells real images from generated ones.\n</source>\n\n"
                                          "Question: What does the discriminator in a GAN do?"}]
    try:
        events = list(llm.stream_events(context, prompt))
        notices = [e for e in events if isinstance(e, Notice) and e.level == "warning"]
        assert len(notices) == 1 and "sha256 mismatch" in notices[0].message and "extractive" in notices[0].message
        text = "".join(e.delta for e in events if isinstance(e, Text))
        assert "discriminator" in text and "[1]" in text
        # the session stays on the fallback; the next question gets an answer without a new load attempt
        assert type(context.llm).__name__ == "ExtractiveChatModel"
        assert "[1]" in llm.complete(context, prompt)
    finally:
        forget_loads()
