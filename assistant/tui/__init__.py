"""The Textual chat front end. `run_tui(context)` opens it."""

from __future__ import annotations

from typing import Any


def run_tui(context: Any) -> None:
    from assistant.tui.pictures import image_mode, probe_terminal_graphics

    if image_mode(context.config) == "auto":
        probe_terminal_graphics()
    from assistant.tui.app import ChatApp

    ChatApp(context, warm_up=True).run()
