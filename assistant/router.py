"""Route a line of user input to a plugin and run it as an event stream.

`/command args` goes to the plugin that owns the command. Free text goes to
the intent classifier (the `intent_classifier` service, when a plugin offers
one); below the confidence threshold it falls back to `ask` and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from assistant.cancel import Cancelled
from assistant.errors import UserError, first_line
from assistant.events import Error, Event, Notice
from assistant.options import parse_flags  # noqa: F401 - old home of parse_flags, kept for plugins
from assistant.plugin import Context, Plugin, Request

INTENTS = ("ask", "image_sample", "image_train", "reason", "extract_json", "classify", "ingest", "help")
MAX_INPUT_CHARS = 200_000


@dataclass
class Route:
    plugin: Plugin | None
    request: Request
    notices: list[Notice] = field(default_factory=list)
    error: Error | None = None


def split_command(line: str) -> tuple[str, str]:
    """"/ask what is a VAE" -> ("ask", "what is a VAE")."""
    body = line.strip()[1:]
    name, _, rest = body.partition(" ")
    return name.strip().lower(), rest.strip()


def classify_intent(context: Context, text: str) -> tuple[str, float, dict[str, Any]]:
    """(intent, confidence, slots); ("ask", 0.0, {}) when no classifier is available."""
    if not context.has_service("intent_classifier"):
        return "ask", 0.0, {}
    classifier = context.service("intent_classifier")
    return classifier.predict(text)


def resolve(line: str, context: Context, history: list[dict[str, str]] | None = None) -> Route:
    registry = context.registry
    assert registry is not None, "routing needs a registry"
    history = history or []
    text = line.strip()
    if len(text) > MAX_INPUT_CHARS:
        return Route(None, Request(text=""), error=Error(
            f"input is {len(text):,} characters; the limit is {MAX_INPUT_CHARS:,}",
            "save it to a file and use /ingest PATH instead"))
    if text.startswith("/"):
        name, rest = split_command(text)
        found = registry.plugin_for_command(name)
        if found is None:
            close = registry.suggest(name)
            hint = "did you mean " + ", ".join(f"/{c}" for c in close) + "?" if close else "type /help to list commands"
            return Route(None, Request(text=rest), error=Error(f"unknown command /{name}", hint))
        plugin, command = found
        return Route(plugin, Request(text=rest, command=command.name, history=history))

    notices: list[Notice] = []
    try:
        intent, confidence, slots = classify_intent(context, text)
        if context.has_service("intent_classifier"):  # e.g. "the LoRA model now routes", said once
            said = getattr(context.service("intent_classifier"), "take_notice", lambda: None)()
            if said:
                notices.append(Notice("info", said))
    except Exception as exc:  # noqa: BLE001 - routing must never crash the chat
        notices.append(Notice("warning", f"intent router unavailable ({exc}); answering as a question"))
        intent, confidence, slots = "ask", 0.0, {}
    threshold = float(context.config.get("router.threshold"))
    if intent != "ask" and confidence < threshold:
        notices.append(Notice("info", f"not sure what you meant ({intent} at {confidence:.0%}); answering as a question"))
        intent, slots = "ask", {}
    found = registry.plugin_for_intent(intent)
    if found is None and intent != "ask":
        notices.append(Notice("info", f"no plugin serves '{intent}'; answering as a question"))
        intent, slots = "ask", {}
        found = registry.plugin_for_intent("ask")
    if found is None:
        return Route(None, Request(text=text), notices, Error("no plugin can answer free text", "install the rag plugin or use a /command"))
    plugin, command = found
    return Route(plugin, Request(text=text, command=command, intent=intent, options=dict(slots), history=history), notices)


def run_plugin(plugin: Plugin, request: Request, context: Context) -> Iterator[Event]:
    """Run one plugin action; exceptions become Error events, never crashes."""
    try:
        for event in plugin.run(request, context):
            yield event
            if context.cancel.cancelled:
                raise Cancelled()
    except Cancelled:
        yield Notice("warning", "cancelled")
    except UserError as exc:  # the user can fix it: message and hint, no plugin name
        yield Error(first_line(exc), exc.hint)
    except Exception as exc:  # noqa: BLE001 - report and keep the app alive
        if context.state.get("debug"):
            raise
        yield Error(f"{plugin.name}: {first_line(exc)}")


def dispatch(line: str, context: Context, history: list[dict[str, str]] | None = None) -> Iterator[Event]:
    """Route and run one line of input: the single entry point for front ends."""
    if not line.strip():
        return
    route = resolve(line, context, history)
    yield from route.notices
    if route.error is not None:
        yield route.error
        return
    assert route.plugin is not None
    yield from run_plugin(route.plugin, route.request, context)
