"""`assistant prompt eval NAME cases.jsonl`: run a template over cases and score it.

A case is one JSON object per line:
  {"input": "...", "answer": "42"}                  exact answer (numbers normalised)
  {"input": "...", "keywords": ["a", "b"]}          every keyword must appear
  {"input": "...", "fields": "name:string,...",      JSON extraction: expected values
   "expected": {"name": "Ada"}}
Optional "options" per case (task, persona, schema, ...). Accuracy and format
adherence are reported, so two templates can be compared on the same file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from assistant import Cancelled, Context, Data, Error, Event, Notice, Progress, Text, UserError

from course_assistant_plugins.prompting import answers


class CaseError(UserError, ValueError):
    pass


def load_cases(path: str | Path) -> list[dict[str, Any]]:
    from assistant import read_jsonl

    file = Path(path).expanduser()
    cases = []
    for number, case in read_jsonl(file, CaseError):
        if not isinstance(case.get("input"), str):
            raise CaseError(f"{file}: line {number}: field 'input' (a string) is missing")
        if not any(k in case for k in ("answer", "keywords", "expected")):
            raise CaseError(f"{file}: line {number}: give 'answer', 'keywords' or 'expected'")
        cases.append(case)
    if not cases:
        raise CaseError(f"{file}: no cases")
    return cases


def _same_value(got: Any, want: Any) -> bool:
    if isinstance(want, list):
        return isinstance(got, list) and sorted(answers.normalize(str(v)) for v in got) == sorted(
            answers.normalize(str(v)) for v in want)
    if isinstance(want, bool) or want is None:
        return got == want
    return answers.normalize(str(got)) == answers.normalize(str(want))


def score(case: dict[str, Any], result: dict[str, Any]) -> float:
    """1.0 for a right answer, 0.0 for a wrong one; JSON cases score the share of right fields."""
    got = result.get("answer")
    if "expected" in case:
        want = case["expected"]
        if not isinstance(got, dict) or not isinstance(want, dict) or not want:
            return 0.0
        return sum(_same_value(got.get(k), v) for k, v in want.items()) / len(want)
    if got is None:
        return 0.0
    if "answer" in case:
        # A technique without answer extraction (zero-shot) is judged on the answer its reply states.
        return float(answers.answers_match(str(got), str(case["answer"]))
                     or answers.answers_match(answers.extract_answer(str(got))[0], str(case["answer"])))
    text = str(got).lower()
    return float(all(str(k).lower() in text for k in case["keywords"]))


def run_cases(context: Context, name: str, cases: list[dict[str, Any]], options: dict[str, Any]) -> Iterator[Event]:
    """Progress events while running; returns (rows, summary)."""
    from course_assistant_plugins.prompting import templates_for, unknown_template
    from course_assistant_plugins.prompting.techniques import Run, execute

    templates = templates_for(context)
    if name not in templates:
        yield unknown_template(name, templates)
        return [], {}
    rows: list[dict[str, Any]] = []
    for i, case in enumerate(cases):
        yield Progress(f"eval {name}", i, len(cases))
        case_options = {**options, **{k: case[k] for k in ("fields", "schema") if k in case}}
        extra = case.get("options", {})
        case_options.update({k: v for k, v in extra.items() if k != "vars"})
        case_options["vars"] = {**(options.get("vars") or {}), **extra.get("vars", {})}
        run = Run(context, templates[name], case["input"], case_options, stream=False)
        error = ""
        try:
            for event in execute(run):
                if isinstance(event, Error):
                    error = event.line()
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad case must not stop the evaluation
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        result = run.result or {}
        rows.append({"case": i + 1, "input": case["input"][:80], "answer": result.get("answer"),
                     "expected": case.get("answer", case.get("expected", case.get("keywords"))),
                     "score": score(case, result) if not error else 0.0,
                     "format_ok": bool(result.get("format_ok")) and not error, "error": error,
                     **({"valid": result.get("valid", False), "first_try_valid": result.get("first_try_valid", False),
                         "repaired": bool(result.get("repairs")) or result.get("reprompts", 0) > 0}
                        if templates[name].technique == "json" else {}),
                     **({"agreement": result.get("agreement"), "votes": result.get("votes"),
                         "path_answers": [p["answer"] for p in result.get("paths", [])]}
                        if "agreement" in result else {})})
    yield Progress(f"eval {name}", len(cases), len(cases))
    n = len(rows)
    summary: dict[str, Any] = {
        "template": name, "technique": templates[name].technique, "cases": n,
        "accuracy": round(sum(r["score"] for r in rows) / n, 4),
        "format_adherence": round(sum(r["format_ok"] for r in rows) / n, 4),
        "errors": sum(bool(r["error"]) for r in rows),
    }
    if templates[name].technique == "json":
        summary["json_valid"] = round(sum(bool(r.get("valid")) for r in rows) / n, 4)
        summary["json_valid_first_try"] = round(sum(bool(r.get("first_try_valid")) for r in rows) / n, 4)
    return rows, summary


def evaluate(context: Context, name: str, cases_path: str, options: dict[str, Any], limit: int | None = None,
             as_json: bool = True) -> Iterator[Event]:
    try:
        cases = load_cases(cases_path)
    except CaseError as exc:
        yield Error(str(exc))
        return
    if limit is not None:
        if limit < 1:
            yield Error(f"--limit must be at least 1, got {limit}")
            return
        cases = cases[:limit]
    rows, summary = yield from run_cases(context, name, cases, options)
    if not summary:
        return
    if summary["errors"]:
        yield Notice("warning", f"{summary['errors']} of {summary['cases']} cases ended in an error")
    lines = [f"{name}: {summary['cases']} cases, accuracy {summary['accuracy']:.1%}, "
             f"format adherence {summary['format_adherence']:.1%}"]
    if "json_valid" in summary:
        lines.append(f"valid JSON {summary['json_valid']:.1%} (first try {summary['json_valid_first_try']:.1%})")
    if as_json:
        yield Data({**summary, "rows": rows})
        return
    table = ["| # | score | format | answer | expected |", "|---|---|---|---|---|"]
    table += [f"| {r['case']} | {r['score']:.2f} | {'ok' if r['format_ok'] else 'no'} | "
              f"{json.dumps(r['answer'], ensure_ascii=False)[:50]} | {json.dumps(r['expected'], ensure_ascii=False)[:50]} |"
              for r in rows]
    yield Text("\n".join(table) + "\n\n" + "\n".join(lines) + "\n")
