"""Incremental ingest into real stores (embedded Chroma, FAISS) with the real MiniLM."""

from __future__ import annotations

import json

import pytest

from assistant.cancel import Cancelled, CancelToken
from assistant.events import Collected, Notice, Progress

from .conftest import write

GAN = "# GANs\n\n## Training\n\nThe generator and the discriminator play a minimax game; the discriminator learns to tell real images from fakes.\n"
LORA = "# LoRA\n\n## Adapters\n\nLow-rank adapters add two small matrices to frozen attention weights; only they are trained.\n"
DIFF = "# Diffusion\n\n## Forward process\n\nNoise is added step by step until the image becomes pure Gaussian noise.\n"


def _kb(home, embeddings, name="course", **settings):
    from assistant.config import Config, resolve_home
    from course_assistant_plugins.rag.kb import KnowledgeBase

    config = Config(resolve_home(home))
    for key, value in settings.items():
        config.set(key, value, save=False)
    return KnowledgeBase(config, name, embeddings)


def _ingest(kb, paths, cancel=None):
    events = Collected(kb.ingest(paths, cancel=cancel))
    return events, events.data[-1]


@pytest.mark.parametrize("store", ["chroma", "faiss"])
def test_incremental_skip_change_delete(home, tmp_path, embeddings, store):
    from course_assistant_plugins.rag.retriever import Retriever

    docs = tmp_path / "docs"
    write(docs / "gan.md", GAN)
    write(docs / "lora.md", LORA)
    write(docs / "sub" / "diffusion.md", DIFF)
    kb = _kb(home, embeddings, **{"vector_store.kind": store})
    events, report = _ingest(kb, [docs])
    assert len(report.added) == 3 and report.chunks == 3 and not report.failed
    assert any(isinstance(e, Progress) and "chunks/s" in e.label for e in events)
    assert kb.store.count() == 3 and kb.chunk_count() == 3

    _, again = _ingest(kb, [docs])
    assert again.added == [] and again.updated == [] and len(again.skipped) == 3 and again.chunks == 0

    write(docs / "lora.md", LORA.replace("attention weights", "attention projections; rank r is tiny"))
    (docs / "sub" / "diffusion.md").unlink()
    _, third = _ingest(kb, [docs])
    assert [s.rsplit("/", 1)[-1] for s in third.updated] == ["lora.md"]
    assert [s.rsplit("/", 1)[-1] for s in third.removed] == ["diffusion.md"] and len(third.skipped) == 1
    assert kb.store.count() == 2 and kb.chunk_count() == 2

    manifest = json.loads(kb.manifest_path.read_text())
    assert sorted(p.rsplit("/", 1)[-1] for p in manifest["files"]) == ["gan.md", "lora.md"]
    assert manifest["store"] == store

    retriever = Retriever(kb.config, embeddings)
    result = retriever.search("what is the rank of the adapter matrices", k=2, kb="course")
    assert result.hits[0].source.endswith("lora.md") and "rank r is tiny" in result.hits[0].text
    assert all("Gaussian noise" not in h.text for h in result.hits)  # the deleted file is gone
    # A fresh process (new objects) reads the same persisted index.
    kb.close()
    reopened = _kb(home, embeddings, **{"vector_store.kind": store})
    assert reopened.store.count() == 2


def test_broken_files_are_reported_and_the_rest_goes_in(home, tmp_path, embeddings):
    from .helpers import encrypted_pdf, make_pdf

    docs = tmp_path / "docs"
    write(docs / "good.md", GAN)
    (docs / "slides.pdf").write_bytes(make_pdf([["Classifier-free guidance mixes two predictions."]]))
    write(docs / "page.html", "<h1>RAG</h1>\n<p>Retrieval finds passages before generation.</p>\n")
    (docs / "binary.md").write_bytes(bytes(range(256)) * 8)
    (docs / "locked.pdf").write_bytes(encrypted_pdf())
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf")
    (docs / "latin1.txt").write_bytes("na\xefve caf\xe9".encode("latin-1"))
    (docs / "ignored.bin").write_bytes(b"\x00\x01")
    kb = _kb(home, embeddings)
    events, report = _ingest(kb, [docs])
    assert sorted(s.rsplit("/", 1)[-1] for s in report.added) == ["good.md", "page.html", "slides.pdf"]
    failed = {f["path"].rsplit("/", 1)[-1]: f["error"] for f in report.failed}
    assert set(failed) == {"binary.md", "locked.pdf", "broken.pdf", "latin1.txt"}
    warnings = [e.message for e in events.of(Notice) if e.level == "warning"]
    assert len(warnings) == 4 and all("\n" not in w for w in warnings)
    assert not events.errors  # files inside a folder are warnings, not errors
    # An explicit broken file is an error; a missing path too.
    events, _ = _ingest(kb, [docs / "locked.pdf", tmp_path / "nope.md"])
    messages = sorted(e.message for e in events.errors)
    assert len(messages) == 2 and "no such file" in messages[0] and "encrypted" in messages[1]


def test_interrupted_ingest_is_completed_by_the_next_run(home, tmp_path, embeddings):
    docs = tmp_path / "docs"
    for i in range(6):
        write(docs / f"note{i}.md", f"# Note {i}\n\n" + f"Topic {i} paragraph about sampling and noise.\n\n" * 3)
    kb = _kb(home, embeddings, name="crash")
    import course_assistant_plugins.rag.kb as kbmod

    cancel = CancelToken()
    old = kbmod.COMMIT_CHUNKS
    kbmod.COMMIT_CHUNKS = 1  # commit after every file, so the cancel lands between files
    try:
        stream = kb.ingest([docs], cancel=cancel)
        with pytest.raises(Cancelled):
            for event in stream:
                if isinstance(event, Progress) and "chunks/s" in event.label and event.done >= 3:
                    cancel.cancel()
    finally:
        kbmod.COMMIT_CHUNKS = old
    partial = json.loads(kb.manifest_path.read_text())["files"]
    assert 0 < len(partial) < 6
    assert kb.chunk_count() == sum(f["chunks"] for f in partial.values())  # consistent at the stop
    _, report = _ingest(kb, [docs])
    assert len(report.skipped) == len(partial) and len(report.added) == 6 - len(partial)
    assert kb.chunk_count() == kb.store.count() == 6


