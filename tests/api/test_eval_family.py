"""`assistant eval WHAT ...` is one family each plugin extends; the old spellings still parse."""

from __future__ import annotations

from typing import Any

from assistant import Plugin, Text, add_eval_command
from assistant.cli import build_parser
from assistant.registry import Registry


class GradesPlugin(Plugin):
    name = "grades"

    def run(self, request, context):
        yield from ()

    def add_cli(self, subparsers: Any) -> None:
        def handler(args, context):
            yield Text(f"graded {args.file}")

        p = add_eval_command(subparsers, "grades", "score the grader", handler)
        p.add_argument("file")


def test_every_plugin_adds_its_eval_command_to_one_family():
    parser = build_parser(Registry.load(extra=[GradesPlugin]))
    for argv, what in ((["eval", "retrieval", "qa.jsonl"], "retrieval"), (["eval", "prompts", "cot", "c.jsonl"], "prompts"),
                       (["eval", "images", "gan", "--n", "50"], "images"), (["eval", "grades", "f.txt"], "grades")):
        args = parser.parse_args(argv)
        assert args.eval_command == what and callable(args.handler)
    assert parser.parse_args(["eval", "grades", "x", "--json"]).json


def test_old_spellings_are_aliases_with_the_same_options():
    parser = build_parser(Registry.load())
    new = parser.parse_args(["eval", "images", "diffusion", "--n", "40", "--sampler", "ddim", "--steps", "5"])
    old = parser.parse_args(["image", "eval", "diffusion", "--n", "40", "--sampler", "ddim", "--steps", "5"])
    keys = ("model", "n", "sampler", "steps", "guidance", "eta", "json")
    assert [getattr(new, k) for k in keys] == [getattr(old, k) for k in keys]
    assert new.handler.__qualname__ == old.handler.__qualname__
    old_prompt = parser.parse_args(["prompt", "eval", "cot", "cases.jsonl"])
    assert old_prompt.args == ["eval", "cot", "cases.jsonl"]


def test_eval_without_what_is_a_usage_error(run_cli):
    code, _, err = run_cli("eval")
    assert code == 2 and "WHAT" in err
