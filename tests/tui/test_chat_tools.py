"""The chat's tools for a term of use: results for people, follow-ups, copy, retry, find, first run."""

from __future__ import annotations

import threading
from typing import Iterator

from assistant.builtin import CorePlugin
from assistant.config import Config, resolve_home
from assistant.events import Data, Event, Source, Sources, Text
from assistant.plugin import Command, Context, Plugin, Request
from assistant.present import describe_data, relevance
from assistant.registry import Registry
from assistant.tui.app import ChatApp
from assistant.tui.widgets import DataLine, FindScreen, NoticeLine, PromptInput, SourcesPanel, StatusLine, Welcome
from tests.tui.test_chat import lines_of, replies, send, user_messages

FUSED = [Source("knowledge/gan.md", "GANs > Mode collapse", 40, 52, 0.0328, "The generator keeps drawing one mode."),
         Source("knowledge/gan.md", "GANs > Training", 60, 70, 0.0161, "Balance the two networks.")]


class StudyPlugin(Plugin):
    """Answers with code and fused-rank sources, returns a result payload, and counts its runs."""

    name = "study"
    description = "test plugin"
    commands = (Command("answer", "answer with code", "QUESTION"), Command("sample", "return a payload"))
    intents = {"ask": "answer", "image_sample": "sample"}
    runs = 0

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        self.runs += 1
        if request.command == "answer":
            yield Text(f"Answer {self.runs} to: {request.text}\n\n```python\nprint('fix')\n```\n\n"
                       "and\n\n```sh\nmake run\n```\n")
            yield Sources(FUSED)
        else:
            yield Data({"action": "sample", "path": "/tmp/out/sevens.png", "n": 16, "shape": [16, 28, 28, 1],
                        "min": 0.0, "max": 1.0})


class HelpMisroutingClassifier:
    """What the real router does with "How do I fix it?": `help`, confidently (0.97 on the centroid)."""

    def predict(self, text: str):
        lowered = text.lower()
        if "fix it" in lowered or lowered.startswith("why"):
            return "help", 0.97, {}
        if "draw" in lowered:
            return "image_sample", 0.95, {}
        return "ask", 0.9, {}


class RouterPlugin(Plugin):
    name = "router-stub"
    description = "test intent classifier"

    def services(self):
        return {"intent_classifier": lambda context: HelpMisroutingClassifier()}


class IndexStub:
    """A retriever service that only answers the warm-up's question."""

    def is_indexed(self, kb=None) -> bool:
        return False


class RetrieverPlugin(Plugin):
    name = "retriever-stub"
    description = "test retriever"

    def services(self):
        return {"retriever": lambda context: IndexStub()}


class BrokenStatusPlugin(Plugin):
    name = "broken-status"
    description = "a status hook that fails"

    def status(self, context):
        raise RuntimeError("no status today")


def make_app(home, *plugins) -> ChatApp:
    registry = Registry()
    for plugin in (CorePlugin, StudyPlugin, RouterPlugin, *plugins):
        registry.register(plugin)
    return ChatApp(Context(Config(resolve_home(home)), registry))


def test_payloads_and_relevance_are_drawn_for_people():
    line = describe_data({"action": "sample", "path": "/a/b/sevens.png", "n": 16, "shape": [16, 28, 28, 1]})
    assert line.startswith("sampled") and "16×28×28×1" in line and "{" not in line and "action" not in line
    table = describe_data([{"name": "cot", "accuracy": 0.55}, {"name": "zero-shot", "accuracy": 0.35}])
    assert table.splitlines()[0] == "| name | accuracy |" and "| cot | 0.55 |" in table
    words = relevance([0.0328, 0.0161, 0.0])
    assert [w for w, _ in words] == ["best match", "loosely related", "loosely related"]
    assert words[0][1] == "█████" and words[1][1].count("█") == 2


async def test_data_is_a_line_not_json_and_debug_shows_the_raw_payload(home):
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(app, pilot, "/sample")
        shown = [w.source for w in app.query(DataLine)]
        assert len(shown) == 1 and "sampled" in shown[0] and '"action"' not in replies(app)[-1].text
        assert app.query_one(DataLine).source.startswith("sampled · images 16")
        await send(app, pilot, "/debug")
        await send(app, pilot, "/sample")
        assert '"action": "sample"' in app.query(DataLine).last().source
        # The panel says how relevant each passage is in words, not 0.03.
        await send(app, pilot, "what is mode collapse?")
        panel = str(app.query_one(SourcesPanel).query_one("#source-list").get_option_at_index(0).prompt)
        assert "best match" in panel and "0.03" not in panel


