"""The Textual chat front end. `run_tui(context)` opens it."""

from __future__ import annotations

from typing import Any


def run_tui(context: Any) -> None:
    from assistant.tui.app import ChatApp

    ChatApp(context).run()
