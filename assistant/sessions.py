"""Conversations persisted in SQLite (`sessions.sqlite3` in the state directory)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
"""
# Full-text search over every saved message (/find, `assistant sessions search`), kept in
# step with `messages` by triggers; an older database is indexed once when first opened.
FTS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(content, content='messages', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
"""


def open_sessions(path: str | Path) -> tuple["SessionStore", str | None]:
    """The session store and, if it could not be opened as usual, a one-line notice.

    A locked or read-only database is fine, only not writable now: the chat
    runs on an in-memory store and the file is left alone. Only a database
    SQLite calls corrupt is moved aside, with its -wal and -shm files, so the
    pieces stay together for recovery.
    """
    path = Path(path)
    try:
        return SessionStore(path), None
    except sqlite3.OperationalError as exc:  # locked, read-only, no permission: not corruption
        return SessionStore(":memory:"), (f"the session database {path} cannot be written now ({exc}); "
                                          "this conversation will not be saved")
    except sqlite3.DatabaseError as exc:
        aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{path}{suffix}")
            if part.exists():
                part.rename(Path(f"{aside}{suffix}"))
        return SessionStore(path), (f"the session database could not be read ({exc}); "
                                    f"it was moved to {aside} and a new one started")


@dataclass(frozen=True)
class Message:
    role: str  # "user" | "assistant" | "notice"
    content: str
    meta: dict[str, Any]
    created: float
    id: int = 0

    @property
    def superseded(self) -> bool:
        """An earlier version of a reply that /retry regenerated (kept, not sent as history)."""
        return bool(self.meta.get("superseded_by"))


@dataclass(frozen=True)
class Found:
    """One /find hit: where it is and the matching words in context."""

    session_id: int
    message_id: int
    role: str
    title: str
    snippet: str
    created: float


@dataclass(frozen=True)
class SessionInfo:
    id: int
    title: str
    created: float
    updated: float
    messages: int


class SessionStore:
    """Thread-safe: the TUI writes from worker threads too."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5)
        if self.path.name != ":memory:" and self.path.exists():
            os.chmod(self.path, 0o600)  # the user's conversations: private (-wal/-shm follow it)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._db.executescript(FTS_SCHEMA)
        indexed = self._db.execute("SELECT COUNT(*) FROM messages_fts_docsize").fetchone()[0]
        stored = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        if indexed != stored:  # a database written before full-text search existed
            self._db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def new_session(self, title: str = "") -> int:
        now = time.time()
        with self._lock:
            cur = self._db.execute("INSERT INTO sessions(title, created, updated) VALUES (?, ?, ?)", (title, now, now))
            return int(cur.lastrowid)

    def last_session(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM sessions ORDER BY updated DESC, id DESC LIMIT 1").fetchone()
        return int(row[0]) if row else None

    def exists(self, session_id: int) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM sessions WHERE id=?", (session_id,)).fetchone() is not None

    def add_message(self, session_id: int, role: str, content: str, meta: dict[str, Any] | None = None) -> int:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO messages(session_id, role, content, meta, created) VALUES (?, ?, ?, ?, ?)",
                (session_id, role, content, json.dumps(meta or {}), now),
            )
            # The first user message names the session.
            self._db.execute(
                "UPDATE sessions SET updated=?, title=CASE WHEN title='' AND ?='user' THEN ? ELSE title END WHERE id=?",
                (now, role, content.strip().splitlines()[0][:60] if content.strip() else "", session_id),
            )
            return int(cur.lastrowid)

    def update_meta(self, message_id: int, **changes: Any) -> None:
        """Merge `changes` into a message's metadata (e.g. mark a reply superseded by /retry)."""
        with self._lock:
            row = self._db.execute("SELECT meta FROM messages WHERE id=?", (message_id,)).fetchone()
            if row is None:
                return
            meta = json.loads(row[0] or "{}")
            meta.update(changes)
            self._db.execute("UPDATE messages SET meta=? WHERE id=?", (json.dumps(meta), message_id))

    def search(self, words: str, limit: int = 20) -> list[Found]:
        """Messages of every conversation matching all `words` (FTS5), best first."""
        terms = [t for t in words.replace('"', " ").split() if t]
        if not terms:
            return []
        # Each word quoted: user text is never FTS5 syntax; the last one also matches as a prefix.
        query = " ".join(f'"{t}"' for t in terms[:-1]) + (" " if len(terms) > 1 else "") + f'"{terms[-1]}"*'
        with self._lock:
            rows = self._db.execute(
                "SELECT m.session_id, m.id, m.role, s.title, "
                "snippet(messages_fts, 0, '«', '»', '…', 12), m.created "
                "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "JOIN sessions s ON s.id = m.session_id "
                "WHERE messages_fts MATCH ? ORDER BY bm25(messages_fts), m.id DESC LIMIT ?",
                (query, limit),
            ).fetchall()
        return [Found(r[0], r[1], r[2], r[3], " ".join(r[4].split()), r[5]) for r in rows]

    def messages(self, session_id: int) -> list[Message]:
        with self._lock:
            rows = self._db.execute(
                "SELECT role, content, meta, created, id FROM messages WHERE session_id=? ORDER BY id", (session_id,)
            ).fetchall()
        return [Message(r[0], r[1], json.loads(r[2] or "{}"), r[3], r[4]) for r in rows]

    def list_sessions(self, limit: int = 50) -> list[SessionInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT s.id, s.title, s.created, s.updated, COUNT(m.id) FROM sessions s "
                "LEFT JOIN messages m ON m.session_id = s.id GROUP BY s.id ORDER BY s.updated DESC, s.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [SessionInfo(*r) for r in rows]

    def history(self, session_id: int, limit: int = 20) -> list[dict[str, str]]:
        """The last user/assistant turns, in the chat-message shape LLMs take."""
        turns = [m for m in self.messages(session_id) if m.role in ("user", "assistant") and not m.superseded]
        return [{"role": m.role, "content": m.content} for m in turns[-limit:]]

    def export_markdown(self, session_id: int) -> str:
        info = next((s for s in self.list_sessions(10_000) if s.id == session_id), None)
        title = info.title if info and info.title else f"Session {session_id}"
        lines = [f"# {title}", ""]
        for m in self.messages(session_id):
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.created))
            who = {"user": "You", "assistant": "Assistant"}.get(m.role, m.role.title())
            if m.superseded:
                who += " (earlier version, regenerated by /retry)"
            lines += [f"## {who} · {stamp}", "", m.content.rstrip(), ""]
            for src in m.meta.get("sources", []):
                lines.append(f"- source: {src.get('source')} › {src.get('heading', '')} (lines {src.get('start_line')}-{src.get('end_line')})")
            if m.meta.get("sources"):
                lines.append("")
        return "\n".join(lines)


