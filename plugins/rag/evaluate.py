"""Retrieval evaluation on a QA file (JSON lines).

Each line is {"question", "source", "start_line", "end_line"} (in scope) or
{"question", "out_of_scope": true}. A hit is a retrieved chunk from the gold
source whose line range overlaps the gold range. Reported: hit@1, hit@3,
hit@5 and MRR@5 over in-scope questions, out-of-scope accuracy (flagged as
not covered) and the in-scope rejection rate (wrongly flagged).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from assistant import UserError
from assistant.events import Data, Event, Progress


class QaFileError(UserError):
    pass


def load_qa(path: str | Path) -> list[dict[str, Any]]:
    from assistant.jsonl import read_jsonl

    path = Path(path)
    items = []
    for number, item in read_jsonl(path, QaFileError):
        if not isinstance(item.get("question"), str) or not item["question"].strip():
            raise QaFileError(f"{path}:{number}: each line needs a non-empty \"question\"")
        if not item.get("out_of_scope"):
            try:
                ok = isinstance(item["source"], str) and int(item["start_line"]) <= int(item["end_line"])
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                raise QaFileError(f"{path}:{number}: an in-scope question needs \"source\", \"start_line\" <= \"end_line\"")
        items.append(item)
    if not items:
        raise QaFileError(f"{path}: no questions")
    return items


def same_source(hit_source: str, gold: str) -> bool:
    a, b = PurePosixPath(hit_source.replace("\\", "/")), PurePosixPath(gold.replace("\\", "/"))
    if a == b:
        return True
    shorter, longer = (a, b) if len(a.parts) <= len(b.parts) else (b, a)
    return longer.parts[-len(shorter.parts):] == shorter.parts


def is_hit(hit: Any, item: dict[str, Any]) -> bool:
    return (same_source(hit.source, item["source"]) and hit.start_line <= int(item["end_line"])
            and hit.end_line >= int(item["start_line"]))


def evaluate(retriever: Any, items: list[dict[str, Any]], k: int = 5, kb: str | None = None,
             cancel: Any = None) -> Iterator[Event]:
    """Yields Progress per question, then Data(metrics)."""
    depth = max(k, 5)
    ranks: list[int | None] = []
    rejected_in = 0
    oos_total = oos_flagged = 0
    misses: list[dict[str, Any]] = []
    for index, item in enumerate(items, 1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        result = retriever.search(item["question"], k=depth, kb=kb)
        if item.get("out_of_scope"):
            oos_total += 1
            oos_flagged += not result.covered
            if result.covered:
                misses.append({"question": item["question"], "why": "out of scope but covered",
                               "coverage": result.coverage})
        else:
            rank = next((i for i, h in enumerate(result.hits, 1) if is_hit(h, item)), None)
            ranks.append(rank)
            rejected_in += not result.covered
            if rank is None or rank > 3 or not result.covered:
                misses.append({"question": item["question"], "rank": rank, "covered": result.covered,
                               "coverage": result.coverage,
                               "top": [f"{h.source}:{h.start_line}-{h.end_line}" for h in result.hits[:3]]})
        yield Progress("evaluating retrieval", index, len(items))
    n_in = len(ranks)

    def hit_at(n: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= n) / n_in if n_in else 0.0

    metrics = {
        "questions": len(items), "in_scope": n_in, "out_of_scope": oos_total, "k": k,
        "hit@1": round(hit_at(1), 4), "hit@3": round(hit_at(3), 4), "hit@5": round(hit_at(5), 4),
        "mrr@5": round(sum(1 / r for r in ranks if r is not None and r <= 5) / n_in, 4) if n_in else 0.0,
        "out_of_scope_accuracy": round(oos_flagged / oos_total, 4) if oos_total else None,
        "in_scope_rejection": round(rejected_in / n_in, 4) if n_in else None,
        "misses": misses,
    }
    yield Data(metrics)
