"""Reading JSON Lines data files (QA sets, evaluation cases, training data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def parse_jsonl(text: str, where: str | Path, error: type[Exception] = ValueError) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; `error` names file and line."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise error(f"{where}:{number}: each line must be a JSON object")
        rows.append((number, row))
    return rows


def read_text(path: str | Path, error: type[Exception] = ValueError) -> str:
    """A UTF-8 file's text; a missing or unreadable file raises `error` with a one-line message."""
    path = Path(path).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None


def read_jsonl(path: str | Path, error: type[Exception] = ValueError) -> list[tuple[int, dict[str, Any]]]:
    """`parse_jsonl` on a UTF-8 file; a missing or unreadable file is an `error` too."""
    path = Path(path).expanduser()
    return parse_jsonl(read_text(path, error), path, error)
