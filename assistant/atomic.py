"""Atomic file writes: a crash (even kill -9 or a power cut) never leaves a half-written file.

The data goes to a temp file beside the target, is fsync'ed, renamed over the
target, and the folder is fsync'ed so the rename itself survives. State files
are private (0600): they hold the user's notes, chats and models.

A temp file names the pid that wrote it: one left by a killed process (its pid
no longer alive) is removed by the next write to the same target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

STATE_MODE = 0o600  # index, manifests, checkpoints, config: private to the user
OUTPUT_MODE = None  # a file the user asked for (an export, a picture): as a plain open() makes it


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def clean_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove temp files of `target` left by processes that no longer run; returns them."""
    target = Path(target)
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for tmp in target.parent.glob(f".{target.stem}.*.tmp{target.suffix}"):
        parts = tmp.name[len(target.stem) + 2:].split(".", 1)
        if parts[0].isdigit() and int(parts[0]) != os.getpid() and not _pid_alive(int(parts[0])):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable (no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, mode: int | None = STATE_MODE) -> Iterator[Path]:
    """Yield a temp path beside `target`; fsync it and rename it over `target` on success.

    Use for writers that want a filename (np.save, model.save, torch.save).
    The temp name keeps the target's suffix because some writers check it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.{os.getpid()}.", suffix=f".tmp{target.suffix}",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp_path, mode)
    try:
        yield tmp_path
        fsync_file(tmp_path)
        os.replace(tmp_path, target)
        fsync_dir(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes, mode: int | None = STATE_MODE) -> None:
    with atomic_path(target, mode) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(target: str | os.PathLike, text: str, mode: int | None = STATE_MODE) -> None:
    atomic_write_bytes(target, text.encode("utf-8"), mode)
