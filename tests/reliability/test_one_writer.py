"""One writer per knowledge base: a lock around ingest and remove; FAISS reloads what another process wrote."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant.events import Collected, Notice
from tests.reliability.hostile import run_cli_process

TOPICS = {
    "a": ["wasserstein critic clipping", "beta schedule cosine warmup", "tokenizer byte pair merges"],
    "b": ["frechet inception distance statistics", "lora rank alpha scaling", "classifier free guidance scale"],
}


def _folders(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, topics in TOPICS.items():
        folder = tmp_path / f"folder-{name}"
        folder.mkdir()
        for i, topic in enumerate(topics):
            (folder / f"{name}{i}.md").write_text(f"# {topic.title()}\n\nThis note explains {topic} in detail, "
                                                  f"with {topic} as its only subject.\n", encoding="utf-8")
        out[name] = folder
    return out


@pytest.mark.slow
@pytest.mark.parametrize("store", ["faiss", "chroma"])
def test_two_processes_ingesting_into_one_kb_lose_nothing(home, tmp_path, embeddings, store):
    (home / "config.toml").write_text(f'[vector_store]\nkind = "{store}"\n', encoding="utf-8")
    folders = _folders(tmp_path)
    runs = [run_cli_process(home, "ingest", str(f), "--kb", "shared") for f in folders.values()]
    outputs = [p.communicate(timeout=300) for p in runs]
    for p, (out, err) in zip(runs, outputs):
        assert p.returncode == 0, err
    from assistant.config import Config, resolve_home
    from course_assistant_plugins.rag.retriever import Retriever

    retriever = Retriever(Config(resolve_home(home)), embeddings)
    kb = retriever.knowledge_base("shared")
    every = {str(f.resolve()) for folder in folders.values() for f in folder.iterdir()}
    assert set(kb.files()) == every
    assert kb.store.count() == kb.chunk_count() == len(every)  # vectors and chunk table agree: nothing lost
    for name, topics in TOPICS.items():
        for i, topic in enumerate(topics):
            hits = retriever.search(f"what is {topic}?", k=1, kb="shared").hits
            assert hits and hits[0].source.endswith(f"{name}{i}.md"), (topic, hits[:1])


def test_a_second_writer_waits_with_a_message_or_fails_clearly(home, tmp_path, embeddings, monkeypatch):
    from assistant.config import Config, resolve_home
    from course_assistant_plugins.rag import kb as kbmod

    config = Config(resolve_home(home))
    folder = _folders(tmp_path)["a"]
    holder = kbmod.KnowledgeBase(config, "shared", embeddings).writer_lock()
    assert holder.try_acquire()

    monkeypatch.setattr(kbmod, "LOCK_WAIT_SECONDS", 0.3)
    with pytest.raises(kbmod.KbError, match=r"knowledge base 'shared' is being written by another process \(pid \d+\)"):
        Collected(kbmod.KnowledgeBase(config, "shared", embeddings).ingest([folder]))
    with pytest.raises(kbmod.KbError, match="being written"):
        kbmod.KnowledgeBase(config, "shared", embeddings).remove()

    monkeypatch.setattr(kbmod, "LOCK_WAIT_SECONDS", 60)
    seen: list = []
    second = kbmod.KnowledgeBase(config, "shared", embeddings)
    worker = threading.Thread(target=lambda: seen.extend(second.ingest([folder])))
    worker.start()
    worker.join(1.0)
    assert worker.is_alive()  # waiting, not writing
    assert any(isinstance(e, Notice) and "waiting for it to finish" in e.message for e in seen)
    holder.release()
    worker.join(60)
    assert not worker.is_alive() and len(seen[-1].obj.added) == 3


def test_a_long_lived_faiss_reader_sees_what_another_process_wrote(home, tmp_path, embeddings):
    (home / "config.toml").write_text('[vector_store]\nkind = "faiss"\n', encoding="utf-8")
    from assistant.config import Config, resolve_home
    from course_assistant_plugins.rag.retriever import Retriever

    folders = _folders(tmp_path)
    chat = Retriever(Config(resolve_home(home)), embeddings)
    list(chat.knowledge_base("shared").ingest([folders["a"]]))
    out, err = run_cli_process(home, "ingest", str(folders["b"]), "--kb", "shared").communicate(timeout=300)
    assert "added" in out, err
    hits = chat.search("what is lora rank alpha scaling?", k=1, kb="shared").hits
    assert hits and hits[0].source.endswith("b1.md")
    # ... and the chat's next ingest keeps the other process's vectors.
    (folders["a"] / "a9.md").write_text("# Extra\n\nAn extra note on mode collapse.\n", encoding="utf-8")
    list(chat.knowledge_base("shared").ingest([folders["a"]]))
    kb = chat.knowledge_base("shared")
    assert kb.store.count() == kb.chunk_count() == 7
