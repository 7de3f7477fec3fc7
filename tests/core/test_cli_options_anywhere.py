"""Options may come before or after a subcommand's text."""

from __future__ import annotations

from assistant.cli import build_parser
from assistant.registry import Registry


def test_options_before_and_after_the_text_parse_the_same():
    parser = build_parser(Registry.load())
    before = parser.parse_args(["prompt", "json", "--fields", "name:string,age:integer", "Ada, 36, lives in Turin"])
    after = parser.parse_args(["prompt", "json", "Ada, 36, lives in Turin", "--fields", "name:string,age:integer"])
    assert vars(before) == vars(after)
    assert before.args == ["json", "Ada, 36, lives in Turin"] and before.fields == "name:string,age:integer"
    # Top-level options, and subcommands with their own subcommands, still parse as before.
    nested = parser.parse_args(["--home", "/tmp/x", "kb", "list", "--json"])
    assert nested.home == "/tmp/x" and nested.json


def test_flags_before_the_text_run_end_to_end(run_cli):
    code, out, err = run_cli("--model", "extractive", "prompt", "--list")
    assert code == 0, err
    code, _, err = run_cli("prompt", "json", "--fields", "name:string", "Ada", "--schema")
    assert code == 2 and "unrecognized arguments: Ada" not in err  # a usage error about --schema, not the text
