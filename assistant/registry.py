"""Plugin discovery through the `assistant.plugins` entry-point group.

A plugin that fails to import or to instantiate is recorded in `failures`
and skipped; the application keeps running.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

from assistant.plugin import Command, Plugin

ENTRY_POINT_GROUP = "assistant.plugins"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginFailure:
    name: str
    target: str
    error: str


class Registry:
    def __init__(self) -> None:
        self.plugins: dict[str, Plugin] = {}
        self.failures: list[PluginFailure] = []
        self.origins: dict[str, str] = {}

    # -- loading -----------------------------------------------------------
    @classmethod
    def load(cls, extra: Iterable[type[Plugin] | Plugin] = ()) -> "Registry":
        registry = cls()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                plugin_cls = ep.load()
                registry.register(plugin_cls, origin=ep.value)
            except Exception as exc:  # a broken plugin must not take the app down
                log.debug("plugin %s failed to load: %s", ep.name, exc)
                registry.failures.append(PluginFailure(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
        for plugin in extra:
            registry.register(plugin, origin="inline")
        return registry

    def register(self, plugin: type[Plugin] | Plugin, origin: str = "inline") -> Plugin:
        instance = plugin() if isinstance(plugin, type) else plugin
        name = getattr(instance, "name", "")
        if not name or not callable(getattr(instance, "run", None)):
            raise TypeError(f"{plugin!r} is not a plugin: it needs a name and run()")
        self.plugins[name] = instance
        self.origins[name] = origin
        return instance

    # -- lookups -------------------------------------------------------------
    def commands(self) -> list[tuple[Plugin, Command]]:
        return [(p, c) for p in self.plugins.values() for c in p.commands]

    def command_names(self) -> list[str]:
        return sorted(c.name for _, c in self.commands())

    def plugin_for_command(self, name: str) -> tuple[Plugin, Command] | None:
        for plugin, command in self.commands():
            if command.name == name:
                return plugin, command
        return None

    def plugin_for_intent(self, intent: str) -> tuple[Plugin, str] | None:
        for plugin in self.plugins.values():
            if intent in plugin.intents:
                return plugin, plugin.intents[intent]
        return None

    def intent_examples(self) -> list[tuple[str, str]]:
        """(utterance, intent) for every intent an installed plugin serves: the router's training data.

        Sorted by intent, each plugin's examples in its own order, so the same plugins give the same
        data. An intent a plugin gives examples for but does not serve is skipped; a plugin whose
        examples cannot be read is recorded in `failures` and contributes none.
        """
        rows: dict[str, list[str]] = {}
        for name, plugin in sorted(self.plugins.items()):
            try:
                examples = plugin.intent_examples()
            except Exception as exc:  # noqa: BLE001 - a faulty plugin loses its intents, nothing more
                self.failures.append(PluginFailure(name, self.origins.get(name, ""), f"intent examples: {exc}"))
                continue
            for intent, texts in examples.items():
                if intent in plugin.intents:
                    rows.setdefault(intent, []).extend(t for t in texts if t.strip())
        return [(text, intent) for intent in sorted(rows) for text in dict.fromkeys(rows[intent])]

    def suggest(self, name: str, n: int = 3) -> list[str]:
        names = self.command_names()
        close = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
        if not close:
            close = [c for c in names if c.startswith(name[:2])][:n] if name else []
        return close

    def service_factory(self, name: str) -> Callable[[Any], Any] | None:
        for plugin in self.plugins.values():
            try:
                factory = plugin.services().get(name)
            except Exception:  # noqa: BLE001 - a faulty plugin offers nothing
                continue
            if factory is not None:
                return factory
        return None

    def describe(self) -> list[dict[str, Any]]:
        """JSON-ready listing for `assistant plugins --json`."""
        rows: list[dict[str, Any]] = []
        for name, plugin in sorted(self.plugins.items()):
            rows.append(
                {
                    "name": name,
                    "description": plugin.description,
                    "origin": self.origins.get(name, ""),
                    "commands": [{"name": c.name, "usage": c.usage, "help": c.help} for c in plugin.commands],
                    "intents": sorted(plugin.intents),
                    "status": "ok",
                }
            )
        for failure in self.failures:
            rows.append({"name": failure.name, "origin": failure.target, "status": "failed", "error": failure.error})
        return rows


def installed_intent_examples() -> list[tuple[str, str]]:
    """(utterance, intent) of every installed plugin, for code that has no Context (benchmarks, tests)."""
    return Registry.load().intent_examples()
