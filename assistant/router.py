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
from assistant.plugin import Context, Plugin, Request

MAX_INPUT_CHARS = 200_000
# Intents that act (draw, train, index) rather than answer: a follow-up question does not repeat them.
ACTION_INTENTS = {"image_sample", "image_train", "ingest", "classify"}
# A follow-up leaves the last plugin only for another plugin's intent at this confidence or more
# (the classifier reads "and the second one?" as `reason` at 0.61, "how do I fix it?" as `help` at 0.97).
FOLLOW_UP_OVERRIDE = 0.8
LAST_ROUTE = "last_route"  # context.state key: (plugin, command, intent) of the last answer


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
    follow = follow_up(text, context, history, intent, confidence)
    if follow is not None:
        follow.notices[:0] = notices
        return follow
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


def follow_up(text: str, context: Context, history: list[dict[str, str]], intent: str,
              confidence: float) -> Route | None:
    """A message continuing the previous topic stays with the plugin that answered last.

    "How do I fix it?" after an answer about mode collapse goes back to that
    answer's plugin (with the history), not to whatever the words alone
    suggest (`help`). A message that clearly asks for another plugin's work,
    or one that does not refer back, is routed as usual. After an action
    (sampling, training) a follow-up question is answered as a question.
    """
    from assistant.followup import refers_back

    last = context.state.get(LAST_ROUTE)
    registry = context.registry
    if not last or not history or registry is None or not refers_back(text):
        return None
    name, command, last_intent = last
    plugin = registry.plugins.get(name)
    if plugin is None:
        return None
    wanted = registry.plugin_for_intent(intent)
    if wanted is not None and wanted[0] is plugin and intent not in ("ask", "help"):
        return None  # the same plugin, asked for something specific ("draw them again"): route as usual
    if (intent not in ("ask", "help") and intent not in (last_intent, None) and wanted is not None
            and confidence >= FOLLOW_UP_OVERRIDE):
        return None  # clearly another plugin's work ("now draw it as a picture")
    if last_intent in ACTION_INTENTS:
        found = registry.plugin_for_intent("ask")
        if found is None:
            return None
        plugin, command, last_intent = found[0], found[1], "ask"
    return Route(plugin, Request(text=text, command=command, intent=last_intent, history=history),
                 [Notice("info", f"following up on the previous answer ({plugin.name} /{command})")])


def remember_route(route: Route, context: Context) -> None:
    """Note which plugin answers, for the next follow-up (session commands do not count)."""
    if route.plugin is None or route.error is not None or route.plugin.name in ("core", "chat"):
        return
    intent = route.request.intent
    if intent is None:  # a /command: the intent it serves, if any
        intent = next((i for i, c in route.plugin.intents.items() if c == route.request.command), None)
    context.state[LAST_ROUTE] = (route.plugin.name, route.request.command, intent)


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
    remember_route(route, context)
    yield from run_plugin(route.plugin, route.request, context)
