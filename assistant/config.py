"""The state directory and config.toml, checked against the declared settings.

`--home DIR`, else `$ASSISTANT_HOME`, else the platform's user data directory.
Inside: config.toml, index/, models/, sessions.sqlite3, outputs/.

Every key has exactly one declaration, a `Setting` with its default and type:
the core declares its own (`CORE_SETTINGS`: the LLM layer, routing, the chat),
each plugin declares its section in `Plugin.settings`, and the `Context` adds
the installed plugins' declarations to the config. Lookups go through three
layers: one-run overrides (`--model X`, `override()`), then config.toml, then
the declared default. Only `set()` writes config.toml, and it edits the file in
place (tomlkit) so the user's comments and layout survive.
"""

from __future__ import annotations

import builtins
import difflib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from assistant.atomic import atomic_write_text
from assistant.errors import UserError

APP_NAME = "course-assistant"


@dataclass(frozen=True)
class Setting:
    """One config key: its default, its type (that of the default unless given) and one line of help."""

    default: Any
    help: str = ""
    type: type | None = None
    choices: tuple[Any, ...] = ()

    @property
    def kind(self) -> builtins.type:
        return self.type or type(self.default)

    def check(self, value: Any) -> str | None:
        """None when `value` fits, else what is wrong with it (one phrase)."""
        kind = self.kind
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            return f"must be {_TYPE_WORDS.get(kind, kind.__name__)}, not {value!r}"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}, not {value!r}"
        return None


_TYPE_WORDS: dict[builtins.type, str] = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}

# The core's own keys; plugins declare theirs (Plugin.settings).
CORE_SETTINGS: dict[str, Setting] = {
    "llm.backend": Setting("local", "LLM backend: any registered in the assistant.llm_backends group"),
    "llm.model_path": Setting("", "a GGUF file, for llamacpp"),
    "llm.base_url": Setting("", "ollama or OpenAI-compatible server, e.g. http://127.0.0.1:11434"),
    "llm.model": Setting("", "model name on that server"),
    "llm.api_key_env": Setting("OPENAI_API_KEY", "the *name* of the variable holding the key"),
    "llm.temperature": Setting(0.2, "sampling temperature"),
    "llm.max_tokens": Setting(512, "longest reply, in tokens"),
    "llm.dtype": Setting("int8", "local/smollm2 weights", choices=("int8", "bfloat16", "float32")),
    "llm.context_window": Setting(4096, "prompts are fitted to this many tokens"),
    "llm.timeout": Setting(60, "seconds, for servers", type=float),
    "llm.threads": Setting(0, "CPU threads for local models (0: automatic)"),
    "llm.cache_dir": Setting("", "where converted local models are kept (default: <state>/models)"),
    "router.threshold": Setting(0.5, "below this intent confidence, free text is treated as a question"),
    "tui.images": Setting("auto", "how the chat draws pictures", choices=("auto", "blocks", "off")),
    "tui.theme": Setting("", "the chat's colours: a Textual theme such as nord, gruvbox, textual-light (empty: default)"),
    # Keys of the chat, Textual key names ("ctrl+s", "f3"; several: "shift+enter,ctrl+j"); empty: the built-in key.
    **{f"tui.keys.{action}": Setting("", f"key for: {what}") for action, what in (
        ("send", "send the message (Enter)"), ("newline", "add a line to the message (Shift+Enter, Ctrl+J)"),
        ("cancel", "cancel the running action (Escape)"), ("interrupt", "copy the selection, else cancel/quit (Ctrl+C)"),
        ("quit", "leave (Ctrl+Q)"), ("sources", "show or hide the sources panel (F2)"),
        ("scroll_up", "scroll the conversation up (PageUp)"), ("scroll_down", "scroll it down (PageDown)"))},
}


