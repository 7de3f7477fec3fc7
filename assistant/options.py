"""Options of slash commands: `/cmd text --k 3 --kb mine` -> text and typed options."""

from __future__ import annotations

import shlex
from typing import Any

from assistant.errors import UserError


class OptionError(UserError, ValueError):
    """A flag without its value or with a value of the wrong type."""


def parse_flags(text: str, flags: dict[str, type]) -> tuple[str, dict[str, Any]]:
    """Pull `--name value` flags out of slash-command text.

    Returns the remaining text and the parsed options; raises OptionError (a UserError and a ValueError) with
    a one-line message on bad values.
    """
    try:
        tokens = shlex.split(text)
    except ValueError:
        tokens = text.split()
    rest: list[str] = []
    options: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--") and tok[2:].replace("-", "_") in flags:
            key = tok[2:].replace("-", "_")
            kind = flags[key]
            if kind is bool:
                options[key] = True
                i += 1
                continue
            if i + 1 >= len(tokens):
                raise OptionError(f"{tok} needs a value")
            try:
                options[key] = kind(tokens[i + 1])
            except ValueError:
                raise OptionError(f"{tok} expects {kind.__name__}, got {tokens[i + 1]!r}") from None
            i += 2
        else:
            rest.append(tok)
            i += 1
    return " ".join(rest), options
