"""The chat TUI driven through Textual's pilot, with a deterministic inline plugin."""

from __future__ import annotations

import threading
import time
from typing import Iterator

from textual import events
from textual.widgets import Markdown, OptionList, ProgressBar, Static

from assistant.builtin import CorePlugin
from assistant.config import Config, resolve_home
from assistant.events import Event, Image, Progress, Source, Sources, Text
from assistant.plugin import Command, Context, Plugin, Request
from assistant.registry import Registry
from assistant.tui.app import ChatApp
from assistant.tui.widgets import (
    MAX_DISPLAY_CHARS,
    ErrorLine,
    ImageBlock,
    MarkdownText,
    NoticeLine,
    ProgressPanel,
    PromptInput,
    Reply,
    SourceScreen,
    SourcesPanel,
    StatusLine,
    UserMessage,
)

PASSAGE = "The encoder maps an image to a mean and a variance; the decoder maps a sample back."
SOURCE = Source("knowledge/vae.md", "VAEs > The loss", 12, 20, 0.87, PASSAGE)
SECOND = Source("knowledge/gan.md", "GANs", 3, 8, 0.41, "Two networks play a game.")


class TutorPlugin(Plugin):
    """Replies in several deltas, reports sources, runs a long cancellable job, draws a picture."""

    name = "tutor"
    description = "test plugin"
    commands = (
        Command("explain", "stream an explanation", "TOPIC"),
        Command("train", "a long job that only stops when cancelled"),
        Command("draw", "make a picture"),
        Command("stubborn", "a step that ignores cancellation for a while"),
        Command("boom", "fail"),
    )
    intents = {"ask": "explain"}
    gate: threading.Event | None = None  # when set by a test, the reply waits for it midway

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        if request.command == "explain":
            for piece in ("A **VAE** ", "learns ", "a latent ", "space. "):
                yield Text(piece)
            if self.gate is not None:
                self.gate.wait(10)
            yield Sources([SOURCE, SECOND])
            yield Text(f"You asked: {request.text} (after {len(request.history)} earlier turns).")
        elif request.command == "train":
            step = 0
            while True:  # only Escape ends it
                context.cancel.raise_if_cancelled()
                step += 1
                yield Progress("training", step, 1_000_000)
                time.sleep(0.005)
        elif request.command == "draw":
            from PIL import Image as PILImage

            path = context.config.outputs_dir / "digit.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            PILImage.new("L", (28, 28), color=200).save(path)
            yield Image(str(path), "a grey square")
            yield Text("done drawing")
        elif request.command == "stubborn":
            # Ignores the cancel token until the test opens the gate (a model that is loading).
            gate = self.gate  # taken now: the test swaps it for the next request
            yield Text("loading… ")
            assert gate is not None
            gate.wait(10)
            yield Text("loaded. ")
            yield Text("this part must never be shown")
        elif request.command == "boom":
            raise RuntimeError("the model exploded")


def make_app(home) -> ChatApp:
    registry = Registry()
    registry.register(CorePlugin)
    registry.register(TutorPlugin)
    return ChatApp(Context(Config(resolve_home(home)), registry))


async def wait_idle(app: ChatApp, pilot, limit: float = 15.0) -> None:
    start = time.monotonic()
    await pilot.pause()
    while app.busy and time.monotonic() - start < limit:
        await pilot.pause(0.05)
    assert not app.busy, "the action did not finish"
    await pilot.pause()


async def send(app: ChatApp, pilot, line: str) -> None:
    app.query_one(PromptInput).value = line
    await pilot.press("enter")
    await wait_idle(app, pilot)


def replies(app: ChatApp) -> list[Reply]:
    return list(app.query(Reply))


def user_messages(app: ChatApp) -> list[str]:
    return [m.source for m in app.query(UserMessage)]


def lines_of(app: ChatApp, kind: type[Static]) -> list[str]:
    return [str(w.content) for w in app.query(kind)]


