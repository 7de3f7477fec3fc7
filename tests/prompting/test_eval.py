"""`assistant prompt eval`: scoring, format adherence and bad case files."""

from __future__ import annotations

import json

from assistant.llm.extractive import NO_PASSAGES
from course_assistant_plugins.prompting.evaluate import score


def test_eval_scores_keywords_and_answers(tmp_path, run_cli):
    cases = tmp_path / "cases.jsonl"
    # The extractive backend (no model) always replies with the same sentence.
    cases.write_text("\n".join(json.dumps(c) for c in [
        {"input": "q1", "keywords": NO_PASSAGES.lower().split()[:3]},
        {"input": "q2", "keywords": ["zebra"]},
        {"input": "q3", "answer": "42"},
    ]) + "\n", encoding="utf-8")
    code, out, _ = run_cli("--model", "extractive", "prompt", "eval", "zero-shot", str(cases), "--json")
    assert code == 0
    summary = json.loads(out.splitlines()[-1])
    assert summary["cases"] == 3 and summary["accuracy"] == round(1 / 3, 4)
    assert [r["score"] for r in summary["rows"]] == [1.0, 0.0, 0.0]
    assert summary["format_adherence"] == 1.0  # zero-shot: any non-empty reply
    code, out, _ = run_cli("--model", "extractive", "prompt", "eval", "cot", str(cases), "--limit", "2")
    assert code == 0 and "2 cases" in out and "format adherence 0.0%" in out  # no 'Answer:' line


def test_json_scoring_counts_fields():
    case = {"input": "x", "expected": {"name": "Ada Lovelace", "age": 36, "tags": ["b", "a"]}}
    assert score(case, {"answer": {"name": "ada lovelace", "age": 36, "tags": ["a", "b"]}}) == 1.0
    assert score(case, {"answer": {"name": "Ada", "age": "36", "tags": []}}) == 1 / 3
    assert score(case, {"answer": None}) == 0.0


def test_bad_case_files_are_one_line_errors(tmp_path, run_cli):
    code, _, err = run_cli("prompt", "eval", "cot", str(tmp_path / "missing.jsonl"))
    assert code == 1 and "missing.jsonl: no such file" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "answer": "1"}\n{"question": "b"}\n', encoding="utf-8")
    code, _, err = run_cli("prompt", "eval", "cot", str(bad))
    assert code == 1 and "bad.jsonl: line 2" in err and "'input'" in err
    code, _, err = run_cli("prompt", "eval", "nosuch", str(bad.with_name("x")))
    assert code == 1
