"""The Textual chat front end. `run_tui(context)` opens it."""

from __future__ import annotations

import sys
from typing import Any


def probe_terminal_graphics() -> None:
    """Let textual-image ask the terminal what it can draw (Kitty, Sixel, half-blocks).

    The query has to happen before Textual takes over stdin, so it runs here;
    `tui.images = "off"` in config.toml skips it.
    """
    if not (sys.__stdout__ and sys.__stdout__.isatty()):
        return
    try:
        import textual_image.widget  # noqa: F401 - importing runs the probe
    except Exception:  # noqa: BLE001 - without it, pictures show as captions
        pass


def run_tui(context: Any) -> None:
    if context.config.get("tui.images", "auto") != "off":
        probe_terminal_graphics()
    from assistant.tui.app import ChatApp

    ChatApp(context).run()
