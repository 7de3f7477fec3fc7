"""Retrieval evaluation on a QA file (JSON lines).

Each line is one of:

- in scope: {"question", "source", "start_line", "end_line", "also"?: [[a, b], ...]}
  - the gold range is the passage that answers; `also` lists other ranges of
    the same source that state the same answer (a revision summary, the code
    explanation of a code line);
- out of scope: {"question", "out_of_scope": true};
- a follow-up: an in-scope line with "history": [{"role", "content"}, ...] and
  "self_contained": the same question asked on its own.

Optional keys: "kind" (paraphrase, code, formula, why, ...) and "split"
("tune" or "holdout": the questions not looked at while tuning).

A hit is a retrieved chunk from the gold source whose line range overlaps the
gold range ("exact") or any of the ranges ("any"). Reported: exact hit@1/3/5
and MRR@5, any@3/5, out-of-scope accuracy (flagged as not covered), in-scope
rejection (wrongly flagged), follow-up hit@3 against the same questions asked
self-contained, query latency, and the same per split and per kind.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from assistant import Data, Event, Progress, UserError


class QaFileError(UserError):
    pass


def _ranges_ok(item: dict[str, Any]) -> bool:
    try:
        if not isinstance(item["source"], str) or int(item["start_line"]) > int(item["end_line"]):
            return False
        return all(int(a) <= int(b) for a, b in item.get("also") or [])
    except (KeyError, TypeError, ValueError):
        return False


def load_qa(path: str | Path) -> list[dict[str, Any]]:
    from assistant import read_jsonl
    from course_assistant_plugins.rag.inputs import InputLineError, check_history

    path = Path(path)
    items = []
    for number, item in read_jsonl(path, QaFileError):
        if not isinstance(item.get("question"), str) or not item["question"].strip():
            raise QaFileError(f"{path}:{number}: each line needs a non-empty \"question\"")
        if not item.get("out_of_scope") and not _ranges_ok(item):
            raise QaFileError(f"{path}:{number}: an in-scope question needs \"source\", \"start_line\" <= \"end_line\""
                              " (and [a, b] pairs with a <= b in \"also\")")
        if "history" in item:
            try:
                item["history"] = check_history(item["history"])
            except InputLineError as exc:
                raise QaFileError(f"{path}:{number}: {exc}") from None
            if not isinstance(item.get("self_contained"), str) or not item["self_contained"].strip():
                raise QaFileError(f"{path}:{number}: a follow-up needs \"self_contained\", the question asked on its own")
        items.append(item)
    if not items:
        raise QaFileError(f"{path}: no questions")
    return items


def document_sources(path: str | Path, items: list[dict[str, Any]], documents: str | Path | None = None
                     ) -> dict[str, Path] | None:
    """Gold sources that are files outside the knowledge base, by their name in the QA file.

    A source is looked up relative to the QA file, then by file name in
    `documents`. None when some source is not such a file (a QA set over the
    built-in notes, whose sources are paths inside the knowledge base).
    """
    base = Path(path).resolve().parent
    found: dict[str, Path] = {}
    for source in {i["source"] for i in items if not i.get("out_of_scope")}:
        candidates = [base / source]
        if documents is not None:
            candidates.append(Path(documents).expanduser() / PurePosixPath(source.replace("\\", "/")).name)
        hit = next((c.resolve() for c in candidates if c.is_file()), None)
        if hit is None:
            return None
        found[source] = hit
    return found or None


def with_sources(items: list[dict[str, Any]], sources: dict[str, Path]) -> list[dict[str, Any]]:
    """Items whose gold source is the ingested file's path (what hits report)."""
    return [{**i, "source": str(sources[i["source"]])} if i.get("source") in sources else i for i in items]


def same_source(hit_source: str, gold: str) -> bool:
    a, b = PurePosixPath(hit_source.replace("\\", "/")), PurePosixPath(gold.replace("\\", "/"))
    if a == b:
        return True
    shorter, longer = (a, b) if len(a.parts) <= len(b.parts) else (b, a)
    return longer.parts[-len(shorter.parts):] == shorter.parts


def _overlaps(hit: Any, start: int, end: int) -> bool:
    return hit.start_line <= end and hit.end_line >= start


def is_hit(hit: Any, item: dict[str, Any]) -> bool:
    """The chunk overlaps the gold range."""
    return same_source(hit.source, item["source"]) and _overlaps(hit, int(item["start_line"]), int(item["end_line"]))


def states_answer(hit: Any, item: dict[str, Any]) -> bool:
    """The chunk overlaps the gold range or one of the ranges that state the same answer."""
    if not same_source(hit.source, item["source"]):
        return False
    ranges = [(int(item["start_line"]), int(item["end_line"]))] + [(int(a), int(b)) for a, b in item.get("also") or []]
    return any(_overlaps(hit, a, b) for a, b in ranges)


def _rank(hits: list[Any], item: dict[str, Any], test: Any) -> int | None:
    return next((i for i, h in enumerate(hits, 1) if test(h, item)), None)


