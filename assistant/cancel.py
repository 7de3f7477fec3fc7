"""Cooperative cancellation: long work checks the token between steps."""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised by `CancelToken.raise_if_cancelled` inside long work."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def reset(self) -> None:
        self._event.clear()
