"""Options of slash commands: `/cmd text --k 3 --kb mine` -> text and typed options."""

from __future__ import annotations

import argparse
import math
import shlex
from typing import Any

from assistant.errors import UserError


class OptionError(UserError, ValueError):
    """A flag without its value or with a value of the wrong type."""


class OutOfRange(argparse.ArgumentTypeError, ValueError):
    """A number outside its allowed range; argparse and parse_flags both show the message as is."""


class Bounded:
    """A number type with its allowed range, for argparse `type=` and slash-flag tables alike.

    `Bounded(int, 1, 100)("0")` raises OutOfRange("must be between 1 and 100, got 0");
    nan and infinities are never accepted.
    """

    def __init__(self, kind: type, low: float, high: float):
        self.kind, self.low, self.high = kind, low, high
        self.__name__ = kind.__name__  # argparse and parse_flags name the type in messages

    def __call__(self, text: Any) -> Any:
        value = self.kind(text)  # ValueError: not a number at all
        if isinstance(value, float) and not math.isfinite(value) or not self.low <= value <= self.high:
            raise OutOfRange(f"must be between {self.low:,} and {self.high:,}, got {text}")
        return value

    def __repr__(self) -> str:
        return f"Bounded({self.kind.__name__}, {self.low}, {self.high})"


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
            except OutOfRange as exc:
                raise OptionError(f"{tok} {exc}") from None
            except ValueError:
                raise OptionError(f"{tok} expects {kind.__name__}, got {tokens[i + 1]!r}") from None
            i += 2
        else:
            rest.append(tok)
            i += 1
    return " ".join(rest), options
