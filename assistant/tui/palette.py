"""The command palette (Ctrl+P) lists every plugin command; choosing one puts it in the prompt."""

from __future__ import annotations

from functools import partial

from textual.command import Hit, Hits, Provider


class CommandsProvider(Provider):
    """`/name usage — help` for each command of each installed plugin."""

    def _commands(self) -> list[tuple[str, str, str]]:
        registry = getattr(self.app, "context", None) and self.app.context.registry
        if registry is None:
            return []
        return sorted((c.name, c.usage, c.help) for _, c in registry.commands())

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, usage, help_ in self._commands():
            shown = f"/{name} {usage}".rstrip()
            score = matcher.match(f"{shown} {help_}")
            if score > 0:
                yield Hit(score, matcher.highlight(shown), partial(self._fill, name), help=help_)

    async def discover(self) -> Hits:
        for name, usage, help_ in self._commands():
            yield Hit(1.0, f"/{name} {usage}".rstrip(), partial(self._fill, name), help=help_)

    def _fill(self, name: str) -> None:
        from assistant.tui.widgets import PromptInput

        prompt = self.app.query_one(PromptInput)
        prompt.value = f"/{name} "
        prompt.focus()
