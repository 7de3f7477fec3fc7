"""The state directory and config.toml (contract: see DESIGN.md "State").

`--home DIR`, else `$ASSISTANT_HOME`, else the platform's user data directory.
Inside: config.toml, index/, models/, sessions.sqlite3, outputs/.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

from assistant.errors import UserError
from assistant.atomic import atomic_write_text

APP_NAME = "course-assistant"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"
PROMPTS_DIR = PROJECT_ROOT / "prompts"

DEFAULTS: dict[str, Any] = {
    "llm": {
        # local | smollm2 | llamacpp | ollama | openai | extractive
        "backend": "local",
        "model_path": "",  # GGUF file for llamacpp
        "base_url": "",  # ollama / openai-compatible server
        "model": "",  # model name on that server
        "api_key_env": "OPENAI_API_KEY",  # name of the variable, never the key itself
        "temperature": 0.2,
        "max_tokens": 512,
        "dtype": "int8",  # local/smollm2: int8 | bfloat16 | float32 (see docs/llm.md)
    },
    "rag": {"kb": "default", "k": 5},
    "vector_store": {"kind": "chroma", "url": ""},  # kind: chroma | faiss
    "router": {"threshold": 0.5},
}


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


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class ConfigError(UserError):
    pass


class Config:
    """config.toml merged over DEFAULTS; dotted keys: cfg.get("llm.backend")."""

    def __init__(self, home: Path):
        self.home = Path(home)
        self.path = self.home / "config.toml"
        self.user: dict[str, Any] = {}
        if self.path.exists():
            try:
                self.user = tomllib.loads(self.path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{self.path}: not valid TOML ({exc}); fix or delete the file") from exc
        self.data = _merge(DEFAULTS, self.user)

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def set(self, dotted: str, value: Any, save: bool = True) -> None:
        """Set a value in memory and (by default) persist it to config.toml."""
        for target in (self.data, self.user):
            node = target
            parts = dotted.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        if save:
            self.save()

    def save(self) -> None:
        import tomli_w

        atomic_write_text(self.path, tomli_w.dumps(self.user))

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
