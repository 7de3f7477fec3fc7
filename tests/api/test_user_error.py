"""UserError(message, hint) reaches every front end as one line."""

from __future__ import annotations

from typing import Any, Iterator

from assistant import Command, Context, Error, Plugin, Request, Text, UserError, add_command
from assistant.builtin import CorePlugin
from assistant.config import Config, resolve_home
from assistant.events import Collected
from assistant.registry import Registry
from assistant.router import dispatch


class PickyPlugin(Plugin):
    name = "picky"
    description = "refuses bad input"
    commands = (Command("pick", "fail like a user mistake"), Command("crash", "fail like a bug"))

    def run(self, request: Request, context: Context) -> Iterator[Any]:
        yield Text("checking\n")
        if request.command == "pick":
            raise UserError("no such fruit 'appel'\nsecond line never shown", "try: apple, pear")
        raise RuntimeError("index out of range")

    def add_cli(self, subparsers: Any) -> None:
        def handler(args, context):
            raise UserError("the file notes.xyz has no known type", "use .md, .txt, .html or .pdf")
            yield  # a generator, like every handler

        add_command(subparsers, "pick", "fail like a user mistake", handler)


def registry() -> Registry:
    reg = Registry()
    reg.register(CorePlugin)
    reg.register(PickyPlugin)
    return reg


def test_router_turns_user_error_into_message_and_hint(home):
    context = Context(Config(resolve_home(home)), registry())
    got = Collected(dispatch("/pick", context))
    assert got.text == "checking\n"
    assert got.errors == [Error("no such fruit 'appel'", "try: apple, pear")]
    bug = Collected(dispatch("/crash", context)).errors
    assert bug == [Error("picky: index out of range")]  # a bug names its plugin


def test_existing_plugin_errors_are_user_errors():
    from course_assistant_plugins.classifier.data import DataError
    from course_assistant_plugins.images.data import DataError as ImageDataError
    from course_assistant_plugins.rag.kb import KbError

    for cls in (DataError, ImageDataError, KbError):
        assert issubclass(cls, UserError)
    assert KbError("bad name", "use letters").line() == "bad name (use letters)"


def test_cli_prints_one_line_and_exits_1(home, capsys, monkeypatch):
    import assistant.cli as cli

    monkeypatch.setattr("assistant.registry.Registry.load", classmethod(lambda cls, extra=(): registry()))
    code = cli.main(["--home", str(home), "pick"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err == "error: the file notes.xyz has no known type (use .md, .txt, .html or .pdf)\n"
    assert out == ""


async def test_tui_shows_an_error_line(home):
    from assistant.tui.app import ChatApp
    from assistant.tui.widgets import ErrorLine, PromptInput

    app = ChatApp(Context(Config(resolve_home(home)), registry()))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.query_one(PromptInput).value = "/pick"
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.05)
            if not app.busy and list(app.query(ErrorLine)):
                break
        lines = [str(w.content) for w in app.query(ErrorLine)]
        assert len(lines) == 1 and "no such fruit 'appel'" in lines[0] and "try: apple, pear" in lines[0]
        assert "second line" not in lines[0]


def test_collected_keeps_the_generators_result():
    from assistant import Progress

    def step():
        yield Progress("counting", 1, 2)
        yield Progress("counting", 2, 2)
        return {"count": 2}

    def command():
        result = yield from step()
        yield Text(f"counted {result['count']}")
        return result

    got = Collected(command())
    assert got.result == {"count": 2} and got.text == "counted 2" and len(got.of(Progress)) == 2
