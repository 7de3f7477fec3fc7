"""A named knowledge base: its files, chunks, vectors and incremental ingest.

On disk, in `<home>/index/<name>/`:

- `manifest.json` (atomic writes): the vector store it was built for and, per
  file, its sha256, chunk count and the folder it was ingested from;
- `chunks.sqlite3`: chunk text, heading path and line range (the truth for
  BM25 and for the sources shown to users), and one MiniLM vector per
  distinct heading path (a third ranking signal, retriever.py);
- `chroma/` or `faiss.npz`: the vectors (or a collection on a Chroma server).

Consistency: per file, its old chunks are deleted, the new ones added, the
store flushed and the table committed, and only then is the file's new hash
written to the manifest. An interrupted run leaves files whose hash is not in
the manifest; the next run deletes whatever they left and adds them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from assistant import Cancelled, Data, Error, Event, Notice, Progress, UserError, display_path, knowledge_dir
from course_assistant_plugins.rag.chunking import VERSION as CHUNKER_VERSION  # bumped where chunking changes
from course_assistant_plugins.rag.loaders import UnreadableFile, check_size

DEFAULT_KB = "default"
KB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?$")
MANIFEST_VERSION = 1
COMMIT_CHUNKS = 512  # commit (flush store, write manifest) at least this often
LOCK_WAIT_SECONDS = 600.0  # a second writer waits this long for the first, then fails clearly
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".ipynb_checkpoints"}


class KbError(UserError):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


def check_name(name: str) -> str:
    if not KB_NAME.match(name or ""):
        raise KbError(f"invalid knowledge base name {name!r}",
                      "use letters, digits, '-' or '_' (at most 64 characters)")
    return name


def kb_root(config: Any) -> Path:
    return config.index_dir


def list_kbs(config: Any) -> list[str]:
    root = kb_root(config)
    names = {p.name for p in root.iterdir() if p.is_dir() and KB_NAME.match(p.name)} if root.is_dir() else set()
    return sorted(names | {DEFAULT_KB})


def display_source(path: Path) -> str:
    """Files of the project (the built-in notes) show relative paths; others absolute."""
    return display_path(path)


def default_roots(config: Any) -> list[Path]:
    roots = [knowledge_dir()]
    user = getattr(config, "user_knowledge_dir", None)
    if user is not None and Path(user).is_dir():
        roots.append(Path(user))
    return [r for r in roots if r.is_dir()]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_id(path: str, seq: int) -> str:
    return f"{hashlib.sha1(path.encode('utf-8')).hexdigest()[:16]}-{seq}"


@dataclass
class IngestReport:
    kb: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0  # the whole run
    work_started: float | None = None  # when embedding began (after the model loaded)
    work_seconds: float = 0.0

    def rate(self) -> float:
        """Chunks per second of indexing work (reading, chunking, embedding, storing)."""
        if self.work_started is not None and not self.work_seconds:
            return self.chunks / max(time.perf_counter() - self.work_started, 1e-9)
        return self.chunks / self.work_seconds if self.work_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        rate = self.rate()
        return {"kb": self.kb, "added": self.added, "updated": self.updated, "skipped": self.skipped,
                "removed": self.removed, "failed": self.failed, "chunks": self.chunks,
                "seconds": round(self.seconds, 3), "chunks_per_s": round(rate, 1)}

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated", f"{len(self.skipped)} unchanged",
                 f"{len(self.removed)} removed"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        rate = f" ({self.rate():.0f} chunks/s)" if self.chunks else ""
        return f"Knowledge base '{self.kb}': " + ", ".join(parts) + f"; {self.chunks} chunks indexed{rate}."


class KnowledgeBase:
    def __init__(self, config: Any, name: str = DEFAULT_KB, embeddings: Any = None):
        from course_assistant_plugins.rag.settings import SETTINGS

        config.declare(SETTINGS)  # the store's keys, for a bare Config too
        self.config = config
        self.name = check_name(name)
        self.dir = kb_root(config) / name
        self.manifest_path = self.dir / "manifest.json"
        self.db_path = self.dir / "chunks.sqlite3"
        self._embeddings = embeddings
        self._store = None
        self._db: sqlite3.Connection | None = None

    # -- parts, opened lazily --------------------------------------------------
    @property
    def embeddings(self):
        if self._embeddings is None:
            from assistant import get_embeddings

            self._embeddings = get_embeddings()
        return self._embeddings

    @property
    def store(self):
        if self._store is None:
            from course_assistant_plugins.rag.stores import open_store

            self.dir.mkdir(parents=True, exist_ok=True)
            self._store = open_store(self.config, self.name, self.dir, self.embeddings)
        return self._store

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript("""
                CREATE TABLE IF NOT EXISTS chunks (
                    id TEXT PRIMARY KEY, path TEXT NOT NULL, source TEXT NOT NULL, heading TEXT NOT NULL,
                    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, text TEXT NOT NULL, seq INTEGER NOT NULL);
                CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS headings (heading TEXT PRIMARY KEY, vector BLOB NOT NULL);
            """)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        self._store = None

    # -- manifest ----------------------------------------------------------------
    def load_manifest(self) -> dict[str, Any]:
        from course_assistant_plugins.rag.stores import store_key

        key = store_key(self.config)
        fresh = {"version": MANIFEST_VERSION, "store": key, "embedding": "all-MiniLM-L6-v2",
                 "chunker": CHUNKER_VERSION, "roots": [], "files": {}}
        if not self.manifest_path.exists():
            return fresh
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            if not isinstance(manifest.get("files"), dict):
                raise ValueError("no files table")
        except (ValueError, OSError, UnicodeDecodeError):
            # A manifest we cannot read: everything is re-indexed (delete-then-add keeps it clean).
            return dict(fresh, corrupt=True)
        if manifest.get("store") != key or manifest.get("version") != MANIFEST_VERSION or \
                manifest.get("chunker") != CHUNKER_VERSION:
            return dict(fresh, roots=manifest.get("roots", []), store_changed=manifest.get("store"))
        manifest.setdefault("roots", [])
        return manifest

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        from assistant import atomic_write_text

        clean = {k: v for k, v in manifest.items() if k not in ("corrupt", "store_changed")}
        atomic_write_text(self.manifest_path, json.dumps(clean, indent=1, sort_keys=True))

    # -- reading -------------------------------------------------------------------
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def chunk_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def all_chunks(self) -> list[tuple]:
        """(id, source, heading, start_line, end_line, text) in a stable order."""
        return self.db.execute(
            "SELECT id, source, heading, start_line, end_line, text FROM chunks ORDER BY path, seq").fetchall()

    def heading_vectors(self) -> dict[str, Any]:
        """{heading path: its normalised MiniLM vector (float32)} for the headings embedded so far."""
        import numpy as np

        return {heading: np.frombuffer(blob, dtype=np.float32)
                for heading, blob in self.db.execute("SELECT heading, vector FROM headings")}

    def files(self) -> dict[str, Any]:
        return self.load_manifest()["files"] if self.manifest_path.exists() else {}

    def describe(self) -> dict[str, Any]:
        manifest = self.load_manifest() if self.manifest_path.exists() else {"files": {}, "roots": []}
        chunks = self.chunk_count() if self.db_path.exists() else 0
        return {"name": self.name, "files": len(manifest["files"]), "chunks": chunks,
                "roots": manifest.get("roots", []), "path": str(self.dir)}

    def is_empty(self) -> bool:
        return not self.manifest_path.exists() or not self.load_manifest()["files"]

    def remove(self) -> None:
        from assistant import LockTimeout

        lock = self.writer_lock()
        try:
            lock.acquire(LOCK_WAIT_SECONDS)
        except LockTimeout as exc:
            raise KbError(str(exc), "remove it when the other ingest has finished") from None
        try:
            self._remove()
        finally:
            lock.release()

    def _remove(self) -> None:
        try:
            self.store.drop()
        except Exception:  # noqa: BLE001 - a store we cannot open still goes from disk
            pass
        self.close()
        if self.dir.exists():
            shutil.rmtree(self.dir)

    # -- writing -------------------------------------------------------------------
    def _delete_file(self, path: str) -> None:
        self.store.delete_path(path)
        self.db.execute("DELETE FROM chunks WHERE path = ?", (path,))

    def _bump_generation(self) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES('generation', ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(self.generation() + 1),))

    def _reset(self) -> None:
        """Store changed or manifest lost: start from an empty index."""
        self.store.drop()
        self._store = None
        self.db.execute("DELETE FROM chunks")
        self.db.execute("DELETE FROM headings")
        self._bump_generation()

    # -- one writer at a time ---------------------------------------------------------
    def writer_lock(self):
        from assistant import FileLock

        # Beside the KB folder, not in it: `remove` deletes the folder while holding the lock.
        return FileLock(kb_root(self.config) / f".{self.name}.lock", f"knowledge base '{self.name}'")

    def _locked(self, cancel: Any = None) -> Iterator[Event]:
        """Take the writer lock, telling the user when another process holds it; KbError after the wait."""
        from assistant import LockTimeout

        lock = self.writer_lock()
        if not lock.try_acquire():
            holder = lock.holder()
            # The chat's first-run indexing and a question's retrieval can meet in one process too.
            who = "another task of this program" if holder == str(os.getpid()) else f"another process (pid {holder})"
            yield Notice("info", f"knowledge base '{self.name}' is being written by {who}; waiting for it to finish")
            try:
                lock.acquire(LOCK_WAIT_SECONDS, cancel)
            except LockTimeout as exc:
                raise KbError(str(exc), "try again when the other ingest has finished") from None
        if self._store is not None:
            self._store.refresh()  # the other writer may have changed the vectors on disk
        return lock

    def ingest(self, paths: list[str | Path], cancel: Any = None, remember_roots: bool = True,
               builtin: str | Path | None = None) -> Iterator[Event]:
        """Index files and folders incrementally; yields Progress/Notice/Error, then Data(report).

        `builtin` is this installation's built-in notes folder: the notes of an
        earlier installation somewhere else (a checkout, then a wheel, sharing
        one state directory) are dropped, not kept beside these as duplicates.
        Holds the knowledge base's writer lock throughout: a second process
        (the chat and a CLI ingest, two ingests) waits, then works on top.
        """
        lock = yield from self._locked(cancel)
        try:
            yield from self._ingest(paths, cancel, remember_roots, str(Path(builtin).resolve()) if builtin else None)
        finally:
            lock.release()

    def _ingest(self, paths: list[str | Path], cancel: Any, remember_roots: bool,
                builtin: str | None = None) -> Iterator[Event]:
        started = time.perf_counter()
        report = IngestReport(self.name)
        manifest = self.load_manifest()
        if manifest.get("corrupt") or manifest.get("store_changed") is not None or (
                not self.manifest_path.exists() and self.db_path.exists()):
            if manifest.get("store_changed") and manifest["store_changed"] != manifest["store"]:
                yield Notice("info", f"knowledge base '{self.name}': vector store changed "
                                     f"({manifest['store_changed']} -> {manifest['store']}); indexing again")
            elif manifest.get("corrupt"):
                yield Notice("warning", f"knowledge base '{self.name}': unreadable manifest; indexing again")
            self._reset()
            manifest["files"] = {}
        files = manifest["files"]
        previous = manifest.get("builtin_root")
        if builtin and previous and previous != builtin:  # another installation's copy of the notes
            for f in [f for f, entry in files.items() if entry.get("root") == previous]:
                self._delete_file(f)
                files.pop(f)
                report.removed.append(display_source(Path(f)))
            manifest["roots"] = [r for r in manifest["roots"] if r != previous]
        if builtin:
            manifest["builtin_root"] = builtin

        todo: list[tuple[Path, str | None]] = []  # (file, root folder or None)
        explicit: set[str] = set()
        for raw in paths:
            path = Path(raw).expanduser().resolve()
            if path.is_dir():
                root = str(path)
                found, skipped = walk(path)
                for link, reason in skipped:
                    report.failed.append({"path": str(link), "error": reason})
                    yield Notice("warning", f"skipped {link}: {reason}")
                todo += [(f, root) for f in found]
                present = {str(f) for f in found}
                gone = [f for f, entry in files.items() if entry.get("root") == root and f not in present]
                for f in gone:
                    self._delete_file(f)
                    files.pop(f)
                    report.removed.append(display_source(Path(f)))
                if remember_roots and root not in manifest["roots"]:
                    manifest["roots"].append(root)
                if not found:
                    yield Notice("warning", f"{path}: no Markdown, text, HTML or PDF files found")
            elif path.is_file():
                todo.append((path, None))
                explicit.add(str(path))
            elif str(path) in files:
                self._delete_file(str(path))
                files.pop(str(path))
                report.removed.append(display_source(path))
            else:
                report.failed.append({"path": str(path), "error": "no such file or folder"})
                yield Error(f"{raw}: no such file or folder", "check the path")
        if report.removed:
            self._bump_generation()
            self.save_manifest(manifest)

        # De-duplicate (a file given twice, or inside two given folders).
        seen: set[str] = set()
        todo = [(f, r) for f, r in todo if not (str(f) in seen or seen.add(str(f)))]

        pending: list[tuple[Path, str | None, str, list]] = []
        pending_chunks = 0
        total = len(todo)
        for index, (path, root) in enumerate(todo, 1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            key = str(path)
            try:
                check_size(path)  # before reading: a huge file is never loaded
                data = path.read_bytes()
            except UnreadableFile as exc:
                yield from self._failed(report, path, str(exc), key in explicit)
                continue
            except OSError as exc:
                yield from self._failed(report, path, f"cannot read ({exc.strerror or exc})", key in explicit)
                continue
            digest = sha256_bytes(data)
            entry = files.get(key)
            if entry and entry.get("sha256") == digest:
                if root and entry.get("root") != root:
                    entry["root"] = root
                report.skipped.append(display_source(path))
                yield Progress(f"{self.name}: checking files", index, total)
                continue
            try:
                chunks, notes = parse_file(path, data, cancel)
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the rest
                reason = str(exc) if isinstance(exc, UnreadableFile) else f"{path.name}: {type(exc).__name__}: {exc}"
                yield from self._failed(report, path, reason, key in explicit)
                continue
            for note in notes:
                yield Notice("warning", note)
            pending.append((path, root or (entry or {}).get("root"), digest, chunks))
            pending_chunks += len(chunks)
            if pending_chunks >= COMMIT_CHUNKS:
                yield from self._commit(pending, manifest, report, started, index, total, cancel)
                pending, pending_chunks = [], 0
        if pending:
            yield from self._commit(pending, manifest, report, started, total, total, cancel)
        self.save_manifest(manifest)
        report.seconds = time.perf_counter() - started
        if report.work_started is not None:
            report.work_seconds = time.perf_counter() - report.work_started
        yield Data(report)

    def _failed(self, report: IngestReport, path: Path, reason: str, explicit: bool) -> Iterator[Event]:
        report.failed.append({"path": str(path), "error": reason})
        if explicit:
            yield Error(f"skipped {reason}")
        else:
            yield Notice("warning", f"skipped {reason}")

    def _commit(self, pending: list, manifest: dict, report: IngestReport, started: float,
                files_done: int, files_total: int, cancel: Any) -> Iterator[Event]:
        import numpy as np

        from assistant import EMBEDDING_BATCH_SIZE

        self.store  # open (and load the model) before the clock used for chunks/s starts
        if report.work_started is None:
            report.work_started = time.perf_counter()
        files = manifest["files"]
        # Forget the old hashes first: if we stop half-way, the next run redoes these files.
        known = {str(path) for path, *_ in pending if str(path) in files}
        for path, *_ in pending:
            files.pop(str(path), None)
        self.save_manifest(manifest)
        rows: list[tuple] = []
        for path, root, digest, chunks in pending:
            key = str(path)
            self._delete_file(key)
            source = display_source(path)
            for seq, chunk in enumerate(chunks):
                rows.append((chunk_id(key, seq), key, source, chunk.heading, chunk.start_line, chunk.end_line,
                             chunk.text, seq, chunk.indexed_text()))
        batch = EMBEDDING_BATCH_SIZE * 4
        for i in range(0, len(rows), batch):
            if cancel is not None:
                cancel.raise_if_cancelled()
            part = rows[i:i + batch]
            self.store.add([r[0] for r in part], [r[8] for r in part], [r[1] for r in part])
            report.chunks += len(part)
            rate = report.rate()
            yield Progress(f"{self.name}: {report.chunks} chunks, {rate:.0f} chunks/s", files_done, files_total)
        self.store.flush()
        db = self.db
        # This batch's heading paths that have no vector yet (a chunker VERSION change resets the table
        # with the chunks, so every path in the index passes through here once).
        wanted = sorted({r[3] for r in rows if r[3]})
        present: set[str] = set()
        for i in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
            part = wanted[i:i + 500]
            present.update(h for (h,) in db.execute(
                f"SELECT heading FROM headings WHERE heading IN ({','.join('?' * len(part))})", part))
        missing = [h for h in wanted if h not in present]
        heading_rows = []
        for i in range(0, len(missing), batch):
            if cancel is not None:
                cancel.raise_if_cancelled()
            part = missing[i:i + batch]
            vectors = np.asarray(self.embeddings.embed_documents(part), dtype=np.float32)
            heading_rows += [(h, v.tobytes()) for h, v in zip(part, vectors)]
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO chunks(id, path, source, heading, start_line, end_line, text, seq) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [r[:8] for r in rows])
            db.executemany("INSERT OR REPLACE INTO headings(heading, vector) VALUES (?, ?)", heading_rows)
            self._bump_generation()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for path, root, digest, chunks in pending:
            key = str(path)
            (report.updated if key in known else report.added).append(display_source(path))
            files[key] = {"sha256": digest, "chunks": len(chunks), "root": root,
                          "indexed_at": round(time.time(), 3)}
        self.save_manifest(manifest)


def walk(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Supported files under `folder`, and the entries skipped with the reason.

    Symbolic links are followed only when they stay inside the folder: a
    `notes/key.md -> ~/.ssh/id_ed25519` is reported, never read. A folder
    reached twice (a link loop, or two links to it) is walked once and
    reported, so one bad link never stops the rest of the folder.
    """
    from course_assistant_plugins.rag.loaders import SUPPORTED_SUFFIXES

    root = folder.resolve()
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    visited: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            info = here.stat()
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError as exc:
            skipped.append((here, f"cannot list the folder ({exc.strerror or exc})"))
            continue
        if (info.st_dev, info.st_ino) in visited:
            skipped.append((here, "folder reached twice (a symlink loop?); not walked again"))
            continue
        visited.add((info.st_dev, info.st_ino))
        folders: list[Path] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    target = path.resolve(strict=True)
                    if target != root and root not in target.parents:
                        skipped.append((path, f"symlink to {target}, outside {root}; not followed"))
                        continue
                else:
                    target = path
                is_dir, is_file = target.is_dir(), target.is_file()
            except (OSError, RuntimeError):  # a broken link, or a link loop
                skipped.append((path, "broken symlink or symlink loop; not followed"))
                continue
            if is_dir:
                if entry.name not in SKIP_DIRS:
                    folders.append(target)
            elif is_file and target.suffix.lower() in SUPPORTED_SUFFIXES:
                files.append(target)
        stack.extend(reversed(folders))
    return sorted(set(files)), skipped


def parse_file(path: Path, data: bytes, cancel: Any = None) -> tuple[list, list[str]]:
    """(chunks, notes): the file's chunks and one-line reports of caps it hit."""
    from course_assistant_plugins.rag.chunking import chunk_document
    from course_assistant_plugins.rag.loaders import UnreadableFile, load

    document = load(path, data, cancel)
    chunks = chunk_document(document)
    if not chunks:
        raise UnreadableFile(f"{path.name}: no text to index")
    return chunks, document.notes
