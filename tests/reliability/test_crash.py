"""Crash safety: fsync'ed atomic writes, stale temp files, private state files, and kill -9 mid-work."""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.hostile import (
    COURSE,
    check_index,
    kill_when,
    run_cli_process,
    split_course,
)


def test_atomic_writes_fsync_file_and_folder_and_are_private(tmp_path, monkeypatch):
    from assistant import atomic

    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    target = tmp_path / "index" / "manifest.json"
    with atomic.atomic_path(target) as tmp:  # a writer that wants a file name (np.save, torch.save)
        tmp.write_text("{}")
    assert any(".manifest." in s for s in synced), synced  # the data, before the rename
    assert str(target.parent) in synced  # the rename itself
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_stale_temp_files_of_dead_writers_are_cleaned(tmp_path):
    from assistant.atomic import atomic_write_text

    target = tmp_path / "manifest.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".manifest.{dead.pid}.abc123.tmp.json"
    stale.write_text("half")
    live = tmp_path / f".manifest.{os.getppid()}.def456.tmp.json"  # a running writer's: kept
    live.write_text("in progress")
    atomic_write_text(target, "{}")
    assert not stale.exists() and live.exists() and target.read_text() == "{}"


def test_sessions_db_is_private_and_locked_or_read_only_is_not_corrupt(tmp_path):
    from assistant.sessions import SessionStore, open_sessions

    path = tmp_path / "sessions.sqlite3"
    store = SessionStore(path)
    sid = store.new_session("kept")
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    _locked, notice = open_sessions(path)
    assert notice and "will not be saved" in notice and path.exists()
    assert not list(tmp_path.glob("*.unreadable-*"))  # not moved aside
    holder.execute("ROLLBACK")
    holder.close()
    reopened, notice = open_sessions(path)
    assert notice is None and reopened.exists(sid)
    reopened.close()


def test_a_corrupt_sessions_db_moves_aside_with_its_wal_and_shm(tmp_path):
    from assistant.sessions import open_sessions

    path = tmp_path / "sessions.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    Path(f"{path}-wal").write_bytes(b"wal")
    Path(f"{path}-shm").write_bytes(b"shm")
    store, notice = open_sessions(path)
    assert notice and "moved to" in notice
    aside = sorted(tmp_path.glob("sessions.sqlite3.unreadable-*"))
    assert {p.name.rsplit("-", 1)[-1] if p.name.endswith(("-wal", "-shm")) else "db" for p in aside} == {"db", "wal", "shm"}
    assert store.new_session("fresh") >= 1


@pytest.mark.slow
@pytest.mark.skipif(not COURSE.exists(), reason="needs ../shared/course")
def test_kill_9_during_ingest_then_the_same_command_completes_the_index(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[vector_store]\nkind = "faiss"\n', encoding="utf-8")
    files = split_course(tmp_path / "course")
    command = ("ingest", str(tmp_path / "course"), "--kb", "crash")
    rng = random.Random(13)
    kills = 0
    for _ in range(3):  # until one kill lands mid-work (a run may finish before its kill time)
        # The chunk table appears once the model is loaded, as the first batch is stored.
        if kill_when(run_cli_process(home, *command), home / "index" / "crash" / "chunks.sqlite3", rng.uniform(0.0, 4.0)):
            kills += 1
            break
    proc = run_cli_process(home, *command)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert kills >= 1
    check_index(home, "crash", files)


@pytest.mark.slow
def test_kill_9_during_training_then_the_same_command_completes_the_checkpoint(tmp_path):
    home = tmp_path / "home"
    command = ("image", "train", "vae", "--data", "digits", "--epochs", "6", "--batch-size", "256", "--resume",
               "--seed", "3", "--json")
    ckpt = home / "models" / "images" / "vae" / "checkpoint.npz"
    assert kill_when(run_cli_process(home, *command), ckpt, random.Random(7).uniform(0.0, 1.5))
    proc = run_cli_process(home, *command)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    from plugins.images.checkpoints import read_checkpoint

    state = read_checkpoint(ckpt).state
    assert state.get("epoch") == 6, state
    assert not list(ckpt.parent.glob(".*.tmp*"))