class ConfigError(UserError):
    pass


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    if home:
        path = Path(home)
    elif os.environ.get("ASSISTANT_HOME"):
        path = Path(os.environ["ASSISTANT_HOME"])
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir(APP_NAME))
    path = path.expanduser().resolve()
    for sub in ("index", "models", "outputs"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


class Config:
    """Dotted keys, `cfg.get("llm.backend")`: override, else config.toml, else the declared default."""

    def __init__(self, home: Path, settings: Mapping[str, Setting] | None = None):
        self.home = Path(home)
        self.path = self.home / "config.toml"
        self.settings: dict[str, Setting] = dict(CORE_SETTINGS)
        self.user: dict[str, Any] = {}  # what config.toml says, flattened to dotted keys
        self.overrides: dict[str, Any] = {}  # this run only; never written
        self.conflicts: list[str] = []
        if self.path.exists():
            try:
                self.user = _flatten(tomllib.loads(self.path.read_text(encoding="utf-8")))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{self.path}: not valid TOML ({exc})", "fix or delete the file") from exc
        self.declare(settings or {})

    def declare(self, settings: Mapping[str, Setting]) -> None:
        """Add declarations (the Context adds the installed plugins'); the first declaration of a key wins."""
        for key, setting in settings.items():
            known = self.settings.get(key)
            if known is not None and known != setting:
                self.conflicts.append(f"config key '{key}' is declared twice; keeping the default {known.default!r}")
                continue
            self.settings[key] = setting

    # -- reading ---------------------------------------------------------------
    def get(self, dotted: str, default: Any = None) -> Any:
        """The value of a key; `default` only matters for keys nobody declared."""
        if dotted in self.overrides:
            return self.overrides[dotted]
        setting = self.settings.get(dotted)
        if dotted in self.user and (setting is None or setting.check(self.user[dotted]) is None):
            return self.user[dotted]
        if setting is not None:
            return setting.default
        prefix = dotted + "."
        section = {k[len(prefix):]: self.get(k) for k in self.keys() if k.startswith(prefix)}
        return section or default

    def keys(self) -> list[str]:
        return sorted(set(self.settings) | set(self.user) | set(self.overrides))

    @property
    def data(self) -> dict[str, Any]:
        """Every key's effective value, as nested tables (what `assistant config` would show)."""
        nested: dict[str, Any] = {}
        for key in self.keys():
            node = nested
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = self.get(key)
        return nested

    def problems(self) -> list[str]:
        """One line per unknown key (naming the closest known one) or badly typed value in config.toml."""
        lines = list(self.conflicts)
        for key, value in sorted(self.user.items()):
            setting = self.settings.get(key)
            if setting is None:
                close = difflib.get_close_matches(key, list(self.settings), n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else " (no installed plugin declares it)"
                lines.append(f"{self.path}: unknown key '{key}'{hint}")
            else:
                wrong = setting.check(value)
                if wrong:
                    lines.append(f"{self.path}: '{key}' {wrong}; using the default {setting.default!r}")
        return lines

    # -- writing ---------------------------------------------------------------
    def override(self, dotted: str, value: Any) -> None:
        """Use `value` for this run only (`--model X`); config.toml is never touched."""
        self.overrides[dotted] = value

    def set(self, dotted: str, value: Any, save: bool = True) -> None:
        """Change a key and (by default) write it to config.toml; `save=False` is `override()`."""
        if not save:
            self.override(dotted, value)
            return
        setting = self.settings.get(dotted)
        wrong = setting.check(value) if setting else None
        if wrong:
            raise ConfigError(f"'{dotted}' {wrong}")
        self.overrides.pop(dotted, None)  # the user's explicit choice now wins over a one-run override
        self.user[dotted] = value
        self._write_key(dotted, value)

    def _write_key(self, dotted: str, value: Any) -> None:
        """Edit one key in config.toml, keeping every comment and the rest of the file as it was."""
        import tomlkit

        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        document = tomlkit.parse(text)
        node: Any = document
        *parents, leaf = dotted.split(".")
        for part in parents:
            if part not in node:
                node[part] = tomlkit.table()
            node = node[part]
        node[leaf] = value
        atomic_write_text(self.path, tomlkit.dumps(document))

    # Well-known places inside the state directory.
    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def outputs_dir(self) -> Path:
        return self.home / "outputs"

    @property
    def sessions_db(self) -> Path:
        return self.home / "sessions.sqlite3"

    @property
    def user_prompts_dir(self) -> Path:
        return self.home / "prompts"

    @property
    def user_knowledge_dir(self) -> Path:
        return self.home / "knowledge"


def settings_of(plugins: Iterable[Any]) -> dict[str, Setting]:
    """The settings all `plugins` declare (Plugin.settings)."""
    out: dict[str, Setting] = {}
    for plugin in plugins:
        out.update(getattr(plugin, "settings", {}) or {})
    return out
