"""End to end on the built-in course notes: eval goals, retrieve/ask CLI, chat commands, the service."""

from __future__ import annotations

import json
import re

import pytest

from assistant import knowledge_dir
from assistant.events import Collected, Notice

QA = knowledge_dir() / "qa" / "retrieval_qa.jsonl"


@pytest.mark.slow
def test_eval_on_the_real_qa_set_meets_the_goals(notes_home, run_cli):
    code, out, err = run_cli("eval", "retrieval", str(QA), "--json")
    assert code == 0, err
    m = json.loads(out.strip().splitlines()[-1])
    assert m["questions"] >= 60 and m["out_of_scope"] >= 5
    assert m["hit@3"] >= 0.90, m["misses"]
    assert m["mrr@5"] >= 0.85
    assert m["hit@1"] <= m["hit@3"] <= m["hit@5"]
    assert m["out_of_scope_accuracy"] >= 0.93
    assert m["in_scope_rejection"] <= 0.02


def test_retrieve_json_one_line_per_input_line_with_true_line_ranges(notes_home, run_cli):
    lines = ["What does the KL term in the VAE loss do?", "", "How do I bake sourdough bread?"]
    code, out, err = run_cli("retrieve", "--k", "3", "--json", stdin="\n".join(lines) + "\n")
    assert code == 0, err
    rows = [json.loads(x) for x in out.strip().split("\n")]
    assert [r["question"] for r in rows] == lines
    first, empty, bread = rows
    assert first["covered"] and len(first["hits"]) == 3 and not empty["hits"] and not bread["covered"]
    assert bread["hits"]  # the closest passages are still shown
    for hit in first["hits"]:
        assert set(hit) >= {"source", "heading", "start_line", "end_line", "score", "text"}
        file_lines = (knowledge_dir().parent / hit["source"]).read_text(encoding="utf-8").split("\n")
        assert hit["text"] == "\n".join(file_lines[hit["start_line"] - 1:hit["end_line"]]).strip("\n")
        assert " > " in hit["heading"]
    assert any(h["source"] == "knowledge/vae.md" for h in first["hits"])


def test_ask_extractive_answers_with_valid_citations_and_sources(notes_home, run_cli):
    code, out, err = run_cli("--model", "extractive", "ask", "How does the reparameterization trick let gradients flow?",
                             "--json")
    assert code == 0, err
    data = json.loads(out.strip().splitlines()[-1])
    assert data["covered"] and data["sources"] and data["answer"].strip()
    cited = [int(n) for group in re.findall(r"\[([\d, ]+)\]", data["answer"]) for n in group.split(",")]
    assert cited and all(1 <= n <= len(data["sources"]) for n in cited)
    assert data["sources"][0]["source"].startswith("knowledge/") and data["sources"][0]["start_line"] >= 1

    code, out, err = run_cli("--model", "extractive", "ask", "Who won the 2018 FIFA World Cup?")
    assert code == 0, err
    assert out.startswith("Not covered by the course notes") and "Sources:" in out and "knowledge/" in out


def test_a_question_naming_what_the_notes_never_mention_is_not_covered(notes_home, run_cli):
    # Close to the notes (chat models, tuning, rewards) but about a method they never name.
    lines = ["How does RLHF align a chat model with human preferences?",
             "How does the Wasserstein loss make GAN training smoother?"]
    code, out, err = run_cli("retrieve", "--json", stdin="\n".join(lines) + "\n")
    assert code == 0, err
    rlhf, wasserstein = (json.loads(x) for x in out.strip().split("\n"))
    assert not rlhf["covered"] and rlhf["unknown_names"] == ["RLHF"]
    assert wasserstein["covered"] and wasserstein["unknown_names"] == []  # the notes name it: no penalty
    code, out, err = run_cli("--model", "extractive", "ask", lines[0])
    assert code == 0 and out.startswith("Not covered by the course notes") and "never mentions RLHF" in out, err


def test_ask_retrieval_only_and_bad_k(notes_home, run_cli):
    code, out, err = run_cli("ask", "what is classifier-free guidance", "--retrieval-only", "--k", "2")
    assert code == 0, err
    assert "Sources:" in out and "knowledge/diffusion.md" in out
    code, _, err = run_cli("ask", "x", "--k", "0")
    assert code == 1 and "--k must be between" in err


def test_chat_commands_and_retriever_service(notes_home, make_context, tmp_path):
    from assistant.router import dispatch

    context = make_context(notes_home)
    context.config.set("llm.backend", "extractive", save=False)
    asked = Collected(dispatch("/ask what is a LoRA adapter --k 3", context))
    assert not asked.errors and len(asked.sources) == 3 and asked.text.strip()
    assert any(s.source == "knowledge/lora-finetuning.md" for s in asked.sources)

    # Another plugin's view: context.retriever
    result = context.retriever.search("cosine noise schedule", k=2)
    assert result.covered and result.hits[0].source == "knowledge/diffusion.md"

    # /kb switches the knowledge base (persisted); a new one starts empty
    switched = Collected(dispatch("/kb scratch", context))
    assert context.config.get("rag.kb") == "scratch" and "scratch" in (context.home / "config.toml").read_text()
    assert any("empty" in n.message for n in switched.of(Notice))
    empty = Collected(dispatch("/ask what is a LoRA adapter", context))
    assert empty.text.startswith("Not covered") and not empty.sources

    note = tmp_path / "mine.md"
    note.write_text("# Mine\n\nMy own note says flow matching trains a velocity field.\n", encoding="utf-8")
    ingested = Collected(dispatch(f"/ingest {note}", context))
    assert "1 added" in ingested.text
    found = context.retriever.search("what does flow matching train")
    assert found.hits and found.hits[0].source == str(note.resolve())

    # Free text routed to the "ingest" intent: the words that name existing paths are ingested.
    from assistant.plugin import Request

    other = tmp_path / "other.txt"
    other.write_text("Consistency models map noise to data in one step.\n", encoding="utf-8")
    routed = Collected(context.registry.plugins["rag"].run(
        Request(text=f"please ingest {other} for me", command="ingest", intent="ingest"), context))
    assert not routed.errors and "1 added" in routed.text

    listing = Collected(dispatch("/kb", context)).text
    assert "* scratch" in listing and "default" in listing
    bad = Collected(dispatch("/ingest", context))
    assert bad.errors and "needs a file" in bad.errors[0].message


def test_the_warm_up_asks_the_retriever_whether_the_notes_are_indexed(home, notes_home, make_context):
    """The core's warm-up knows no rag file: it asks the `retriever` service."""
    from assistant.warmup import model_states, notes_are_indexed

    assert notes_are_indexed(make_context(notes_home))
    fresh = make_context(home.parent / "fresh-home")
    assert not notes_are_indexed(fresh)
    assert ("course notes", "not indexed yet: indexing now (first run only)") in model_states(fresh)
