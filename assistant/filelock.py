"""An exclusive lock file shared by processes (and threads): one writer at a time.

`flock` on an open file: the kernel releases it when the holder exits, even
on SIGKILL, so a crashed writer never leaves a stale lock behind. The file
holds the holder's pid, only to name it in messages.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any


class LockTimeout(Exception):
    pass


class FileLock:
    def __init__(self, path: str | os.PathLike, what: str):
        self.path = Path(path)
        self.what = what  # "knowledge base 'notes'", for messages
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the process holding the lock ("?" if unknown)."""
        try:
            return self.path.read_text(encoding="ascii").strip() or "?"
        except (OSError, UnicodeDecodeError):
            return "?"

    def acquire(self, timeout: float, cancel: Any = None, poll: float = 0.1) -> None:
        """Wait for the lock up to `timeout` seconds (checking `cancel`); LockTimeout after that."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if cancel is not None:
                cancel.raise_if_cancelled()
            if time.monotonic() >= deadline:
                raise LockTimeout(f"{self.what} is being written by another process (pid {self.holder()}) "
                                  f"for more than {timeout:.0f} s")
            time.sleep(poll)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
