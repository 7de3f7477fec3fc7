"""Pictures in the terminal with textual-image, without stalling start-up.

textual-image picks its protocol (Kitty graphics, Sixel, half-blocks) when it
is first imported, by writing queries to the terminal and reading the answers
from stdin. That has to happen before Textual owns stdin, and it costs
0.1-0.5 s (a query the terminal does not answer times out), so
`tui.images` in config.toml chooses:

- "auto" (default): probe before the app starts; the best protocol the terminal has.
- "blocks": no probe; pictures in coloured half-blocks, loaded with the first one.
- "off": no pictures, only their captions and paths.
"""

from __future__ import annotations

import sys
from typing import Any

MODES = ("auto", "blocks", "off")


def image_mode(config: Any) -> str:
    mode = str(config.get("tui.images")).lower()
    return mode if mode in MODES else "auto"


def probe_terminal_graphics() -> None:
    """Import textual-image now, while the terminal can still be asked (a real tty only)."""
    if not (sys.__stdout__ and sys.__stdout__.isatty()):
        return
    try:
        import textual_image.widget  # noqa: F401 - importing runs the probe
    except Exception:  # noqa: BLE001 - load_image_widget falls back to half-blocks
        pass


def load_image_widget() -> type:
    """The textual-image widget class, loaded without querying a terminal Textual is reading."""
    if "textual_image.widget" not in sys.modules:
        import textual_image._terminal as terminal

        def unanswered(*args: Any, **kwargs: Any):
            raise terminal.TerminalError("the terminal is not queried while the chat runs")

        # The queries catch TerminalError and answer "unsupported": half-blocks on a tty.
        original = terminal.capture_terminal_response
        terminal.capture_terminal_response = unanswered
        try:
            import textual_image.widget  # noqa: F401
        finally:
            terminal.capture_terminal_response = original
    from textual_image.widget import Image

    return Image
