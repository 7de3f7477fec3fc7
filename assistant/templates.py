"""Prompt templates as data: one TOML file per technique in prompts/.

A user's own templates in `<state dir>/prompts/` are merged over the built-in
ones (same `name` replaces). Placeholders are `{{ variable }}` so JSON braces in
a template need no escaping.

File format (all keys but `name` and `template` optional):

    name = "cot"
    description = "one line shown in `assistant prompt --list`"
    technique = "cot"      # which runner uses it (the plugin that runs templates); default "single"
    system = "system message, may use {{ variables }} too"
    template = "user message with {{ text }}"
    [variables]            # variable -> what it means (all are required unless in defaults)
    text = "the problem to solve"
    [defaults]             # default values, and technique settings (paths, k, temperature)
    k = 3
    [[examples]]           # worked examples / few-shot pool
    input = "..."
    output = "..."

Any other top-level key (e.g. a `[knowledge]` table holding a second step's
`system`/`template`) is kept in `PromptTemplate.extra` for the technique.
`PromptTemplate.source` says where it came from: "built-in" or "user".
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import UserError
from assistant.resources import prompts_dir

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TemplateError(UserError):
    """A template file is malformed or a variable is missing; names file and field."""


@dataclass
class PromptTemplate:
    name: str
    template: str
    path: Path
    description: str = ""
    system: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    technique: str = "single"
    source: str = "built-in"  # "built-in" (prompts/) or "user" (<state dir>/prompts/)

    def placeholders(self) -> set[str]:
        return set(PLACEHOLDER.findall(self.template)) | set(PLACEHOLDER.findall(self.system))

    def render(self, **values: Any) -> tuple[str, str]:
        """(system, user) with every placeholder filled; raises TemplateError."""
        merged = {**self.defaults, **{k: v for k, v in values.items() if v is not None}}
        missing = sorted(self.placeholders() - merged.keys())
        if missing:
            raise TemplateError(f"{self.path}: missing variable '{missing[0]}' for template '{self.name}'")

        def fill(text: str) -> str:
            return PLACEHOLDER.sub(lambda m: str(merged[m.group(1)]), text)

        return fill(self.system), fill(self.template)


def load_template_file(path: Path) -> PromptTemplate:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: not valid TOML ({exc})") from None
    for key in ("name", "template"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise TemplateError(f"{path}: field '{key}' is missing or not a string")
    for key, kind in (("variables", dict), ("defaults", dict), ("examples", list), ("system", str), ("description", str)):
        if key in raw and not isinstance(raw[key], kind):
            raise TemplateError(f"{path}: field '{key}' must be a {kind.__name__}")
    for key in ("variables",):
        bad = [k for k, v in raw.get(key, {}).items() if not isinstance(v, str)]
        if bad:
            raise TemplateError(f"{path}: field '{key}.{bad[0]}' must be a string (what the variable means)")
    for i, example in enumerate(raw.get("examples", [])):
        if not isinstance(example, dict) or not isinstance(example.get("input"), str):
            raise TemplateError(f"{path}: field 'examples[{i}]' must be a table with a string 'input'")
    if "technique" in raw and (not isinstance(raw["technique"], str) or not raw["technique"].strip()):
        raise TemplateError(f"{path}: field 'technique' must be a non-empty string")
    for key in ("system", "template"):
        unclosed = re.search(r"\{\{(?![^{}]*\}\})", raw.get(key, ""))
        if unclosed:
            raise TemplateError(f"{path}: field '{key}' has an unclosed '{{{{' placeholder")
    known = {"name", "template", "description", "system", "variables", "defaults", "examples", "technique"}
    return PromptTemplate(
        name=raw["name"].strip(),
        template=raw["template"],
        path=path,
        description=raw.get("description", ""),
        system=raw.get("system", ""),
        variables=raw.get("variables", {}),
        defaults=raw.get("defaults", {}),
        examples=raw.get("examples", []),
        extra={k: v for k, v in raw.items() if k not in known},
        technique=raw.get("technique", "single").strip(),
    )


def load_templates(user_dir: Path | None = None, builtin_dir: Path | None = None) -> dict[str, PromptTemplate]:
    """Built-in templates, then the user's over them. Malformed files raise TemplateError; a missing
    built-in folder raises MissingData (a broken install), a missing user folder is just empty."""
    builtin_dir = prompts_dir() if builtin_dir is None else builtin_dir
    templates: dict[str, PromptTemplate] = {}
    for directory in (builtin_dir, user_dir):
        if directory is None or not Path(directory).is_dir():
            continue
        for path in sorted(Path(directory).glob("*.toml")):
            template = load_template_file(path)
            template.source = "built-in" if directory == builtin_dir else "user"
            templates[template.name] = template
    return templates


def get_template(name: str, user_dir: Path | None = None) -> PromptTemplate:
    templates = load_templates(user_dir)
    if name not in templates:
        import difflib

        close = difflib.get_close_matches(name, list(templates), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(templates))}"
        raise TemplateError(f"unknown template '{name}'{hint}")
    return templates[name]
