"""Labelled text data: read a CSV/JSONL file, check it, split it reproducibly.

Every problem with the data is reported as a `DataError` with one clear line
before any model is loaded, so a bad file never costs a training run.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from assistant import UserError, package_file

SENTIMENT_FILE = package_file(__package__, "data", "sentiment.csv")  # importlib.resources: a missing file is an error

# Each class needs enough rows to put at least one in every split.
MIN_PER_LABEL = 5
MAX_TEXT_CHARS = 5_000
SPLIT_SEED = 13


class DataError(UserError, ValueError):
    """A problem with the user's data file, worded for the user."""


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[str]
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))


@dataclass
class Splits:
    train: LabelledTexts
    validation: LabelledTexts
    test: LabelledTexts
    classes: list[str] = field(default_factory=list)


def _read_rows(path: Path) -> tuple[list[dict], list[str]]:
    """Rows as dicts and the column names seen, for .csv/.tsv/.jsonl/.json files."""
    suffix = path.suffix.lower()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if b"\x00" in raw[:4096]:
        raise DataError(f"{path} looks like a binary file, not CSV or JSONL text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text") from None
    if suffix in (".jsonl", ".ndjson"):
        from assistant import parse_jsonl

        rows = [row for _, row in parse_jsonl(text, path, DataError)]
        columns = sorted({key for row in rows for key in row})
        return rows, columns
    if suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise DataError(f"{path}: expected a JSON list of objects")
        return rows, sorted({key for row in rows for key in row})
    if suffix in (".csv", ".tsv", ".txt"):
        dialect = "excel-tab" if suffix == ".tsv" else "excel"
        try:
            # io.StringIO, not splitlines(): a row ends only at \n / \r\n, never inside a
            # field at U+2028, U+0085 or a form feed (the csv module handles quoted newlines).
            reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
            rows = list(reader)
        except csv.Error as exc:
            raise DataError(f"{path}: not valid CSV ({exc})") from None
        return rows, list(reader.fieldnames or [])
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'}; use .csv, .tsv, .jsonl or .json")


def load_labelled(path: str | Path, text_col: str = "text", label_col: str = "label") -> LabelledTexts:
    """Read and check a labelled file; raises DataError on any problem."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    rows, columns = _read_rows(path)
    if not rows:
        raise DataError(f"{path} has no rows")
    missing = [c for c in (text_col, label_col) if c not in columns]
    if missing:
        raise DataError(f"{path} has no column {', '.join(repr(c) for c in missing)}; "
                        f"columns found: {', '.join(columns) or '(none)'}")
    texts: list[str] = []
    labels: list[str] = []
    empty = 0
    for row in rows:
        text = row.get(text_col)
        label = row.get(label_col)
        text = "" if text is None else str(text).strip()
        label = "" if label is None else str(label).strip()
        if not text or not label:
            empty += 1
            continue
        texts.append(text[:MAX_TEXT_CHARS])
        labels.append(label)
    if not texts:
        raise DataError(f"{path}: every row has an empty {text_col!r} or {label_col!r}")
    if empty > len(rows) // 2:
        raise DataError(f"{path}: {empty} of {len(rows)} rows have an empty text or label")
    data = LabelledTexts(texts, labels, str(path))
    check_trainable(data)
    return data


def check_trainable(data: LabelledTexts, min_per_label: int = MIN_PER_LABEL) -> None:
    counts = data.counts()
    if len(counts) < 2:
        only = next(iter(counts), "?")
        raise DataError(f"{data.source or 'data'}: only one class ({only!r}); a classifier needs at least two")
    small = {label: n for label, n in counts.items() if n < min_per_label}
    if small:
        listed = ", ".join(f"{label!r} ({n})" for label, n in small.items())
        raise DataError(f"{data.source or 'data'}: too few examples for {listed}; "
                        f"each label needs at least {min_per_label}")


def split(data: LabelledTexts, validation: float = 0.15, test: float = 0.15, seed: int = SPLIT_SEED) -> Splits:
    """Stratified split with a fixed seed: the same file always gives the same splits."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(seed)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for label in sorted(by_label):
        idx = by_label[label]
        rng.shuffle(idx)
        n_test = max(1, round(len(idx) * test))
        n_val = max(1, round(len(idx) * validation))
        parts["test"] += idx[:n_test]
        parts["validation"] += idx[n_test:n_test + n_val]
        parts["train"] += idx[n_test + n_val:]

    def take(ids: list[int]) -> LabelledTexts:
        ids = sorted(ids)
        return LabelledTexts([data.texts[i] for i in ids], [data.labels[i] for i in ids], data.source)

    return Splits(take(parts["train"]), take(parts["validation"]), take(parts["test"]), data.classes)


def intent_data(examples: list[tuple[str, str]]) -> LabelledTexts:
    """The router's training data: (utterance, intent) from every installed plugin (Registry.intent_examples)."""
    data = LabelledTexts([text[:MAX_TEXT_CHARS] for text, _ in examples], [intent for _, intent in examples],
                         "intent examples of the installed plugins")
    check_trainable(data)
    return data


def examples_sha256(examples: list[tuple[str, str]]) -> str:
    """Identifies a set of intent examples: a new plugin (or new examples) means a new router."""
    import hashlib

    return hashlib.sha256(json.dumps(examples, ensure_ascii=False).encode("utf-8")).hexdigest()


def builtin_dataset(name: str) -> tuple[Path, str, str] | None:
    """(file, text column, label column) of a dataset shipped with the plugin (the intents are not a file:
    see intent_data)."""
    if name == "sentiment":
        return SENTIMENT_FILE, "text", "label"
    return None


def relative(path: Path) -> str:
    from assistant import display_path

    return display_path(path)
