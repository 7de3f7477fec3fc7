"""Answer evaluation on a QA file: does the whole pipeline (retrieval + model + checks) answer well?

Each line of the QA file is a retrieval QA line (see evaluate.py: "question",
"source", "start_line", "end_line", optional "also": [[a, b], ...] for other
ranges that state the same answer) plus "facts": a list of key facts, each a
list of alternative phrasings (case-insensitive substrings), e.g.
`[["backprop", "gradient"], ["differentiab", "sampl"]]`. Out-of-scope lines are
`{"question", "out_of_scope": true}`.

Scored per question and overall, with no LLM judge:

- correctness: share of the key facts the answer states (and the share of
  questions that state all of them);
- citation precision: share of the answer's `[n]` markers whose passage n
  overlaps the gold lines (gold range or one of "also");
- faithfulness: share of the answer's judged sentences that the grounding check
  (assistant.llm.grounding, lexical + MiniLM) finds supported by the passages;
- out of scope: share of out-of-scope questions declined, and of in-scope ones
  wrongly declined;
- seconds to the first streamed text and to the end of the answer (the model
  is loaded before the first question, and its load time reported apart).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterator

from assistant import Data, Event, Notice, Progress, Text

MARKERS = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
DECLINED = re.compile(r"not covered by the course notes|course notes do not cover|notes do not cover|"
                      r"do(?:es)? not cover this|retrieved course notes do not cover", re.I)


def load_answer_qa(path: str | Path) -> list[dict[str, Any]]:
    """The QA items, checked: in-scope items need "facts" (a list of lists of strings)."""
    from course_assistant_plugins.rag.evaluate import QaFileError, load_qa

    items = load_qa(path)
    for number, item in enumerate(items, 1):
        if item.get("out_of_scope"):
            continue
        facts = item.get("facts")
        if not (isinstance(facts, list) and facts and all(
                isinstance(f, list) and f and all(isinstance(a, str) and a.strip() for a in f) for f in facts)):
            raise QaFileError(f"{path}: question {number} needs \"facts\": a non-empty list of lists of phrasings")
    return items


def subset(items: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """At most `limit` items, in-scope and out-of-scope in the file's proportion, in file order."""
    if not limit or limit >= len(items):
        return items
    out_of_scope = [i for i in items if i.get("out_of_scope")]
    keep_oos = round(limit * len(out_of_scope) / len(items)) if out_of_scope else 0
    keep_oos = max(keep_oos, 1) if out_of_scope and limit > 1 else keep_oos
    chosen = set(map(id, [i for i in items if not i.get("out_of_scope")][:limit - keep_oos] + out_of_scope[:keep_oos]))
    return [i for i in items if id(i) in chosen]


def _normal(text: str) -> str:
    """Lower case, single spaces, no Markdown emphasis or code marks, LaTeX's `{,}` thousands separator as `,`."""
    return " ".join(text.replace("**", "").replace("`", "").replace("{,}", ",").lower().split())


def facts_found(answer: str, facts: list[list[str]]) -> list[bool]:
    text = _normal(answer)
    return [any(_normal(alt) in text for alt in alternatives) for alternatives in facts]


def gold_ranges(item: dict[str, Any]) -> list[tuple[int, int]]:
    ranges = [(int(item["start_line"]), int(item["end_line"]))]
    for extra in item.get("also") or []:
        ranges.append((int(extra[0]), int(extra[1])))
    return ranges


def on_gold(source: dict[str, Any], item: dict[str, Any]) -> bool:
    from course_assistant_plugins.rag.evaluate import same_source

    if not same_source(str(source["source"]), str(item["source"])):
        return False
    return any(source["start_line"] <= end and source["end_line"] >= start for start, end in gold_ranges(item))


def cited_numbers(answer: str) -> list[int]:
    return [int(n) for group in MARKERS.findall(answer) for n in re.findall(r"\d+", group)]


def declined(payload: dict[str, Any]) -> bool:
    """Retrieval said "not covered", or the model's reply opens with a refusal (an answer that merely ends
    with one, as the 1.5B model's sometimes do, still counts as an answer)."""
    from assistant import split_sentences

    sentences = split_sentences(str(payload.get("answer", "")))
    return not payload.get("covered", True) or not sentences or bool(DECLINED.search(sentences[0]))