async def test_a_follow_up_stays_with_the_plugin_that_answered(home):
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(app, pilot, "What is mode collapse in a GAN?")
        await send(app, pilot, "How do I fix it?")
        assert "Answer 2 to: How do I fix it?" in replies(app)[-1].text  # not the /help list
        assert any("following up" in n for n in lines_of(app, NoticeLine))
        await send(app, pilot, "why?")
        assert "Answer 3 to: why?" in replies(app)[-1].text
        # A message that clearly asks for something else is routed as usual.
        await send(app, pilot, "draw 16 sevens")
        assert "sampled" in app.query(DataLine).last().source
        # and a follow-up after an action is answered as a question, not a second drawing.
        await send(app, pilot, "why?")
        assert "Answer" in replies(app)[-1].text
        await pilot.press("ctrl+q")
    # After a restart, the follow-up still goes back to the last answering plugin.
    again = make_app(home)
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.1)
        await send(again, pilot, "How do I fix it?")
        assert "to: How do I fix it?" in replies(again)[-1].text


async def test_copy_retry_and_find(home):
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(app, pilot, "what is mode collapse?")
        await send(app, pilot, "/copy")
        assert app.clipboard.startswith("Answer") and "print('fix')" in app.clipboard
        await send(app, pilot, "/copy code 2")
        assert app.clipboard == "make run"
        await send(app, pilot, "/copy 1")
        assert app.clipboard == "what is mode collapse?"
        await send(app, pilot, "/copy 9")
        assert any("no message 9" in str(e.content) for e in app.query(".error-line"))

        # /retry: a new version of the reply; the first one is kept, but not sent as history again.
        first = replies(app)[-1].text
        await send(app, pilot, "/retry")
        assert replies(app)[-1].text != first and "to: what is mode collapse?" in replies(app)[-1].text
        stored = app.context.sessions.messages(app.context.session_id)
        versions = [m for m in stored if m.role == "assistant"]
        assert len(versions) == 2 and versions[0].superseded and versions[1].meta["retry_of"] == versions[0].id
        assert [t["role"] for t in app.context.sessions.history(app.context.session_id)] == ["user", "assistant"]
        await send(app, pilot, "/retry --model nonsense")
        assert any("unknown backend" in str(e.content) for e in app.query(".error-line"))
        await send(app, pilot, "/retry --model extractive")
        assert app.context.config.get("llm.backend") == "local"  # for that one reply only

        # /find across conversations, then jump back to the message.
        old_session = app.context.session_id
        await send(app, pilot, "/new")
        await send(app, pilot, "/find collapse")
        assert isinstance(app.screen, FindScreen) and app.screen.found[0].session_id == old_session
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.context.session_id == old_session
        assert any(w.has_class("found") for w in app.query("#conversation > *"))
        await send(app, pilot, "/find zzzunknownword")
        assert not isinstance(app.screen, FindScreen)


async def test_ctrl_c_copies_a_selection_and_keeps_cancel_otherwise(home):
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        prompt = app.query_one(PromptInput)
        prompt.value = "copy these words"
        prompt.select_all()
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.clipboard == "copy these words" and app.is_running
        prompt.value = ""
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert any("press Ctrl+C again" in str(n.message) for n in app._notifications)


async def test_welcome_lists_things_to_try_and_the_models(home):
    app = make_app(home, RetrieverPlugin)  # the notes' line comes from the retriever service
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):  # drawn just after the first frame
            await pilot.pause(0.05)
            if app.query(Welcome):
                break
        text = str(app.query_one(Welcome).content)
        assert "draw 16 sevens" in text and "/cot" in text and "mode collapse" in text
        assert "course notes" in text and "not indexed yet" in text and "language model (local)" in text
        assert user_messages(app) == []


async def test_status_line_shows_what_plugins_publish(home):
    from course_assistant_plugins.rag import RagPlugin

    (home / "config.toml").write_text('[rag]\nkb = "exam"\n', encoding="utf-8")
    app = make_app(home, RagPlugin, BrokenStatusPlugin)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.1)
        status = str(app.query_one(StatusLine).content)
        assert "LLM local" in status and "KB exam" in status and "session" in status
    bare = make_app(home)  # no plugin publishes a knowledge base: the line names none
    async with bare.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.1)
        assert "KB" not in str(bare.query_one(StatusLine).content)


