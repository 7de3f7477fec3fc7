"""The Chroma server backend against a real `chroma run` started and stopped here."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from assistant.events import Collected

from .conftest import write


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists():
        exe = Path(shutil.which("chroma") or "chroma")
    port = _free_port()
    log = open(tmp_path / "chroma.log", "wb")
    proc = subprocess.Popen([str(exe), "run", "--path", str(tmp_path / "server-db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/api/v2/heartbeat", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("chroma server did not start: " + (tmp_path / "chroma.log").read_text()[-500:])
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_ingest_and_search_through_a_chroma_server(home, tmp_path, make_context, chroma_server):
    import chromadb

    from course_assistant_plugins.rag.retriever import Retriever

    write(tmp_path / "docs" / "gan.md", "# GANs\n\n## Mode collapse\n\nThe generator keeps producing the same few samples.\n")
    write(tmp_path / "docs" / "rag.md", "# RAG\n\n## Chunking\n\nSplit documents into passages that keep their headings.\n")
    context = make_context(home, **{"vector_store.url": chroma_server})
    retriever = Retriever(context.config)
    report = Collected(retriever.knowledge_base("srv").ingest([tmp_path / "docs"])).data[-1]
    assert len(report.added) == 2 and not report.failed

    port = int(chroma_server.rsplit(":", 1)[1])
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    collection = client.get_collection("course-kb-srv")
    assert collection.count() == 2  # the vectors live on the server
    assert not (home / "index" / "srv" / "chroma").exists()

    result = retriever.search("why does my generator output identical images", k=2, kb="srv")
    assert result.hits[0].source.endswith("gan.md") and result.hits[0].heading == "GANs > Mode collapse"

    retriever.knowledge_base("srv").remove()
    assert "course-kb-srv" not in [c.name for c in client.list_collections()]


def test_unreachable_server_is_one_clear_error(home, tmp_path, run_cli):
    from .test_chroma_server import _free_port

    (home / "config.toml").write_text(f'[vector_store]\nurl = "http://127.0.0.1:{_free_port()}"\n')
    write(tmp_path / "n.md", "# N\n\nSome text about latent spaces.\n")
    code, out, err = run_cli("ingest", str(tmp_path / "n.md"), "--kb", "remote")
    assert code == 1 and "cannot reach the Chroma server" in err and "Traceback" not in err
