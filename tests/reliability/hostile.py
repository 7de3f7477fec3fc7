"""Builders for hostile inputs, shared by the reliability tests and bench/faults.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT.parent / "shared" / "course" / "module9-generative-ai.md"


def shared_stream_pdf(pages: int, lines: int = 60, width: int = 70) -> bytes:
    """A small PDF whose `pages` pages all draw one Flate-compressed content stream.

    The file stays a few KB while text extraction yields pages * lines * width
    characters: the expansion a hostile PDF uses to exhaust memory and time.
    """
    ops = ["BT", "/F1 10 Tf", "12 TL", "40 760 Td"]
    row = ("lorem ipsum dolor " * 8)[:width]
    ops += [f"({row}) Tj T*" for _ in range(lines)]
    ops.append("ET")
    content = zlib.compress("\n".join(ops).encode(), 9)
    page_ids = [4 + i for i in range(pages)]
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {pages} >>".encode(),
        3: b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
    }
    font = 4 + pages
    for i in page_ids:
        objects[i] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
                      f"/Resources << /Font << /F1 {font} 0 R >> >> >>").encode()
    objects[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {font + 1}\n0000000000 65535 f \n".encode()
    for number in range(1, font + 1):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {font + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def run_cli_process(home: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-m", "assistant.cli", "--home", str(home), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def kill_when(proc: subprocess.Popen, started: Path, delay: float, limit: float = 240) -> bool:
    """SIGKILL `proc` `delay` s after `started` appears; False if it finished first."""
    deadline = time.monotonic() + limit
    while not started.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.communicate()
            return False
        time.sleep(0.05)
    time.sleep(delay)
    if proc.poll() is not None:
        proc.communicate()
        return False
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return True


def split_course(folder: Path, parts: int = 6, lines: int = 900) -> list[Path]:
    """The course text (material we did not write) as a few files, like a student's folder."""
    text = COURSE.read_text(encoding="utf-8").splitlines()[:lines]
    folder.mkdir(parents=True, exist_ok=True)
    size = len(text) // parts
    files = []
    for i in range(parts):
        path = folder / f"part{i}.md"
        path.write_text("\n".join(text[i * size:(i + 1) * size]) + "\n", encoding="utf-8")
        files.append(path)
    return files


def check_index(home: Path, kb: str, files: list[Path]) -> None:
    """Manifest, chunk table and vectors agree, every file is in, nothing twice."""
    import json

    from assistant.config import Config, resolve_home
    from course_assistant_plugins.rag.kb import KnowledgeBase

    base = KnowledgeBase(Config(resolve_home(home)), kb)
    manifest = json.loads(base.manifest_path.read_text())["files"]
    assert set(manifest) == {str(f.resolve()) for f in files}
    rows = base.db.execute("SELECT path, COUNT(*), COUNT(DISTINCT seq) FROM chunks GROUP BY path").fetchall()
    assert {r[0]: r[1] for r in rows} == {k: v["chunks"] for k, v in manifest.items()}
    assert all(r[1] == r[2] for r in rows)  # no chunk twice
    assert base.store.count() == sum(v["chunks"] for v in manifest.values())
    assert not list(base.dir.rglob(".*.tmp*"))  # no temp file left behind
    base.close()