async def test_typed_help_and_free_text_stream_with_sources(home):
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"/help")
        await pilot.press("enter")
        await wait_idle(app, pilot)
        help_text = replies(app)[-1].text
        assert "/explain TOPIC" in help_text and "/sessions" in help_text

        # Midway, the partial reply is already on screen in a streaming Markdown widget.
        gate = app.context.registry.plugins["tutor"].gate = threading.Event()
        app.query_one(PromptInput).value = "what is a VAE?"
        await pilot.press("enter")
        for _ in range(200):
            await pilot.pause(0.02)
            live = [m.source for m in replies(app)[-1].query(Markdown)]
            if live == ["A **VAE** learns a latent space. "]:
                break
        assert live == ["A **VAE** learns a latent space. "] and app.busy
        gate.set()
        await wait_idle(app, pilot)
        reply = replies(app)[-1]
        assert reply.text.startswith("A **VAE** learns a latent space. ")
        assert "You asked: what is a VAE?" in reply.text
        # The finished reply is one light widget holding the whole text.
        assert reply.query_one(MarkdownText).source == reply.text and not reply.query(Markdown)
        panel = app.query_one(SourcesPanel)
        assert panel.display and panel.sources == [SOURCE, SECOND]
        assert app.query_one("#source-list", OptionList).option_count == 2

        # Selecting a source opens its passage.
        options = app.query_one("#source-list", OptionList)
        options.focus()
        options.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SourceScreen)
        passage = str(app.screen.query_one("#source-text", Static).content)
        assert PASSAGE in passage and "12 │" in passage  # numbered as in the file
        assert "lines 12-20" in str(app.screen.query_one("#source-where", Static).content)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SourceScreen)
        assert app.focused is app.query_one(PromptInput)

        # The LLM history holds the earlier turn (help is not part of the conversation).
        await send(app, pilot, "/explain GANs")
        assert "after 2 earlier turns" in replies(app)[-1].text
        assert "for: /explain GANs" in str(app.query_one("#sources-for", Static).content)
        # A reply without sources hides the panel; F2 brings back the last ones.
        await send(app, pilot, "/help")
        assert not panel.display
        await pilot.press("f2")
        assert panel.display and panel.sources == [SOURCE, SECOND]


async def test_escape_cancels_a_long_action_and_the_chat_goes_on(home):
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.query_one(PromptInput).value = "/train"
        await pilot.press("enter")
        for _ in range(200):  # until a progress bar shows
            await pilot.pause(0.05)
            if app.query(ProgressBar):
                break
        assert app.busy
        bar = app.query_one(ProgressBar)
        assert bar.total == 1_000_000 and bar.progress >= 1
        assert "working" in str(app.query_one(StatusLine).content)
        await pilot.press("escape")
        await wait_idle(app, pilot)
        assert "· cancelled" in lines_of(app, NoticeLine)
        assert not app.query(ProgressBar) and not app.query_one(ProgressPanel).display
        assert not app.context.cancel.cancelled  # a fresh token for the next action
        await send(app, pilot, "/explain diffusion")
        assert "You asked: diffusion" in replies(app)[-1].text


async def test_escape_gives_the_chat_back_before_a_stubborn_plugin_stops(home):
    app = make_app(home)
    async with app.run_test() as pilot:
        gate = app.context.registry.plugins["tutor"].gate = threading.Event()
        app.query_one(PromptInput).value = "/stubborn"
        await pilot.press("enter")
        for _ in range(200):
            await pilot.pause(0.02)
            if replies(app) and replies(app)[-1].text:
                break
        await pilot.press("escape")
        await pilot.pause()
        # The reply is closed and saved as cancelled while the plugin is still inside its step.
        assert app.busy and "stopping" in str(app.query_one(StatusLine).content)
        assert "· cancelled" in lines_of(app, NoticeLine)
        stored = app.context.sessions.messages(app.context.session_id)
        assert stored[-1].role == "assistant" and stored[-1].meta.get("cancelled")
        assert stored[-1].content == "loading… "
        # A line typed now waits for the plugin to stop, then runs.
        app.context.registry.plugins["tutor"].gate = None
        app.query_one(PromptInput).value = "/explain queued"
        await pilot.press("enter")
        await pilot.pause()
        assert user_messages(app) == ["/stubborn"]
        gate.set()
        await wait_idle(app, pilot)
        assert user_messages(app) == ["/stubborn", "/explain queued"]
        assert "You asked: queued" in replies(app)[-1].text
        assert not any("never be shown" in r.text for r in replies(app))


