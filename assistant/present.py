"""Results drawn for people: a Data payload as one compact line or a small table,
and a passage's relevance in words and a bar instead of a raw fused score.

Both front ends use it: the chat (assistant/tui) and the CLI renderer without
--json. The raw JSON stays available with `--json` and the chat's `/debug`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

MAX_ROWS = 12  # a table longer than this is cut, with a count of what is left out
MAX_COLUMNS = 6
MAX_CELL = 48
# Keys that only matter to scripts (control actions, bulky arrays) are left out of the line.
HIDDEN_KEYS = {"action", "confusion", "rows", "sources", "answer", "text", "question"}
LABELS = {
    "n": "images", "npy": "array", "path": "saved to", "checkpoint": "checkpoint", "images_per_second": "images/s",
    "epochs_done": "epochs", "seconds": "s", "final_loss": "final loss", "macro_f1": "macro F1",
    "trainable_share": "trainable", "train_seconds": "training s", "kb": "KB",
}
PATH_KEYS = {"path", "npy", "checkpoint", "out"}
TITLES = {"sample": "sampled", "train": "trained", "classifier_trained": "classifier trained",
          "classifier_merged": "classifier merged", "kb-remove": "knowledge base removed"}


def _short(value: Any) -> str:
    """One cell: numbers rounded, paths by name, lists of numbers as a shape."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        return "×".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in list(value.items())[:4])
    if isinstance(value, (list, tuple)):
        return f"{len(value)} items"
    text = " ".join(str(value).split())
    if ("/" in text or "\\" in text) and len(text) > MAX_CELL:
        text = "…/" + Path(text).name  # the whole path is in --json and /debug
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def _label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def data_line(obj: dict[str, Any]) -> str:
    """`sampled · images 16 · shape 16×28×28×1 · saved to …/grid.png`."""
    parts = []
    title = TITLES.get(str(obj.get("action", "")), "")
    if title:
        parts.append(title + (f" {obj['model']}" if isinstance(obj.get("model"), str) else ""))
    # Where things were saved goes last: the figures are what a student reads first.
    for key, value in sorted(obj.items(), key=lambda kv: kv[0] in PATH_KEYS):
        if key in HIDDEN_KEYS or value is None or (key == "model" and title):
            continue
        if isinstance(value, (list, dict)) and not value:
            continue
        if isinstance(value, list) and value and not all(isinstance(v, (int, float)) for v in value):
            continue  # a list of records belongs in a table, not in a line
        parts.append(f"{_label(key)} {_short(value)}")
    return " · ".join(parts)


def data_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of the first rows and columns."""
    columns: list[str] = []
    for row in rows[:MAX_ROWS]:
        for key in row:
            if key not in columns and len(columns) < MAX_COLUMNS:
                columns.append(key)
    lines = ["| " + " | ".join(_label(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:MAX_ROWS]:
        cells = [_short(row.get(c, "")).replace("|", "\\|") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > MAX_ROWS:
        lines.append(f"\n*… {len(rows) - MAX_ROWS} more rows (--json has them all)*")
    return "\n".join(lines)


def describe_data(obj: Any) -> str:
    """Markdown for a Data payload: a line for a record, a table for a list of records."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        line = data_line(obj)
        tables = [data_table(v) for k, v in obj.items() if k == "rows" and isinstance(v, list) and v
                  and all(isinstance(r, dict) for r in v)]
        return "\n\n".join([line] + tables) if line or tables else ""
    if isinstance(obj, (list, tuple)):
        if obj and all(isinstance(r, dict) for r in obj):
            return data_table(list(obj))
        return ", ".join(_short(v) for v in obj[:MAX_ROWS]) + (" …" if len(obj) > MAX_ROWS else "")
    return _short(obj)


def raw_json(obj: Any) -> str:
    """The payload as indented JSON, for /debug."""
    try:
        return json.dumps(obj, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(obj)


# -- relevance -------------------------------------------------------------------------
RELEVANCE_WORDS = ((0.9, "best match"), (0.7, "close"), (0.5, "related"), (0.0, "loosely related"))
BAR_CELLS = 5


def relevance(scores: Sequence[float]) -> list[tuple[str, str]]:
    """(words, bar) per passage, relative to the best passage of the same answer.

    A raw fused score (0.62) means nothing to a student; how a passage
    compares with the best one retrieved for the same question does.
    """
    best = max((s for s in scores if s > 0), default=0.0)
    out = []
    for score in scores:
        share = score / best if best > 0 else 0.0
        words = next(w for limit, w in RELEVANCE_WORDS if share >= limit)
        filled = max(1 if share > 0 else 0, round(share * BAR_CELLS))
        out.append((words, "█" * filled + "░" * (BAR_CELLS - filled)))
    return out
