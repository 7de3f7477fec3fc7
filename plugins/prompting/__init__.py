"""Prompt-technique plugin: zero-shot, few-shot, chain of thought, self-consistency,
generated knowledge, persona, delimiters and JSON output, all driven by the
templates in prompts/*.toml (and the user's own in <state dir>/prompts/).

Light to import: models load inside the runners.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator

from assistant import (
    Bounded,
    Command,
    Context,
    Data,
    Error,
    Event,
    Plugin,
    Request,
    TemplateError,
    Text,
    add_command,
    load_templates,
    parse_flags,
)

# Slash commands that run a template of the same name.
TECHNIQUE_COMMANDS = (
    Command("zero-shot", "ask directly, no examples", "TEXT"),
    Command("few-shot", "answer like the most similar examples in the template's pool", "TEXT [--k K]"),
    Command("cot", "chain of thought: reason step by step, then extract the final answer", "PROBLEM"),
    Command("self-consistency", "several sampled reasoning paths, majority vote", "PROBLEM [--paths N] [--temperature T]"),
    Command("knowledge", "generated knowledge: write facts first, then answer with them", "QUESTION"),
    Command("persona", "answer in a role", "TEXT [--persona \"a strict code reviewer\"]"),
    Command("delimit", "process untrusted text fenced by unique delimiters", "TEXT [--task \"Summarise it.\"]"),
    Command("json", "extract JSON valid against a schema", "TEXT (--fields name:type,... | --schema FILE)"),
)
# Every number a user can give, with its allowed range (CLI flags and slash options alike).
LIMITS = {"paths": Bounded(int, 1, 20), "k": Bounded(int, 0, 20), "temperature": Bounded(float, 0, 2),
          "max_tokens": Bounded(int, 1, 4096), "limit": Bounded(int, 1, 100_000)}
FLAGS: dict[str, Any] = {"persona": str, "schema": str, "fields": str, "paths": LIMITS["paths"], "k": LIMITS["k"],
                         "temperature": LIMITS["temperature"], "task": str, "max_tokens": LIMITS["max_tokens"], "var": str}


def parse_vars(items: list[str] | None) -> dict[str, str]:
    """['lang=French', ...] -> {'lang': 'French'}; ValueError on a malformed item."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"--var expects NAME=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def technique_options(persona=None, schema=None, fields=None, paths=None, k=None, temperature=None, task=None,
                      max_tokens=None, var=None) -> dict[str, Any]:
    vars_ = parse_vars(var if isinstance(var, list) else [var] if var else [])
    if persona:
        vars_["persona"] = persona
    return {"schema": schema, "fields": fields, "paths": paths, "k": k, "temperature": temperature, "task": task,
            "max_tokens": max_tokens, "vars": vars_}


def templates_for(context: Context):
    return load_templates(context.config.user_prompts_dir)


def unknown_template(name: str, templates: dict[str, Any]) -> Error:
    """The error for a template name that does not exist, suggesting the closest ones."""
    import difflib

    close = difflib.get_close_matches(name, list(templates), n=3, cutoff=0.4)
    return Error(f"unknown technique '{name}'",
                 ("did you mean " + ", ".join(close) + "?") if close else "known: " + ", ".join(sorted(templates)))


def run_template(context: Context, name: str, text: str, options: dict[str, Any], *, stream: bool = True,
                 as_data: bool | None = None) -> Iterator[Event]:
    """Run template NAME over TEXT; ends with the result as Data when asked (or when the
    result is structured: votes, JSON)."""
    from course_assistant_plugins.prompting.techniques import Run, execute, result_event

    templates = templates_for(context)
    if name not in templates:
        yield unknown_template(name, templates)
        return
    run = Run(context, templates[name], text, options, stream=stream)
    failed = False
    for event in execute(run):
        failed = failed or isinstance(event, Error)
        yield event
    if failed or not run.result:
        return
    if as_data is None:
        as_data = run.template.technique in ("self-consistency", "json")
    if run.template.technique == "json" and stream:
        import json

        yield Text("```json\n" + json.dumps(run.result["result"], indent=2, ensure_ascii=False) + "\n```\n")
    if as_data:
        yield result_event(run)


def list_rows(context: Context) -> list[dict[str, str]]:
    return [{"name": t.name, "technique": t.technique, "description": t.description, "source": t.source,
             "file": str(t.path)} for t in sorted(templates_for(context).values(), key=lambda t: t.name)]


def list_markdown(rows: list[dict[str, str]]) -> str:
    lines = ["| template | technique | description | source |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['technique']} | {r['description']} | {r['source']}: {r['file']} |" for r in rows]
    return "\n".join(lines) + "\n\nRun one with `/prompt NAME TEXT`; add your own in the state directory's prompts/.\n"


