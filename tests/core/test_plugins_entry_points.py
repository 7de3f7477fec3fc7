"""Plugins are found through the `assistant.plugins` entry-point group.

Nothing is pip-installed: a dist-info folder on sys.path declares the entry
point, exactly as an installed third-party package would.
"""

from __future__ import annotations

import json
import sys

import pytest

from assistant.events import Collected, Error
from assistant.registry import Registry
from assistant.router import dispatch

from ..distributions import fake_distribution

PLUGIN_SOURCE = '''
from assistant import Command, Data, Plugin, Text

class EchoPlugin(Plugin):
    name = "echo"
    description = "repeats what you say"
    commands = (Command("echo", "repeat the text back", "TEXT"),)
    intents = {"classify": "echo"}

    def run(self, request, context):
        yield Text("echo: ")
        yield Text(request.text.upper())
        yield Data({"echoed": request.text})

class ExplodingPlugin(Plugin):
    name = "exploding"
    description = "always fails"
    commands = (Command("boom", "raise an exception"),)

    def run(self, request, context):
        yield Text("about to fail")
        raise RuntimeError("kaboom inside the plugin")
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A fake installed distribution exposing two good plugins and one broken one."""
    site = fake_distribution(tmp_path, monkeypatch, "echo-plugin", {
        "echo_plugin": PLUGIN_SOURCE,
        "broken_plugin": "raise ImportError('needs a library that is missing')\n",
    }, """
        [assistant.plugins]
        echo = echo_plugin:EchoPlugin
        exploding = echo_plugin:ExplodingPlugin
        broken = broken_plugin:Plugin
    """)
    yield site
    for mod in ("echo_plugin", "broken_plugin"):
        sys.modules.pop(mod, None)


def test_entry_point_plugin_is_listed_and_broken_one_reported(third_party, run_cli):
    code, out, err = run_cli("plugins", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["echo"]["status"] == "ok"
    assert rows["echo"]["commands"][0]["name"] == "echo"
    assert rows["echo"]["origin"] == "echo_plugin:EchoPlugin"
    assert rows["broken"]["status"] == "failed"
    assert "missing" in rows["broken"]["error"]
    assert "broken" in err  # the user is told, once, on stderr
    assert rows["core"]["status"] == "ok"  # the rest keeps working


def test_entry_point_plugin_is_routed(third_party, context):
    context.registry = Registry.load()
    result = Collected(dispatch("/echo hello there", context))
    assert result.text == "echo: HELLO THERE"
    assert result.data == [{"echoed": "hello there"}]


def test_plugin_that_raises_becomes_an_error_event(third_party, context):
    context.registry = Registry.load()
    result = Collected(dispatch("/boom", context))
    assert result.text == "about to fail"
    assert len(result.errors) == 1
    assert "kaboom inside the plugin" in result.errors[0].message


def test_inline_registration_serves_an_intent(context):
    from assistant import Command, Plugin, Text

    class Shout(Plugin):
        name = "shout"
        commands = (Command("shout", "shout"),)
        intents = {"ask": "shout"}

        def run(self, request, context):
            yield Text(request.text.upper() + "!")

    registry = Registry()
    registry.register(Shout)
    context.registry = registry
    # No intent classifier is registered: free text falls back to `ask`.
    assert Collected(dispatch("what is a gan", context)).text == "WHAT IS A GAN!"


def test_unknown_command_suggests_close_ones(context):
    result = Collected(dispatch("/hepl", context))
    assert isinstance(result.events[-1], Error)
    assert "unknown command /hepl" in result.errors[0].message
    assert "/help" in result.errors[0].hint


def test_empty_input_yields_nothing(context):
    assert list(dispatch("   ", context)) == []


def test_huge_input_is_rejected_with_a_hint(context):
    result = Collected(dispatch("x" * 1_000_000, context))
    assert result.errors and "limit" in result.errors[0].message