def score(item: dict[str, Any], payload: dict[str, Any], embed_fn: Any = None) -> dict[str, Any]:
    """The scores of one answer (`payload` is the `ask --json` object)."""
    from assistant import check_support

    answer = str(payload.get("answer", ""))
    row: dict[str, Any] = {"question": item["question"], "answer": answer, "declined": declined(payload)}
    if item.get("out_of_scope"):
        row["out_of_scope"] = True
        return row
    sources = payload.get("sources") or []
    found = facts_found(answer, item["facts"]) if not row["declined"] else [False] * len(item["facts"])
    row["facts"] = round(sum(found) / len(found), 4)
    row["missing"] = [alternatives[0] for alternatives, ok in zip(item["facts"], found) if not ok]
    markers = cited_numbers(answer)
    good = sum(1 for n in markers if 1 <= n <= len(sources) and on_gold(sources[n - 1], item))
    row["citations"] = len(markers)
    row["citation_precision"] = round(good / len(markers), 4) if markers else None
    row["gold_retrieved"] = any(on_gold(s, item) for s in sources)
    if row["declined"]:
        row["faithfulness"] = None
    else:
        judged, unsupported = check_support(answer, [str(s.get("text", "")) for s in sources], embed_fn)
        row["faithfulness"] = round(1 - len(unsupported) / len(judged), 4) if judged else None
        row["unsupported"] = unsupported
    return row


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    inside = [r for r in rows if not r.get("out_of_scope")]
    outside = [r for r in rows if r.get("out_of_scope")]
    markers = sum(r["citations"] for r in inside)
    good = sum(round((r["citation_precision"] or 0) * r["citations"]) for r in inside)
    return {
        "questions": len(rows), "in_scope": len(inside), "out_of_scope": len(outside),
        "correctness": _mean([r["facts"] for r in inside]),
        "all_facts": _mean([1.0 if r["facts"] == 1 else 0.0 for r in inside]),
        "citation_precision": round(good / markers, 4) if markers else None,
        "answers_with_citations": _mean([1.0 if r["citations"] else 0.0 for r in inside if not r["declined"]]),
        "faithfulness": _mean([r["faithfulness"] for r in inside]),
        "out_of_scope_declined": _mean([1.0 if r["declined"] else 0.0 for r in outside]),
        "in_scope_declined": _mean([1.0 if r["declined"] else 0.0 for r in inside]),
        "gold_retrieved": _mean([1.0 if r["gold_retrieved"] else 0.0 for r in inside]),
        "first_token_s": _mean([r["first_token_s"] for r in rows]),
        "total_s": _mean([r["total_s"] for r in rows]),
        "first_token_s_answered": _mean([r["first_token_s"] for r in inside if not r["declined"]]),
        "total_s_answered": _mean([r["total_s"] for r in inside if not r["declined"]]),
    }


def wait_for_model(context: Any) -> float:
    """Load the model before the first question (so per-answer times are warm); returns the seconds waited."""
    started = time.perf_counter()
    load = getattr(context.llm, "load", None)
    if load is not None:
        try:
            load.wait(context.cancel)
        except Exception:  # noqa: BLE001 - the answers then fall back to extractive, with a notice
            pass
    return round(time.perf_counter() - started, 2)


def evaluate_answers(context: Any, retriever: Any, items: list[dict[str, Any]], k: int | None = None,
                     kb: str | None = None) -> Iterator[Event]:
    """Yields Progress (and the pipeline's warnings once) per question, then Data({"summary", "rows"})."""
    from assistant import embed_texts
    from course_assistant_plugins.rag.answer import answer

    yield from retriever.prepare(kb, cancel=context.cancel)
    load_s = wait_for_model(context)
    rows = []
    notices: set[str] = set()
    for index, item in enumerate(items, 1):
        context.cancel.raise_if_cancelled()
        started = time.perf_counter()
        first = None
        payload: dict[str, Any] = {}
        for event in answer(item["question"], context, retriever, k=k, kb=kb, as_json=True):
            if isinstance(event, Text) and first is None:
                first = time.perf_counter()
            elif isinstance(event, Data) and isinstance(event.obj, dict) and "answer" in event.obj:
                payload = event.obj
            elif isinstance(event, Notice) and event.level == "warning" and "extractive" in event.message:
                if event.message not in notices:  # a model that failed is said once, not per question
                    notices.add(event.message)
                    yield event
        total = time.perf_counter() - started
        row = score(item, payload, embed_fn=embed_texts)
        row["first_token_s"] = round((first or time.perf_counter()) - started, 3)
        row["total_s"] = round(total, 3)
        rows.append(row)
        yield Progress("evaluating answers", index, len(items))
    summary = summarise(rows)
    summary["model"] = backend_label(context)
    summary["temperature"] = float(context.config.get("llm.temperature"))
    summary["model_load_s"] = load_s
    yield Data({"summary": summary, "rows": rows})


def backend_label(context: Any) -> str:
    name = context.config.get("llm.backend")
    spec = getattr(context.llm, "spec", None)
    return f"{name} ({spec.label})" if spec is not None else str(name)


def report(result: dict[str, Any]) -> str:
    """The human-readable table of an evaluation."""
    s = result["summary"]

    def pct(value: float | None) -> str:
        return "  -  " if value is None else f"{value:5.2f}"

    lines = [f"{'question':<60} facts cite  faith declined  first   total"]
    for r in result["rows"]:
        if r.get("out_of_scope"):
            lines.append(f"{r['question'][:58]:<60} (out of scope)     {'yes' if r['declined'] else 'NO':>8} "
                         f"{r['first_token_s']:6.1f} {r['total_s']:7.1f}")
        else:
            lines.append(f"{r['question'][:58]:<60} {pct(r['facts'])} {pct(r['citation_precision'])} "
                         f"{pct(r['faithfulness'])} {'YES' if r['declined'] else 'no':>8} "
                         f"{r['first_token_s']:6.1f} {r['total_s']:7.1f}")
    lines.append("")
    lines.append(f"{s['model']}: {s['questions']} questions ({s['in_scope']} in scope, {s['out_of_scope']} out of scope); "
                 f"model load {s['model_load_s']} s")
    lines.append(f"correctness {pct(s['correctness'])} (all facts {pct(s['all_facts'])})  citation precision "
                 f"{pct(s['citation_precision'])} (answers citing {pct(s['answers_with_citations'])})  faithfulness "
                 f"{pct(s['faithfulness'])}")
    lines.append(f"out of scope declined {pct(s['out_of_scope_declined'])}  in scope declined {pct(s['in_scope_declined'])}"
                 f"  gold passage retrieved {pct(s['gold_retrieved'])}")
    lines.append(f"seconds per answer: first text {s['first_token_s_answered']}  total {s['total_s_answered']} "
                 f"(all questions: {s['first_token_s']} / {s['total_s']})")
    return "\n".join(lines) + "\n"