class PromptingPlugin(Plugin):
    name = "prompting"
    description = "prompt techniques driven by templates in prompts/*.toml"
    commands = TECHNIQUE_COMMANDS + (
        Command("prompt", "run any template by name", "NAME TEXT [options]"),
        Command("prompts", "list the prompt templates (built-in and yours)"),
    )
    intents = {"reason": "cot", "extract_json": "json"}

    def intent_examples(self) -> dict[str, list[str]]:
        from assistant import load_intent_examples

        return load_intent_examples(__name__)

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        command = request.command or "cot"
        try:
            if command == "prompts":
                yield Text(list_markdown(list_rows(context)))
                return
            text, flags = parse_flags(request.text, FLAGS)
            options = technique_options(**flags)
            for key, value in request.options.items():  # slots from the router
                options.setdefault(key, value)
        except (ValueError, TemplateError) as exc:
            yield Error(str(exc))
            return
        if command == "prompt":
            name, _, text = text.partition(" ")
            if not name:
                yield Error("/prompt needs a template name", "type /prompts to list them")
                return
        else:
            name = command
        try:
            yield from run_template(context, name, text.strip(), options)
        except TemplateError as exc:
            yield Error(str(exc))

    # -- command line ----------------------------------------------------------
    def add_cli(self, subparsers: Any) -> None:
        parser = add_command(
            subparsers, "prompt", "run a prompt technique: assistant prompt NAME \"TEXT\"; --list; eval NAME CASES",
            _cli_prompt,
            description="Run a prompt template (technique) over TEXT ('-' reads stdin). "
                        "`assistant prompt --list` lists templates; `assistant prompt eval NAME cases.jsonl` scores one.")
        parser.add_argument("args", nargs="*", metavar="NAME TEXT", help="template name and text, or: eval NAME CASES.jsonl")
        parser.add_argument("--list", action="store_true", help="list templates (name, description, source file)")
        parser.add_argument("--persona", help="role for the persona template, e.g. 'a strict code reviewer'")
        parser.add_argument("--schema", metavar="FILE", help="JSON Schema file for the json template")
        parser.add_argument("--fields", metavar="SPEC", help="fields for the json template: name:type,... "
                                                              "(string, integer, number, boolean, list)")
        parser.add_argument("--paths", type=LIMITS["paths"], help="self-consistency: number of reasoning paths")
        parser.add_argument("--k", type=LIMITS["k"], help="few-shot: number of examples to show")
        parser.add_argument("--temperature", type=LIMITS["temperature"], help="sampling temperature")
        parser.add_argument("--task", help="delimit: what to do with the fenced text")
        parser.add_argument("--max-tokens", type=LIMITS["max_tokens"], dest="max_tokens", help="longest reply per model call")
        parser.add_argument("--var", action="append", metavar="NAME=VALUE", help="set a template variable (repeatable)")
        parser.add_argument("--limit", type=LIMITS["limit"], help="eval: only the first N cases")

        from assistant import add_eval_command

        evaluate = add_eval_command(subparsers, "prompts", "score a prompt template on a cases file (JSON Lines)",
                                    _cli_eval_prompts,
                                    description="Score template NAME on CASES.jsonl. Same as the older spelling "
                                                "`assistant prompt eval NAME CASES.jsonl`.")
        evaluate.add_argument("name", metavar="NAME", help="template name")
        evaluate.add_argument("cases", metavar="CASES.jsonl", help="cases file")
        evaluate.add_argument("--limit", type=int, help="only the first N cases")


def _cli_eval_prompts(args: Any, context: Context) -> Iterator[Event]:
    from course_assistant_plugins.prompting.evaluate import evaluate

    yield from evaluate(context, args.name, args.cases, {}, limit=args.limit, as_json=args.json)


def _cli_prompt(args: Any, context: Context) -> Iterator[Event]:
    if args.list:
        rows = list_rows(context)
        yield Data(rows) if args.json else Text(
            "\n".join(f"{r['name']:<18} {r['description']}\n{'':<18} ({r['source']}: {r['file']})" for r in rows) + "\n")
        return
    try:
        options = technique_options(args.persona, args.schema, args.fields, args.paths, args.k, args.temperature,
                                    args.task, args.max_tokens, args.var)
    except ValueError as exc:
        yield Error(str(exc))
        return
    positional = list(args.args)
    if positional[:1] == ["eval"]:
        if len(positional) != 3:
            yield Error("usage: assistant prompt eval NAME CASES.jsonl [--json] [--limit N]")
            return
        from course_assistant_plugins.prompting.evaluate import evaluate

        yield from evaluate(context, positional[1], positional[2], options, limit=args.limit, as_json=args.json)
        return
    if len(positional) < 2:
        yield Error("usage: assistant prompt NAME \"TEXT\" (or --list, or eval NAME CASES.jsonl)")
        return
    text = " ".join(positional[1:])
    if text == "-":
        text = sys.stdin.read()
    yield from run_template(context, positional[0], text, options, stream=not args.json, as_data=bool(args.json))
