"""`assistant eval answers`: scoring of answers against key facts, gold lines and the grounding check."""

from __future__ import annotations

import json

from assistant import knowledge_dir

NOTES_QA = knowledge_dir() / "qa" / "notes_answer_qa.jsonl"
COURSE_QA = knowledge_dir() / "qa" / "course_answer_qa.jsonl"


def _source(start: int, end: int, text: str = "", path: str = "knowledge/vae.md") -> dict:
    return {"source": path, "heading": "h", "start_line": start, "end_line": end, "score": 0.03, "text": text}


def test_score_counts_facts_citations_and_refusals():
    from course_assistant_plugins.rag.answer_eval import score, summarise

    item = {"question": "Why the trick?", "source": "knowledge/vae.md", "start_line": 55, "end_line": 73,
            "also": [[200, 201]], "facts": [["backprop", "gradient"], ["differentiab"], ["epsilon"]]}
    passage = "Sampling is not differentiable, so gradients cannot flow back into the encoder weights."
    payload = {"answer": "Sampling is not differentiable [1], so gradients cannot flow back [2, 3].", "covered": True,
               "sources": [_source(60, 62, passage), _source(100, 110), _source(200, 200, path="other/vae.md")]}
    row = score(item, payload)
    assert row["facts"] == round(2 / 3, 4) and row["missing"] == ["epsilon"]
    # [1] on the gold range; [2] elsewhere in the file; [3] on an "also" line range but in another file
    assert row["citations"] == 3 and row["citation_precision"] == round(1 / 3, 4)
    assert row["faithfulness"] == 1.0 and row["gold_retrieved"]

    refused = score(item, {"answer": "Not covered by the course notes.", "covered": True, "sources": []})
    assert refused["declined"] and refused["facts"] == 0.0 and refused["faithfulness"] is None
    late = score(item, {"answer": "Sampling is not differentiable, so gradients stop [1]. Not covered by the course "
                                  "notes.", "covered": True, "sources": payload["sources"]})
    assert not late["declined"] and late["facts"] == round(2 / 3, 4)  # an answer that ends with a refusal
    oos = score({"question": "bread?", "out_of_scope": True}, {"answer": "Not covered by the course notes: x",
                                                             "covered": False})
    for r in (row, refused, oos):
        r.update(first_token_s=0.1, total_s=1.0)
    summary = summarise([row, refused, oos])
    assert summary["out_of_scope_declined"] == 1.0 and summary["in_scope_declined"] == 0.5
    assert summary["correctness"] == round((2 / 3) / 2, 4) and summary["citation_precision"] == round(1 / 3, 4)


def test_invented_sentence_lowers_faithfulness():
    from course_assistant_plugins.rag.answer_eval import score

    item = {"question": "q", "source": "knowledge/vae.md", "start_line": 1, "end_line": 5, "facts": [["encoder"]]}
    passage = "The encoder outputs a mean and a log-variance for every latent dimension."
    payload = {"answer": "The encoder outputs a mean and a log-variance for every latent dimension. "
                         "Bananas ripen faster when stored beside apples in warm kitchens.",
               "covered": True, "sources": [_source(1, 5, passage)]}
    assert score(item, payload)["faithfulness"] == 0.5


def test_qa_sets_are_well_formed_and_point_at_real_lines():
    from course_assistant_plugins.rag.answer_eval import load_answer_qa

    course = knowledge_dir().parent.parent / "shared" / "course" / "module9-generative-ai.md"
    for path in (NOTES_QA, COURSE_QA):
        items = load_answer_qa(path)
        inside = [i for i in items if not i.get("out_of_scope")]
        assert 25 <= len(items) <= 45 and len(items) - len(inside) >= 5
        for item in inside:
            file = course if item["source"].endswith(course.name) else knowledge_dir().parent / item["source"]
            if file.is_file():
                assert int(item["end_line"]) <= len(file.read_text(encoding="utf-8").splitlines())


def test_eval_answers_cli_with_the_extractive_backend(notes_home, run_cli):
    code, out, err = run_cli("eval", "answers", str(NOTES_QA), "--model", "extractive", "--limit", "6", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    summary, rows = result["summary"], result["rows"]
    assert summary["questions"] == len(rows) == 6 and summary["out_of_scope"] >= 1
    assert summary["model"] == "extractive" and summary["temperature"] == 0.0  # greedy: runs repeat
    assert summary["out_of_scope_declined"] == 1.0 and summary["in_scope_declined"] == 0.0
    assert summary["correctness"] > 0.5
    answered = [r for r in rows if r.get("citations")]
    # Most answers quote (and cite) the gold passage when retrieval found it.
    assert sum(1 for r in answered if r["citation_precision"] > 0) * 2 > len(answered)
    assert summary["faithfulness"] >= 0.9  # quotes are supported by construction
    assert all(r["total_s"] >= r["first_token_s"] >= 0 for r in rows)

    code, out, err = run_cli("eval", "answers", str(NOTES_QA), "--model", "extractive", "--limit", "3")
    assert code == 0, err
    assert "correctness" in out and "citation precision" in out and "out of scope declined" in out
    code, _, err = run_cli("eval", "answers", str(NOTES_QA), "--limit", "0")
    assert code == 1 and "--limit" in err


def test_ask_dash_prints_one_json_line_per_answer_with_one_model_load(notes_home, run_cli, monkeypatch):
    """`ask -` is JSON without --json; plain lines and JSON lines with history; bad lines become error lines;
    the model (SmolLM2 here) is loaded once for the whole batch."""
    import io
    import tempfile
    from pathlib import Path

    from assistant.llm import hf_local

    cache = Path(tempfile.gettempdir()) / "course-assistant-test-models"  # shared with tests/llm
    (notes_home / "config.toml").write_text(
        f'[llm]\nbackend = "smollm2"\ncache_dir = "{cache}"\nmax_tokens = 12\ntemperature = 0.0\n', encoding="utf-8")
    hf_local.forget_loads()
    loads = []
    original = hf_local.Load.__init__
    monkeypatch.setattr(hf_local.Load, "__init__", lambda self, *a, **k: loads.append(a) or original(self, *a, **k))
    lines = ["What does the KL term in the VAE loss do?", "",
             json.dumps({"question": "How is it computed in closed form?",
                         "history": [{"role": "user", "content": "What does the KL term in the VAE loss do?"}]}),
             "{oops", "Who won the 2018 FIFA World Cup?"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, err = run_cli("ask", "-")
    hf_local.forget_loads()
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 4 and [r.get("line") for r in rows] == [None, None, 4, None]
    first, followup, bad, oos = rows
    assert first["covered"] and first["sources"] and first["answer"].strip()
    assert followup["query"] != followup["question"] and "KL" in followup["query"]
    assert "not valid JSON" in bad["error"]
    assert not oos["covered"] and oos["answer"].startswith("Not covered")
    assert all(r["seconds"]["total"] >= r["seconds"]["first_text"] >= 0 for r in (first, followup, oos))
    assert len(loads) == 1  # one model load for the batch