async def test_conversation_resumes_after_restart(home):
    app = make_app(home)
    async with app.run_test() as pilot:
        await send(app, pilot, "/explain LoRA")
        first_session = app.context.session_id
        await pilot.press("ctrl+q")
    assert app.return_code == 0

    # A line sent at once, before the old conversation is drawn, lands below it.
    early = make_app(home)
    async with early.run_test() as pilot:
        await send(early, pilot, "/explain early")
        assert user_messages(early) == ["/explain LoRA", "/explain early"]
        await pilot.press("ctrl+q")

    again = make_app(home)
    async with again.run_test() as pilot:
        await pilot.pause()
        await pilot.pause(0.1)
        assert again.context.session_id == first_session
        assert user_messages(again) == ["/explain LoRA", "/explain early"]
        resumed = replies(again)
        assert "You asked: LoRA" in resumed[-2].query_one(MarkdownText).source
        assert "You asked: early" in resumed[-1].query_one(MarkdownText).source
        # Its sources come back too, in the panel.
        assert again.query_one(SourcesPanel).sources == [SOURCE, SECOND]
        assert again.query_one(PromptInput).past_inputs == ["/explain LoRA", "/explain early"]
        # The LLM history includes the resumed turn.
        await send(again, pilot, "/explain more")
        assert "after 4 earlier turns" in replies(again)[-1].text

        # /new starts an empty conversation; /sessions ID reopens the old one.
        await send(again, pilot, "/new")
        assert again.context.session_id != first_session and user_messages(again) == []
        await send(again, pilot, f"/sessions {first_session}")
        assert again.context.session_id == first_session
        assert user_messages(again) == ["/explain LoRA", "/explain early", "/explain more"]
        await send(again, pilot, "/export")
        exported = again.context.config.outputs_dir / f"session-{first_session}.md"
        assert "You asked: LoRA" in exported.read_text()
        assert f"#{first_session}" in str(again.query_one(StatusLine).content)

        # /model switches the backend and the status line follows.
        await send(again, pilot, "/model extractive")
        status = str(again.query_one(StatusLine).content)
        assert "LLM extractive" in status and "session" in status
        assert "LLM backend set to extractive" in " ".join(lines_of(again, NoticeLine))


async def test_bad_input_is_handled(home):
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        before = len(app.query(UserMessage))
        await send(app, pilot, "   ")
        assert len(app.query(UserMessage)) == before  # empty input ignored

        await send(app, pilot, "/helpp")
        assert any("unknown command /helpp" in e and "/help" in e for e in lines_of(app, ErrorLine))

        await send(app, pilot, "/boom")
        assert any("the model exploded" in e for e in lines_of(app, ErrorLine))

        huge = "x" * 1_000_000
        await send(app, pilot, huge)
        shown = user_messages(app)[-1]
        assert len(shown) < MAX_DISPLAY_CHARS + 200 and "more characters not shown" in shown
        assert any("limit is 200,000" in e for e in lines_of(app, ErrorLine))
        # Still answering afterwards.
        await send(app, pilot, "/explain attention")
        assert "You asked: attention" in replies(app)[-1].text
        messages = app.context.sessions.messages(app.context.session_id)
        assert all(len(m.content) < 10_000 for m in messages)


