from __future__ import annotations

from assistant.config import Config
from assistant.events import Control, Collected
from assistant.router import dispatch
from assistant.sessions import SessionStore


def test_sessions_persist_and_resume(home):
    store = SessionStore(home / "sessions.sqlite3")
    first = store.new_session()
    store.add_message(first, "user", "What is a VAE?")
    store.add_message(first, "assistant", "A VAE is ...", {"sources": [{"source": "knowledge/vae.md", "heading": "VAE", "start_line": 3, "end_line": 9}]})
    store.close()

    reopened = SessionStore(home / "sessions.sqlite3")
    assert reopened.last_session() == first
    messages = reopened.messages(first)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].meta["sources"][0]["start_line"] == 3
    assert reopened.list_sessions()[0].title == "What is a VAE?"
    assert reopened.history(first) == [
        {"role": "user", "content": "What is a VAE?"},
        {"role": "assistant", "content": "A VAE is ..."},
    ]


def test_new_sessions_and_export_commands(context, home):
    context.sessions = SessionStore(home / "sessions.sqlite3")
    assert Collected(dispatch("/export", context)).errors  # nothing to export yet
    result = Collected(dispatch("/new", context))
    session = result.of(Control)[0].args["id"]
    assert context.session_id == session
    context.sessions.add_message(session, "user", "explain DDIM")
    context.sessions.add_message(session, "assistant", "DDIM skips steps.")
    listing = Collected(dispatch("/sessions", context)).text
    assert "explain DDIM" in listing
    exported = Collected(dispatch(f"/export {home / 'chat.md'}", context))
    path = exported.of(Control)[0].args["exported"]
    text = open(path).read()
    assert "## You" in text and "DDIM skips steps." in text
    assert Collected(dispatch("/sessions 999", context)).errors


def test_model_command_switches_backend_and_persists(context, home):
    result = Collected(dispatch("/model extractive", context))
    assert result.of(Control) == [Control("model", {"backend": "extractive"})] and not result.data
    assert Config(home).get("llm.backend") == "extractive"
    assert Collected(dispatch("/model gpt-99", context)).errors


def test_help_lists_every_declared_command(context):
    text = Collected(dispatch("/help", context)).text
    for name in context.registry.command_names():
        assert f"/{name}" in text


def test_atomic_write_replaces_whole_file_with_normal_permissions(tmp_path):
    import os
    import stat

    from assistant.atomic import OUTPUT_MODE, atomic_path, atomic_write_text

    target = tmp_path / "out" / "notes.md"
    atomic_write_text(target, "first", OUTPUT_MODE)
    atomic_write_text(target, "second", OUTPUT_MODE)
    assert target.read_text() == "second"
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode & stat.S_IRGRP  # an output the user asked for: not owner-only
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("crash while writing")
    except RuntimeError:
        pass
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["notes.md"]  # no temp file left
