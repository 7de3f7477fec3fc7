"""Vector stores behind one small interface, chosen by config `vector_store`:

- Chroma embedded and persistent (default), through langchain-chroma;
- a Chroma server (`vector_store.url = "http://127.0.0.1:8000"`);
- FAISS (`vector_store.kind = "faiss"`): an exact inner-product index with
  its vectors and ids saved together in one .npz, written atomically.

Every store embeds with the MiniLM we pass in (never Chroma's default model)
and answers `search(vector, n) -> [(chunk_id, cosine)]`. Chunk text and
metadata live in the knowledge base's own table; stores keep vectors, ids and
the file path (to delete a file's chunks).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

from assistant import UserError


class StoreError(UserError):
    pass


def store_key(config: Any) -> str:
    """Identifies where vectors live; a knowledge base re-indexes when it changes."""
    kind = str(config.get("vector_store.kind")).lower()
    url = str(config.get("vector_store.url"))
    if kind not in ("chroma", "faiss"):
        raise StoreError(f"unknown vector_store.kind {kind!r}; use 'chroma' or 'faiss'")
    if kind == "chroma" and url:
        return f"chroma-server:{url.rstrip('/')}"
    return kind


def open_store(config: Any, kb_name: str, kb_dir: Path, embeddings: Any):
    key = store_key(config)
    if key == "faiss":
        return FaissStore(kb_dir / "faiss.npz", embeddings)
    if key.startswith("chroma-server:"):
        return ChromaStore(embeddings, collection_name(kb_name), url=key.split(":", 1)[1])
    return ChromaStore(embeddings, collection_name(kb_name), persist_dir=kb_dir / "chroma")


def collection_name(kb_name: str) -> str:
    return f"course-kb-{kb_name}"


def _chroma_settings():
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


class ChromaStore:
    def __init__(self, embeddings: Any, collection: str, persist_dir: Path | None = None, url: str | None = None):
        import chromadb
        from langchain_chroma import Chroma

        self.collection = collection
        if url:
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise StoreError(f"vector_store.url {url!r} is not an http(s) URL")
            try:
                self.client = chromadb.HttpClient(host=parsed.hostname, port=parsed.port or 8000,
                                                  ssl=parsed.scheme == "https", settings=_chroma_settings())
                self.client.heartbeat()
            except Exception as exc:  # noqa: BLE001 - any connection failure reads the same to a user
                raise StoreError(f"cannot reach the Chroma server at {url} ({type(exc).__name__})") from None
        else:
            assert persist_dir is not None
            persist_dir.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(persist_dir), settings=_chroma_settings())
        self.vs = Chroma(collection_name=collection, embedding_function=embeddings, client=self.client,
                         collection_configuration={"hnsw": {"space": "cosine"}})

    def add(self, ids: Sequence[str], texts: Sequence[str], paths: Sequence[str]) -> None:
        self.vs.add_texts(list(texts), metadatas=[{"path": p} for p in paths], ids=list(ids))

    def delete_path(self, path: str) -> None:
        self.vs.delete(where={"path": path})

    def search(self, vector: Sequence[float], n: int) -> list[tuple[str, float]]:
        count = self.count()
        if not count:
            return []
        found = self.vs.similarity_search_by_vector_with_relevance_scores(list(vector), k=min(n, count))
        # cosine space: distance = 1 - cosine
        return [(doc.id, 1.0 - float(distance)) for doc, distance in found]

    def count(self) -> int:
        return self.vs._collection.count()  # noqa: SLF001 - langchain-chroma has no public count

    def flush(self) -> None:
        """Chroma persists every write itself."""

    def refresh(self) -> None:
        """Chroma reads its own files on every query: nothing to reload."""

    def drop(self) -> None:
        try:
            self.client.delete_collection(self.collection)
        except Exception:  # noqa: BLE001 - already gone
            pass


class FaissStore:
    def __init__(self, path: Path, embeddings: Any):
        import numpy as np

        self.path = path
        self.embeddings = embeddings
        self._blocks: list[Any] = []  # vector batches not yet concatenated
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.ids: list[str] = []
        self.paths: list[str] = []
        self._index = None
        self._dirty = False  # changes not yet flushed to disk
        self._signature = None  # (inode, size, mtime) of the file as last read or written
        self._load()

    def _stat(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self) -> None:
        import numpy as np

        self._signature = self._stat()
        if self._signature is None:
            self.vectors, self.ids, self.paths, self._blocks = np.zeros((0, 0), dtype=np.float32), [], [], []
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                self.vectors = data["vectors"].astype(np.float32)
                self.ids = [str(x) for x in data["ids"]]
                self.paths = [str(x) for x in data["paths"]]
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"{self.path}: corrupt FAISS store ({type(exc).__name__}); "
                             "remove the knowledge base and ingest again") from None
        self._blocks = []
        self._index = None

    def refresh(self) -> None:
        """Reload the vectors when another process rewrote the file (never over unflushed changes)."""
        if not self._dirty and self._stat() != self._signature:
            self._load()

    def _matrix(self):
        import numpy as np

        if self._blocks:
            parts = ([self.vectors] if len(self.vectors) else []) + self._blocks
            self.vectors = np.ascontiguousarray(np.concatenate(parts).astype(np.float32))
            self._blocks = []
        return self.vectors

    def add(self, ids: Sequence[str], texts: Sequence[str], paths: Sequence[str]) -> None:
        import numpy as np

        vectors = np.asarray(self.embeddings.embed_documents(list(texts)), dtype=np.float32)
        known = set(ids) & set(self.ids)
        if known:  # upsert: drop the old copies first
            self._keep([i not in known for i in self.ids])
        self._blocks.append(vectors)
        self.ids.extend(ids)
        self.paths.extend(paths)
        self._index = None
        self._dirty = True

    def _keep(self, mask: list[bool]) -> None:
        import numpy as np

        matrix = self._matrix()
        keep = np.asarray(mask, dtype=bool)
        self.vectors = matrix[keep] if len(matrix) else matrix
        self.ids = [i for i, k in zip(self.ids, mask) if k]
        self.paths = [p for p, k in zip(self.paths, mask) if k]
        self._index = None
        self._dirty = True

    def delete_path(self, path: str) -> None:
        if path in self.paths:
            self._keep([p != path for p in self.paths])

    def search(self, vector: Sequence[float], n: int) -> list[tuple[str, float]]:
        import numpy as np

        self.refresh()  # a long-lived chat sees what a CLI ingest wrote meanwhile
        matrix = self._matrix()
        if not len(self.ids):
            return []
        if self._index is None:
            import faiss

            self._index = faiss.IndexFlatIP(matrix.shape[1])
            self._index.add(matrix)
        query = np.asarray([vector], dtype=np.float32)
        scores, rows = self._index.search(query, min(n, len(self.ids)))
        return [(self.ids[r], float(s)) for s, r in zip(scores[0], rows[0]) if r >= 0]

    def count(self) -> int:
        return len(self.ids)

    def flush(self) -> None:
        import numpy as np

        from assistant import atomic_path

        matrix = self._matrix()
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, vectors=matrix, ids=np.asarray(self.ids, dtype=str),
                         paths=np.asarray(self.paths, dtype=str))
                fh.flush()
                os.fsync(fh.fileno())
        self._dirty = False
        self._signature = self._stat()

    def drop(self) -> None:
        if self.path.exists():
            self.path.unlink()
        self._load()