async def test_history_suggestions_and_images(home):
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        prompt = app.query_one(PromptInput)
        await pilot.press(*"/dr")
        await pilot.pause()
        assert prompt._suggestion == "/draw"
        assert "/draw" in str(app.query_one("#hints", Static).content)
        await pilot.press("right", "enter")
        await wait_idle(app, pilot)
        block = app.query_one(ImageBlock)
        assert "a grey square" in str(block.query_one(".caption", Static).content)
        assert block.path.endswith("digit.png")
        assert not [n for n in lines_of(app, NoticeLine) if "image" in n]  # drawn, not a fallback note
        assert "done drawing" in replies(app)[-1].text

        await send(app, pilot, "/explain one")
        prompt.focus()
        await pilot.press("up")
        assert prompt.value == "/explain one"
        await pilot.press("up")
        assert prompt.value == "/draw"
        await pilot.press("down", "down")
        assert prompt.value == ""

        # A multi-line paste keeps its lines; Ctrl+J adds one; Enter sends them all.
        prompt.post_message(events.Paste("first line\n\nsecond line"))
        await pilot.pause()
        assert prompt.value == "first line\n\nsecond line"
        # A paste over the router's limit is refused at once, not inserted.
        prompt.post_message(events.Paste("y" * 1_000_000))
        await pilot.pause()
        assert prompt.value == "first line\n\nsecond line"
        assert any("limit is 200,000" in str(n.message) for n in app._notifications)
        await pilot.press("ctrl+j", *"third")
        await pilot.press("enter")
        await wait_idle(app, pilot)
        assert user_messages(app)[-1] == "first line\n\nsecond line\nthird"
        assert app.context.sessions.messages(app.context.session_id)[-2].content == "first line\n\nsecond line\nthird"


def test_event_batches_join_text_and_keep_latest_progress(home):
    app = make_app(home)
    app._queue.extend([Text("a"), Text("b"), Progress("x", 1, 9), Progress("y", 1, 9), Progress("x", 2, 9),
                       Text("c"), Sources([SOURCE]), Text("d"), Text("e"), Progress("y", 5, 9)])
    assert app._take_batch() == [Text("ab"), Progress("y", 1, 9), Progress("x", 2, 9), Text("c"),
                                 Sources([SOURCE]), Text("de"), Progress("y", 5, 9)]
    assert app._take_batch() == []


async def test_ctrl_c_twice_quits_and_saves(home):
    app = make_app(home)
    async with app.run_test() as pilot:
        await send(app, pilot, "/explain quitting")
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.is_running
        assert any("Ctrl+C again" in str(n.message) for n in app._notifications)
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 0
    from assistant.sessions import SessionStore

    store = SessionStore(home / "sessions.sqlite3")
    roles = [m.role for m in store.messages(store.last_session())]
    assert roles == ["user", "assistant"]


async def test_unreadable_session_database_is_moved_aside(home):
    (home / "sessions.sqlite3").write_bytes(b"this is not a database" * 100)
    app = make_app(home)
    async with app.run_test() as pilot:
        for _ in range(100):  # drawn just after the first frame
            await pilot.pause(0.05)
            if any("could not be read" in n for n in lines_of(app, NoticeLine)):
                break
        assert any("could not be read" in n for n in lines_of(app, NoticeLine))
        await send(app, pilot, "/explain recovery")
        assert "You asked: recovery" in replies(app)[-1].text
    kept = list(home.glob("sessions.sqlite3.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not a database")


async def test_warm_up_builds_the_router_after_the_first_frame(home):
    """With warm_up the intent router is asked once in the background, never blocking the prompt."""
    asked = threading.Event()

    class Router:
        def predict(self, text):
            asked.set()
            return "ask", 1.0, {}

    class RouterPlugin(Plugin):
        name = "router-test"

        def run(self, request, context):
            yield from ()

        def services(self):
            return {"intent_classifier": lambda context: Router()}

    registry = Registry()
    registry.register(CorePlugin)
    registry.register(TutorPlugin)
    registry.register(RouterPlugin)
    config = Config(resolve_home(home))
    config.set("llm.backend", "extractive")
    app = ChatApp(Context(config, registry), warm_up=True)
    async with app.run_test() as pilot:
        assert not asked.is_set()  # nothing heavy before the first frame
        for _ in range(50):
            await pilot.pause(0.1)
            if asked.is_set():
                break
        assert asked.is_set()