# -- command line: `assistant sessions search WORDS` -----------------------------------
def add_sessions_cli(subparsers: Any) -> None:
    from assistant.cliutil import json_flag

    parser = subparsers.add_parser("sessions", help="saved chat conversations: search them",
                                   description="Saved chat conversations (sessions.sqlite3 in the state directory).")
    actions = parser.add_subparsers(dest="sessions_action", metavar="ACTION", required=True)
    search = actions.add_parser("search", parents=[json_flag()], help="full-text search over every conversation",
                                description="Messages containing all WORDS (the last one also as a prefix), best "
                                            "first. In the chat, /find WORDS does the same and opens the message.")
    search.add_argument("words", nargs="+", metavar="WORDS")
    search.add_argument("--limit", type=int, default=20, help="at most this many messages (default 20)")
    search.set_defaults(handler=_cli_search)


def _cli_search(args: Any, context: Any):
    from assistant.events import Data, Error, Text

    if args.limit < 1:
        yield Error("--limit must be at least 1")
        return
    path = context.config.sessions_db
    if not path.exists():
        yield Error("no saved conversations yet", "open the chat with `assistant` first")
        return
    store = SessionStore(path)
    try:
        found = store.search(" ".join(args.words), limit=args.limit)
    finally:
        store.close()
    if args.json:
        for hit in found:
            yield Data({"session": hit.session_id, "message": hit.message_id, "role": hit.role,
                        "title": hit.title, "snippet": hit.snippet, "created": hit.created})
        return
    if not found:
        yield Text(f"nothing found for {' '.join(args.words)!r}\n")
        return
    for hit in found:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(hit.created))
        who = "you" if hit.role == "user" else "reply"
        yield Text(f"#{hit.session_id} {stamp} {hit.title[:40]!r}\n    {who}: {hit.snippet}\n")
    yield Text("Open one in the chat with /sessions ID, or /find WORDS to jump to the message.\n")
