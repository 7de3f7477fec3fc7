"""The plugin contract (docs/plugins.md is the reference).

A plugin is a class registered under the entry-point group `assistant.plugins`.
It declares its name, its slash commands, the intents it serves and
`run(request, context) -> Iterator[Event]`. Importing a plugin module must stay
light: import torch, tensorflow, transformers or chromadb inside functions.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

from assistant.cancel import CancelToken
from assistant.config import Config, Setting, settings_of
from assistant.events import Event

if TYPE_CHECKING:  # pragma: no cover
    from assistant.registry import Registry
    from assistant.sessions import SessionStore


@dataclass(frozen=True)
class Command:
    """A slash command: `/name usage` with one line of help."""

    name: str
    help: str
    usage: str = ""  # e.g. "QUESTION [--k K]"

    def signature(self) -> str:
        return f"/{self.name} {self.usage}".rstrip()


@dataclass
class Request:
    """What the user asked for.

    `command` is the slash command (without "/") or the command an intent maps
    to; `text` is everything after the command (or the whole free text);
    `options` carries parsed CLI flags or slots pulled out by the router.
    """

    text: str
    command: str | None = None
    intent: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, str]] = field(default_factory=list)  # [{"role","content"}]


class Context:
    """What a plugin may use: config, state dir, LLM, retriever, cancellation."""

    def __init__(
        self,
        config: Config,
        registry: "Registry | None" = None,
        cancel: CancelToken | None = None,
        sessions: "SessionStore | None" = None,
    ):
        self.config = config
        self.registry = registry
        if registry is not None:  # the installed plugins' keys become known (defaults, types)
            config.declare(settings_of(registry.plugins.values()))
        self.cancel = cancel or CancelToken()
        self.sessions = sessions
        self.session_id: int | None = None
        # Shared scratch space between plugins and front ends, e.g. "last_prompt".
        self.state: dict[str, Any] = {}
        self._services: dict[str, Any] = {}

    @property
    def home(self) -> Path:
        return self.config.home

    def service(self, name: str) -> Any:
        """A lazily built shared object offered by some plugin's `services()`."""
        if name not in self._services:
            factory = self.registry.service_factory(name) if self.registry else None
            if factory is None:
                raise LookupError(f"no plugin provides the service {name!r}")
            self._services[name] = factory(self)
        return self._services[name]

    def has_service(self, name: str) -> bool:
        return name in self._services or bool(self.registry and self.registry.service_factory(name))

    def loaded_service(self, name: str) -> Any:
        """The service if it is already built, else None (never builds it)."""
        return self._services.get(name)

    def replace_service(self, name: str, value: Any) -> None:
        """Use `value` as the service `name` from now on (e.g. the fallback LLM after a failed load)."""
        self._services[name] = value

    def drop_service(self, name: str) -> None:
        """Forget a cached service so the next use rebuilds it (e.g. after /model)."""
        self._services.pop(name, None)

    @property
    def llm(self):
        """The active chat model (LangChain BaseChatModel), built on first use."""
        if "llm" not in self._services:
            from assistant.llm import get_llm

            self._services["llm"] = get_llm(self)
        return self._services["llm"]

    @property
    def retriever(self):
        return self.service("retriever")


CliHandler = Callable[[argparse.Namespace, Context], Iterator[Event]]


class Plugin:
    """Base class for plugins. Override the class attributes and `run`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    commands: ClassVar[tuple[Command, ...]] = ()
    # intent -> the command of this plugin that serves it
    intents: ClassVar[dict[str, str]] = {}
    # config keys this plugin reads, dotted ("flashcards.cards"), with default and type
    settings: ClassVar[dict[str, Setting]] = {}

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        raise NotImplementedError

    def intent_examples(self) -> dict[str, list[str]]:
        """Example utterances for each intent in `intents`: the intent router trains on those of every
        installed plugin. `assistant.load_intent_examples(__name__)` reads them from an intents.jsonl."""
        return {}

    def add_cli(self, subparsers: argparse._SubParsersAction) -> None:
        """Add `assistant SUBCOMMAND` parsers; each sets `handler=CliHandler`."""

    def services(self) -> dict[str, Callable[[Context], Any]]:
        """Shared objects this plugin offers to others, built lazily."""
        return {}

    def status(self, context: Context) -> list[tuple[str, str]]:
        """Short (label, value) pairs the chat's status line shows, e.g. [("KB", "default")].
        Called on every refresh: read config or state only, load nothing."""
        return []

    def doctor(self, context: Context) -> list[dict[str, Any]]:
        """Checks for `assistant doctor`: [{"name", "ok", "detail"}]; must be fast."""
        return []