def test_knowledge_bases_are_isolated_and_removable(home, tmp_path, embeddings, run_cli):
    write(tmp_path / "a" / "gan.md", GAN)
    write(tmp_path / "b" / "lora.md", LORA)
    code, out, err = run_cli("ingest", str(tmp_path / "a"), "--kb", "alpha", "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["added"][0].endswith("gan.md")
    code, out, _ = run_cli("ingest", str(tmp_path / "b"), "--kb", "beta", "--json")
    assert code == 0
    code, out, _ = run_cli("retrieve", "--kb", "alpha", "--json", stdin="low rank adapters\n")
    hits = json.loads(out)["hits"]
    assert hits and all(h["source"].endswith("gan.md") for h in hits)
    code, out, _ = run_cli("kb", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["alpha"]["chunks"] == 1 and rows["beta"]["chunks"] == 1 and rows["default"]["current"]
    code, out, _ = run_cli("kb", "remove", "beta")
    assert code == 0 and not (home / "index" / "beta").exists()
    code, out, err = run_cli("retrieve", "--kb", "beta", "--json", stdin="low rank adapters\n")
    assert code == 0 and json.loads(out) == {"question": "low rank adapters", "query": "low rank adapters",
                                            "followup": "none", "covered": False, "coverage": 0.0, "unknown_names": [],
                                            "hits": []}
    code, _, err = run_cli("ingest", str(tmp_path / "a"), "--kb", "bad/name")
    assert code == 1 and "invalid knowledge base name" in err


def test_heading_paths_are_embedded_once_and_lift_the_section_a_question_names(home, tmp_path, embeddings):
    import numpy as np

    from course_assistant_plugins.rag import retriever as retrieval
    from course_assistant_plugins.rag.retriever import Retriever

    # Two sections with near-identical bodies: only their headings tell them apart.
    body = "The layer takes the previous output and passes it on to the next step of the model.\n"
    write(tmp_path / "docs" / "notes.md", "# Notes\n\n## Attention heads\n\n" + body + "\n## Pooling layers\n\n" + body)
    kb = _kb(home, embeddings)
    _ingest(kb, [tmp_path / "docs"])
    vectors = kb.heading_vectors()
    assert set(vectors) == {"Notes > Attention heads", "Notes > Pooling layers"}
    assert all(v.shape == (384,) and abs(float(np.linalg.norm(v)) - 1.0) < 1e-3 for v in vectors.values())
    # A second ingest of unchanged files embeds nothing again and keeps them.
    _ingest(kb, [tmp_path / "docs"])
    assert {h: v.tobytes() for h, v in kb.heading_vectors().items()} == {h: v.tobytes() for h, v in vectors.items()}

    retriever = Retriever(kb.config, embeddings)
    for question, heading in (("What do attention heads do?", "Attention heads"),
                              ("What do pooling layers do?", "Pooling layers")):
        hits = retriever.search(question, k=2, kb="course").hits
        assert hits[0].heading.endswith(heading)

    # Each chunk's score carries HEADING_SHARE x the cosine of the question with its heading path.
    question = "What do pooling layers do?"
    query = np.asarray(embeddings.embed_query(question), dtype=np.float32)
    with_heading = {h.heading: h.score for h in Retriever(kb.config, embeddings).search(question, k=2, kb="course").hits}
    original = retrieval.HEADING_SHARE
    try:
        retrieval.HEADING_SHARE = 0.0
        without = {h.heading: h.score for h in Retriever(kb.config, embeddings).search(question, k=2, kb="course").hits}
    finally:
        retrieval.HEADING_SHARE = original
    for heading, score in with_heading.items():
        assert abs(score - without[heading] - original * float(vectors[heading] @ query)) < 1e-4


def test_built_in_notes_of_another_installation_are_replaced_not_duplicated(home, tmp_path, embeddings):
    # A checkout, then a wheel elsewhere, sharing one state directory: each has its own copy of the notes.
    checkout, wheel, mine = tmp_path / "checkout" / "knowledge", tmp_path / "site" / "knowledge", tmp_path / "mine"
    for folder in (checkout, wheel, mine):
        folder.mkdir(parents=True)
    for folder in (checkout, wheel):
        (folder / "lora.md").write_text(LORA, encoding="utf-8")
    (mine / "diffusion.md").write_text(DIFF, encoding="utf-8")
    kb = _kb(home, embeddings, name="default")
    _ingest_builtin = lambda builtin: Collected(kb.ingest([builtin, mine], builtin=builtin)).data[-1]  # noqa: E731
    first = _ingest_builtin(checkout)
    second = _ingest_builtin(wheel)
    assert len(first.added) == 2 and "lora.md" in " ".join(second.removed)
    manifest = kb.load_manifest()
    assert set(manifest["files"]) == {str(wheel.resolve() / "lora.md"), str(mine.resolve() / "diffusion.md")}
    assert str(checkout.resolve()) not in manifest["roots"]  # the user's own folder stays, the old copy goes
    assert len(kb.all_chunks()) == 2  # one chunk per note, no duplicate of the LoRA one