class _Tally:
    """Counts for one group of questions (all, a split, a kind)."""

    def __init__(self) -> None:
        self.exact: list[int | None] = []
        self.any: list[int | None] = []
        self.rejected = 0
        self.oos = 0
        self.oos_flagged = 0
        self.follow: list[int | None] = []
        self.follow_any: list[int | None] = []
        self.follow_rejected = 0
        self.alone: list[int | None] = []
        self.alone_any: list[int | None] = []

    @staticmethod
    def _at(ranks: list[int | None], n: int) -> float:
        return round(sum(1 for r in ranks if r is not None and r <= n) / len(ranks), 4) if ranks else 0.0

    def metrics(self) -> dict[str, Any]:
        n_in = len(self.exact)
        out: dict[str, Any] = {"in_scope": n_in, "out_of_scope": self.oos, "followups": len(self.follow)}
        if n_in:
            out.update({
                "hit@1": self._at(self.exact, 1), "hit@3": self._at(self.exact, 3), "hit@5": self._at(self.exact, 5),
                "mrr@5": round(sum(1 / r for r in self.exact if r is not None and r <= 5) / n_in, 4),
                "any@3": self._at(self.any, 3), "any@5": self._at(self.any, 5),
                "in_scope_rejection": round(self.rejected / n_in, 4),
            })
        out["out_of_scope_accuracy"] = round(self.oos_flagged / self.oos, 4) if self.oos else None
        if self.follow:
            out.update({
                "followup_hit@3": self._at(self.follow, 3), "self_contained_hit@3": self._at(self.alone, 3),
                "followup_any@5": self._at(self.follow_any, 5), "self_contained_any@5": self._at(self.alone_any, 5),
                "followup_rejection": round(self.follow_rejected / len(self.follow), 4),
            })
            out["followup_gap@3"] = round(out["self_contained_hit@3"] - out["followup_hit@3"], 4)
        return out


def evaluate(retriever: Any, items: list[dict[str, Any]], k: int = 5, kb: str | None = None,
             cancel: Any = None) -> Iterator[Event]:
    """Yields Progress per question, then Data(metrics)."""
    depth = max(k, 5)
    groups: dict[str, _Tally] = {"all": _Tally()}
    misses: list[dict[str, Any]] = []
    seconds: list[float] = []

    def search(question: str, history: list[dict[str, str]] | None = None):
        started = time.perf_counter()
        result = retriever.search(question, k=depth, kb=kb, history=history) if history else \
            retriever.search(question, k=depth, kb=kb)
        seconds.append(time.perf_counter() - started)
        return result

    def top(result) -> list[str]:
        return [f"{PurePosixPath(h.source).name}:{h.start_line}-{h.end_line}" for h in result.hits[:3]]

    for index, item in enumerate(items, 1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        tallies = [groups["all"]]
        for key in (f"split:{item['split']}" if item.get("split") else None,
                    f"kind:{item['kind']}" if item.get("kind") else None):
            if key:
                tallies.append(groups.setdefault(key, _Tally()))
        if item.get("out_of_scope"):
            result = search(item["question"])
            for t in tallies:
                t.oos += 1
                t.oos_flagged += not result.covered
            if result.covered:
                misses.append({"question": item["question"], "why": "out of scope but covered",
                               "coverage": result.coverage})
        elif item.get("history"):
            result = search(item["question"], item["history"])
            alone = search(item["self_contained"])
            ranks = (_rank(result.hits, item, is_hit), _rank(result.hits, item, states_answer),
                     _rank(alone.hits, item, is_hit), _rank(alone.hits, item, states_answer))
            for t in tallies:
                t.follow.append(ranks[0] if result.covered else None)
                t.follow_any.append(ranks[1] if result.covered else None)
                t.alone.append(ranks[2] if alone.covered else None)
                t.alone_any.append(ranks[3] if alone.covered else None)
                t.follow_rejected += not result.covered
            if ranks[0] is None or ranks[0] > 3 or not result.covered:
                misses.append({"question": item["question"], "query": result.query, "rank": ranks[0],
                               "self_contained_rank": ranks[2], "covered": result.covered, "top": top(result)})
        else:
            result = search(item["question"])
            exact, any_rank = _rank(result.hits, item, is_hit), _rank(result.hits, item, states_answer)
            for t in tallies:
                t.exact.append(exact)
                t.any.append(any_rank)
                t.rejected += not result.covered
            if exact is None or exact > 3 or not result.covered:
                misses.append({"question": item["question"], "rank": exact, "any_rank": any_rank,
                               "covered": result.covered, "coverage": result.coverage,
                               "gold": f"{item['start_line']}-{item['end_line']}", "top": top(result)})
        yield Progress("evaluating retrieval", index, len(items))
    metrics = {"questions": len(items), "k": k, **groups["all"].metrics()}
    if seconds:
        metrics["query_ms_p50"] = round(statistics.median(seconds) * 1000, 1)
        metrics["query_ms_p95"] = round(sorted(seconds)[int(0.95 * (len(seconds) - 1))] * 1000, 1)
    metrics["groups"] = {name: t.metrics() for name, t in sorted(groups.items()) if name != "all"}
    metrics["misses"] = misses
    yield Data(metrics)
