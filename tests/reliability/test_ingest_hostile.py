"""Folder ingest on hostile input: links out of the folder, link loops, bombs, huge files, free text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.cancel import Cancelled
from assistant.events import Collected, Notice
from tests.reliability.hostile import shared_stream_pdf

NOTE = "# Notes\n\nThe discriminator scores images as real or fake during adversarial training.\n"


def _kb(home, embeddings, name="hostile"):
    from assistant.config import Config, resolve_home
    from plugins.rag.kb import KnowledgeBase

    return KnowledgeBase(Config(resolve_home(home)), name, embeddings)


def test_links_out_of_the_folder_are_reported_not_followed_and_loops_do_not_stop_the_folder(home, tmp_path,
                                                                                          embeddings):
    secret = tmp_path / "ssh" / "id_ed25519.md"
    secret.parent.mkdir()
    secret.write_text("# Key\n\nPRIVATE-KEY-MATERIAL-XYZ\n", encoding="utf-8")
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "gan.md").write_text(NOTE, encoding="utf-8")
    (notes / "sub" / "vae.md").write_text("# VAE\n\nThe encoder outputs a mean and a variance.\n", encoding="utf-8")
    os.symlink(secret, notes / "key.md")                   # a file outside the folder
    os.symlink(secret.parent, notes / "ssh-dir")           # a folder outside it
    os.symlink(notes, notes / "sub" / "loop")              # a loop back to the root
    os.symlink(notes / "loop2", notes / "loop2")           # a link to itself
    os.symlink(notes / "gan.md", notes / "alias.md")       # inside: read once, not twice

    kb = _kb(home, embeddings)
    events = Collected(kb.ingest([notes]))
    report = events.data[-1]
    indexed = set(kb.files())
    assert indexed == {str((notes / "gan.md").resolve()), str((notes / "sub" / "vae.md").resolve())}
    assert "PRIVATE-KEY" not in " ".join(row[5] for row in kb.all_chunks())
    reasons = {Path(f["path"]).name: f["error"] for f in report.failed}
    assert "outside" in reasons["key.md"] and "outside" in reasons["ssh-dir"]
    assert "loop" in reasons["loop2"] and any("reached twice" in r or "loop" in r for r in reasons.values())
    warnings = [n.message for n in events.of(Notice)]
    assert any("key.md" in w and "not followed" in w for w in warnings)
    assert kb.chunk_count() == 2  # the alias did not duplicate gan.md


def test_pdf_bomb_is_capped_with_a_one_line_report(tmp_path, monkeypatch):
    from plugins.rag import loaders

    monkeypatch.setattr(loaders, "MAX_CHARS", 30_000)
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(shared_stream_pdf(400))  # ~1.7M characters of text when fully extracted
    doc = loaders.load(bomb)
    assert sum(len(b.text) for b in doc.blocks) <= 30_000
    assert len(doc.notes) == 1 and "\n" not in doc.notes[0]
    assert "more than 30,000 characters" in doc.notes[0] and "of 400" in doc.notes[0]

    monkeypatch.setattr(loaders, "MAX_PDF_PAGES", 5)
    assert "more than 5 pages; indexed pages 1-5 of 400" in loaders.load(bomb).notes[0]
    monkeypatch.setattr(loaders, "MAX_PARSE_SECONDS", 0.0)
    assert "reading took more than" in loaders.load(bomb).notes[0]


def test_cancel_is_checked_per_page(tmp_path):
    from plugins.rag import loaders

    class CancelAfter:
        def __init__(self, pages: int):
            self.left = pages

        def raise_if_cancelled(self) -> None:
            self.left -= 1
            if self.left < 0:
                raise Cancelled()

    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(shared_stream_pdf(50))
    token = CancelAfter(3)
    with pytest.raises(Cancelled):
        loaders.load(bomb, cancel=token)
    assert token.left == -1  # stopped at the 4th page, not after the file


def test_size_is_checked_by_stat_before_reading(home, tmp_path, embeddings, monkeypatch):
    from plugins.rag import loaders

    monkeypatch.setattr(loaders, "MAX_FILE_BYTES", 1000)
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "huge.md").write_text("# Big\n\n" + "word " * 1000, encoding="utf-8")
    (folder / "small.md").write_text(NOTE, encoding="utf-8")
    read: list[str] = []
    original = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self.name) or original(self))
    kb = _kb(home, embeddings)
    report = Collected(kb.ingest([folder])).data[-1]
    assert "huge.md" not in read and "small.md" in read
    assert next(f["error"] for f in report.failed if f["path"].endswith("huge.md")).endswith("limit")
    assert len(report.added) == 1


def test_free_text_ingest_needs_an_explicit_path_and_a_folder_asks_first(home, tmp_path, make_context,
                                                                          monkeypatch):
    from assistant.plugin import Request

    cwd = tmp_path / "home-folder"
    cwd.mkdir()
    (cwd / "diary.md").write_text("# Private\n\nMy diary.\n", encoding="utf-8")
    monkeypatch.chdir(cwd)
    context = make_context(home, **{"rag.kb": "freetext"})
    rag = context.registry.plugins["rag"]

    def say(text: str) -> Collected:
        return Collected(rag.run(Request(text=text, command="ingest", intent="ingest"), context))

    vague = say("please ingest my lecture notes ...")
    assert vague.errors and "needs a file or folder" in vague.errors[0].message
    folder = say(f"please ingest {cwd} for me")
    assert not folder.errors and any(f"/ingest {cwd}" in n.message for n in folder.of(Notice))
    assert context.retriever.knowledge_base("freetext").is_empty()  # nothing indexed without a yes
    done = say(f"please ingest {cwd / 'diary.md'}.")
    assert "1 added" in done.text


def test_pypdf_floor_excludes_the_versions_with_known_advisories():
    import re
    import tomllib
    from importlib.metadata import version

    deps = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
    floor = next(re.search(r"pypdf>=([\d.]+)", d).group(1) for d in deps if d.startswith("pypdf"))
    def as_tuple(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split(".")[:2])

    assert as_tuple(floor) >= (6, 12)  # the last 2026 fixes for RAM-exhaustion / endless-loop advisories
    assert as_tuple(version("pypdf")) >= as_tuple(floor)