async def test_theme_keymap_and_command_palette_come_from_config(home):
    (home / "config.toml").write_text('[tui]\ntheme = "nord"\n[tui.keys]\nsources = "f3"\nnewline = "ctrl+n"\n'
                                      'bogus = "f9"\n', encoding="utf-8")
    app = make_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(app, pilot, "what is mode collapse?")
        assert app.theme == "nord"
        assert any("tui.keys.bogus" in p for p in app.context.config.problems())
        panel = app.query_one(SourcesPanel)
        assert panel.display
        await pilot.press("f3")
        assert not panel.display
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press("a", "ctrl+n", "b")
        assert prompt.value == "a\nb"
        prompt.value = ""
        # Ctrl+P: the palette lists the plugins' commands; choosing one fills the prompt.
        from textual.command import CommandPalette

        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"retry")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert prompt.value == "/retry "


def test_sessions_search_on_the_command_line(home, run_cli):
    from assistant.sessions import SessionStore

    store = SessionStore(home / "sessions.sqlite3")
    first = store.new_session()
    store.add_message(first, "user", "What is mode collapse in a GAN?")
    store.add_message(first, "assistant", "The generator keeps producing a few kinds of digits.")
    second = store.new_session()
    store.add_message(second, "user", "Why does DDIM need fewer steps?")
    store.close()
    code, out, err = run_cli("sessions", "search", "generator", "digits")
    assert code == 0, err
    assert f"#{first}" in out and "«generator»" in out and f"#{second}" not in out
    code, out, _ = run_cli("sessions", "search", "DDIM", "--json")
    import json

    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["session"] for r in rows] == [second] and rows[0]["role"] == "user"
    # FTS5 syntax in the words is taken as words, never as a query.
    code, out, err = run_cli("sessions", "search", 'mode" OR "x', "NEAR(")
    assert code == 0, err


def test_cli_prints_payloads_for_people_and_json_only_with_the_flag():
    import io
    import json

    from assistant.cliutil import CliRenderer

    payload = {"action": "sample", "path": "/tmp/out/sevens.png", "n": 16, "shape": [16, 28, 28, 1]}
    screen = io.StringIO()
    CliRenderer(out=screen, err=io.StringIO()).consume([Data(payload)])
    assert screen.getvalue().startswith("sampled · images 16 · shape 16×28×28×1") and "{" not in screen.getvalue()
    raw = io.StringIO()
    CliRenderer(as_json=True, out=raw, err=io.StringIO()).consume([Data(payload)])
    assert json.loads(raw.getvalue()) == payload


def test_warm_up_keeps_one_bar_per_step_and_says_how_long(home, monkeypatch):
    import time

    import assistant.llm
    import assistant.warmup as warmup

    class Load:  # the model load's public face: a stage line and done
        stage = "assembling Qwen (Q4_K_M GGUF) from 6 parts"
        done = False

    class Model:
        load = Load()

    context = Context(Config(resolve_home(home)), Registry())
    context._services["llm"] = Model()
    monkeypatch.setattr(warmup, "loads_in_process", lambda *_: True)
    monkeypatch.setattr(warmup, "llm_is_prepared", lambda _: False)
    monkeypatch.setattr(warmup, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(warmup, "CONVERT_SECONDS", {"local": 0.3})
    monkeypatch.setattr(warmup, "LOAD_SECONDS", {"local": 0.0})
    monkeypatch.setattr(assistant.llm, "preload", lambda _: None)
    reports = []
    warm = warmup.WarmUp(context, report=reports.append)
    step = threading.Thread(target=warm._llm)
    step.start()
    time.sleep(0.1)
    Model.load.stage = "converting Qwen for transformers (first use only, about a minute)"
    time.sleep(0.5)
    Model.load.done = True
    step.join(5)
    assert {r.label.split(" · ")[0] for r in reports} == {warmup.LLM_STEP}  # one bar, whatever the stage
    assert any(r.label.startswith("preparing the language model · assembling Qwen from 6 parts · about") for r in reports)
    assert not any("about a minute" in r.label for r in reports)  # said once, by the estimate
    assert any("taking longer than the usual" in r.label for r in reports)  # past the estimate: no "5 s left"
    assert reports[-1].done == reports[-1].total and warm.llm_ready.is_set() and warm.index_ready.is_set()


async def test_pictures_are_drawn_again_when_a_conversation_resumes(home):
    from tests.tui.test_chat import make_app as make_tutor_app
    from assistant.tui.widgets import ImageBlock

    app = make_tutor_app(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(app, pilot, "/draw")
        await pilot.press("ctrl+q")
    again = make_tutor_app(home)
    async with again.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if again.query(ImageBlock):
                break
        block = again.query_one(ImageBlock)
        assert block.path.endswith("digit.png") and block.query(".picture")  # the picture, not only its path
