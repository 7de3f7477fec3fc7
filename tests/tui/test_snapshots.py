"""Snapshot tests (pytest-textual-snapshot) of the screens a student sees most.

Update after a deliberate change of the look with `pytest tests/tui/test_snapshots.py --snapshot-update`
and check the SVGs in tests/tui/__snapshots__/ (the HTML report shows the differences).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from assistant.builtin import CorePlugin
from assistant.config import Config, resolve_home
from assistant.events import Event, Image, Progress, Sources, Text
from assistant.plugin import Command, Context, Plugin, Request
from assistant.registry import Registry
from assistant.tui.app import ChatApp
from tests.tui.test_chat_tools import FUSED

SIZE = (110, 32)
# A fixed place: the caption shows the picture's path, which must not change between runs.
PICTURE = Path("/tmp/course-assistant-snapshots/seven.png")


class SnapshotPlugin(Plugin):
    name = "snap"
    description = "test plugin"
    commands = (Command("answer", "answer from the notes", "QUESTION"), Command("draw", "draw a digit"))
    intents = {"ask": "answer"}

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        if request.command == "answer":
            yield Text("**Mode collapse** is when the generator covers only a few modes of the data [1]. "
                       "Watch the variety of the samples and the class histogram [2].")
            yield Sources(FUSED)
        else:
            from PIL import Image as PILImage, ImageDraw

            PICTURE.parent.mkdir(parents=True, exist_ok=True)
            picture = PILImage.new("L", (28, 28), color=0)
            ImageDraw.Draw(picture).line([(6, 6), (22, 6), (12, 24)], fill=255, width=3)
            picture.save(PICTURE)
            yield Image(str(PICTURE), "one sample of the digit 7")
            yield Text("Sampled 1 image of a 7.")


@pytest.fixture
def chat(tmp_path):
    def make() -> ChatApp:
        registry = Registry()
        registry.register(CorePlugin)
        registry.register(SnapshotPlugin)
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        (home / "config.toml").write_text('[tui]\nimages = "blocks"\n', encoding="utf-8")
        return ChatApp(Context(Config(resolve_home(home)), registry))
    return make


async def settle(app: ChatApp, pilot) -> None:
    """Until the action has ended and the conversation is drawn and scrolled to its end."""
    app.query_one("#prompt").cursor_blink = False  # a blinking cursor would differ between runs
    for _ in range(200):
        await pilot.pause(0.05)
        if not app.busy:
            break
    await pilot.pause(0.3)
    app.query_one("#conversation").scroll_end(animate=False)
    await pilot.pause(0.3)


def test_welcome_screen(snap_compare, chat):
    async def ready(pilot):
        await settle(pilot.app, pilot)

    assert snap_compare(chat(), terminal_size=SIZE, run_before=ready)


def test_answer_with_sources(snap_compare, chat):
    async def ask(pilot):
        pilot.app.query_one("#prompt").value = "What is mode collapse in a GAN?"
        await pilot.press("enter")
        await settle(pilot.app, pilot)

    assert snap_compare(chat(), terminal_size=SIZE, run_before=ask)


def test_training_progress_bar(snap_compare, chat):
    async def training(pilot):
        await settle(pilot.app, pilot)
        await pilot.app.query_one("#warmup").update_progress(
            Progress("training the intent router · about 40 s left", 42, 100))
        await pilot.pause(0.2)

    assert snap_compare(chat(), terminal_size=SIZE, run_before=training)


def test_image_reply(snap_compare, chat):
    async def draw(pilot):
        pilot.app.query_one("#prompt").value = "/draw"
        await pilot.press("enter")
        await settle(pilot.app, pilot)

    assert snap_compare(chat(), terminal_size=SIZE, run_before=draw)
