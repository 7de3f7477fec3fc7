"""The chat with the real plugins: a multi-turn exchange, and a first run on a fresh state directory."""

from __future__ import annotations

import time

import pytest
from textual.widgets import ProgressBar

from assistant.config import Config, resolve_home
from assistant.plugin import Context
from assistant.registry import Registry
from assistant.tui.app import ChatApp
from assistant.tui.widgets import NoticeLine, PromptInput, Reply
from tests.tui.test_chat import lines_of, replies, send

QUESTION = "What is mode collapse in a GAN and how can I tell if my GAN has it?"


async def ask(app: ChatApp, pilot, line: str, limit: float = 300) -> Reply:
    app.query_one(PromptInput).value = line
    await pilot.press("enter")
    start = time.monotonic()
    await pilot.pause(0.1)
    while app.busy and time.monotonic() - start < limit:
        await pilot.pause(0.1)
    assert not app.busy, f"{line!r} took over {limit} s"
    await pilot.pause()
    return replies(app)[-1]


def real_app(home, config: str, warm_up: bool = False) -> ChatApp:
    (home / "config.toml").write_text(config, encoding="utf-8")
    return ChatApp(Context(Config(resolve_home(home)), Registry.load()), warm_up=warm_up)


@pytest.mark.slow
async def test_follow_ups_stay_with_the_course_notes(home):
    # The real router (its centroid fallback) reads "How do I fix it?" as `help` at 0.97.
    app = real_app(home, '[llm]\nbackend = "extractive"\n[router]\ntraining = "off"\n')
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        first = await ask(app, pilot, QUESTION)
        assert any("gan.md" in s.source for s in first.sources)
        for follow_up in ("How do I fix it?", "why?"):
            reply = await ask(app, pilot, follow_up)
            assert "## Commands" not in reply.text, f"{follow_up!r} went to /help"
            assert reply.sources, f"{follow_up!r} was not answered from the notes"
        assert sum("following up on the previous answer (rag" in n for n in lines_of(app, NoticeLine)) == 2
        # A new topic is routed on its own words again.
        await send(app, pilot, "/help")
        assert "## Commands" in replies(app)[-1].text


@pytest.mark.slow
async def test_first_run_indexes_in_the_background_quotes_at_once_then_the_model_answers(home):
    app = real_app(home, '[llm]\nbackend = "smollm2"\n[router]\ntraining = "off"\n', warm_up=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.query_one(PromptInput).value = QUESTION
        await pilot.press("enter")
        saw_bars: set[str] = set()
        start = time.monotonic()
        while time.monotonic() - start < 400:
            await pilot.pause(0.1)
            panel = app.query_one("#warmup")
            saw_bars |= {str(label.content).split(" · ")[0] for label in panel.query(".progress-label")}
            done = [r for r in app.query(Reply) if r.text.strip()]
            if len(done) >= 2 and not app.busy:
                break
        notices = " | ".join(lines_of(app, NoticeLine))
        assert {"indexing the course notes", "preparing the language model"} <= saw_bars, saw_bars
        assert panel.query(ProgressBar) or not app.warmup.thread.is_alive()
        assert "quoted from the course notes while the language model is being prepared" in notices
        assert "the language model is ready: its answer follows" in notices
        stored = [m for m in app.context.sessions.messages(app.context.session_id) if m.role == "assistant"]
        assert len(stored) == 2 and stored[0].superseded and stored[1].meta.get("retry_of") == stored[0].id
        assert stored[1].content != stored[0].content
