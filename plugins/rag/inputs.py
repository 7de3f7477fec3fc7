"""Questions on stdin: plain lines, or JSON lines that carry their conversation.

A line starting with "{" is JSON: {"question": "...", "history": [{"role":
"user"|"assistant", "content": "..."}, ...]} (history optional, oldest first).
Any other non-empty line is a plain question without history. A malformed line
raises `InputLineError` with a one-line reason; callers report it and go on
with the next line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

MAX_HISTORY_TURNS = 20
MAX_TURN_CHARS = 8000
ROLES = ("user", "assistant")


class InputLineError(ValueError):
    pass


@dataclass
class Question:
    text: str
    history: list[dict[str, str]] = field(default_factory=list)
    line: int = 0


def check_history(history: Any, where: str = "history") -> list[dict[str, str]]:
    """A list of {"role", "content"} turns, the last MAX_HISTORY_TURNS kept; anything else is an error."""
    if history is None:
        return []
    if not isinstance(history, list):
        raise InputLineError(f'{where} must be a list of {{"role", "content"}} objects')
    turns = []
    for index, turn in enumerate(history, 1):
        if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise InputLineError(f'{where} item {index} needs "role" ("user" or "assistant") and a string "content"')
        turns.append({"role": turn["role"], "content": turn["content"][:MAX_TURN_CHARS]})
    return turns[-MAX_HISTORY_TURNS:]


def parse_line(line: str, number: int = 0) -> Question | None:
    """One input line -> Question; None for a blank line."""
    text = line.strip()
    if not text:
        return None
    if not text.startswith("{"):
        return Question(" ".join(text.split()), [], number)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputLineError(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise InputLineError(f"line {number}: a JSON line must be an object")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise InputLineError(f'line {number}: needs a non-empty string "question"')
    try:
        history = check_history(obj.get("history"))
    except InputLineError as exc:
        raise InputLineError(f"line {number}: {exc}") from None
    return Question(" ".join(question.split()), history, number)


def read_questions(lines: Iterable[str], as_json: bool, cancel: Any,
                   keep_blank: bool = False) -> Iterator["Question | Any"]:
    """Questions from input lines (stdin); a malformed line becomes a warning event and the rest goes on.

    Yields a `Question` per line (a blank one as an empty question when `keep_blank`) or, for a bad
    line, `Data({"line", "error"})` with `as_json` and a warning `Notice` without.
    """
    from assistant import Data, Notice

    for number, line in enumerate(lines, 1):
        cancel.raise_if_cancelled()
        try:
            question = parse_line(line, number)
        except InputLineError as exc:
            yield Data({"line": number, "error": str(exc)}) if as_json else Notice("warning", str(exc))
            continue
        if question is None:
            if not keep_blank:
                continue
            question = Question("", [], number)
        yield question

