"""How fast does the assistant start? Compared with a bare `python -c pass` in the same run.

Measures, as the median of several fresh processes:
  - `python -c pass` (the baseline: interpreter start-up alone)
  - `assistant --help` (CLI with every plugin's subcommands registered)
  - the chat's first paint, headless: process start until Textual reports the
    first frame (the prompt is focused and accepting keys), going through the
    same path as `assistant` (Registry.load, Config, Context, ChatApp)
  - the same with a stored 200-message conversation, until it is drawn again
  - the first reply: Enter on `/help` until the reply is on screen
  - when tmux is installed: `assistant` in a real 120x35 terminal, until the
    status line is visible, with textual-image's terminal probe and without

Run: .venv/bin/python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: the `assistant` start-up path, headless, timed
# from the moment the parent launched the process (T0).
CHILD = r"""
import json, os, sys, time
t0 = float(os.environ["BENCH_T0"])
from assistant.cli import _quiet_environment, make_context, build_parser
_quiet_environment()
from assistant.registry import Registry
registry = Registry.load()
args = build_parser(registry).parse_args(["--home", os.environ["BENCH_HOME"]])
context = make_context(args, registry)
from assistant.tui.app import ChatApp
from assistant.tui.widgets import NoticeLine, Reply
app = ChatApp(context)
marks = {}

async def pilot_run(pilot):
    marks["first_paint"] = time.time() - t0
    # Wait until the stored conversation is drawn (it loads after the first frame).
    while not any("conversation #" in str(n.content) for n in app.query(NoticeLine)):
        await pilot.pause(0.005)
    marks["conversation_shown"] = time.time() - t0
    replies = len(app.query(Reply))
    app.query_one("#prompt").value = "/help"
    start = time.time()
    await pilot.press("enter")
    while app.busy or len(app.query(Reply)) == replies:
        await pilot.pause(0.005)
    marks["help_reply"] = time.time() - start
    app.exit()

app.run(headless=True, size=(120, 35), auto_pilot=pilot_run)
print(json.dumps(marks))
"""


def run_once(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout
    return time.perf_counter() - start, out


def assistant_command() -> list[str]:
    script = Path(sys.executable).parent / "assistant"
    return [str(script)] if script.exists() else [sys.executable, "-m", "assistant.cli"]


def seed_conversation(home: Path, messages: int) -> None:
    from assistant.sessions import SessionStore

    store = SessionStore(home / "sessions.sqlite3")
    session = store.new_session()
    for i in range(messages // 2):
        store.add_message(session, "user", f"Question {i}: how does the **reparameterisation trick** work?")
        store.add_message(session, "assistant", f"Answer {i}.\n\n- sample eps\n- scale by sigma\n\n```python\nz = mu + sigma * eps\n```",
                          {"sources": [{"source": "knowledge/vae.md", "heading": "VAEs", "start_line": 1,
                                        "end_line": 9, "score": 0.8, "text": "passage"}]})
    store.close()


def tui_marks(home: Path) -> dict[str, float]:
    env = dict(os.environ, BENCH_T0=repr(time.time()), BENCH_HOME=str(home), OMP_NUM_THREADS="1")
    _, out = run_once([sys.executable, "-c", CHILD], env)
    return json.loads(out.strip().splitlines()[-1])


def tmux_first_paint(tmux: list[str], home: Path, images: str = "auto") -> float | None:
    """Seconds from launching `assistant` in a real terminal until its status line shows."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f'[tui]\nimages = "{images}"\n')
    name = f"run-{time.monotonic_ns()}"
    command = " ".join(assistant_command() + ["--home", str(home)])
    start = time.perf_counter()
    subprocess.run(tmux + ["new-session", "-d", "-s", name, "-x", "120", "-y", "35", command], check=True)
    try:
        while time.perf_counter() - start < 30:
            screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout
            if "session #" in screen:
                return time.perf_counter() - start
            time.sleep(0.01)
        return None
    finally:
        subprocess.run(tmux + ["kill-session", "-t", name], capture_output=True)


def tmux_runs(base: Path, runs: int, images: str) -> list[float | None]:
    if not shutil.which("tmux"):
        return [None]
    # A private server per series, so other people's sessions are untouched.
    tmux = ["tmux", "-L", f"bench-startup-{os.getpid()}-{images}"]
    # An idle session keeps the private server up between runs.
    subprocess.run(tmux + ["new-session", "-d", "-s", "anchor", "sleep 600"], check=True)
    try:
        return [tmux_first_paint(tmux, base / f"{images}{i}", images) for i in range(runs)]
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    baseline = statistics.median(run_once([sys.executable, "-c", "pass"])[0] for _ in range(runs))
    help_time = statistics.median(run_once(assistant_command() + ["--help"])[0] for _ in range(runs))

    with tempfile.TemporaryDirectory() as tmp:
        empty, seeded = Path(tmp) / "empty", Path(tmp) / "seeded"
        empty.mkdir()
        seeded.mkdir()
        seed_conversation(seeded, 200)
        fresh = [tui_marks(empty) for _ in range(runs)]
        resumed = [tui_marks(seeded) for _ in range(runs)]
        terminal = tmux_runs(Path(tmp), runs, "auto")
        no_probe = tmux_runs(Path(tmp), runs, "blocks")

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    rows = [
        ("python -c pass (baseline)", baseline),
        ("assistant --help", help_time),
        ("chat first paint, headless, new home", med(fresh, "first_paint")),
        ("chat first paint, headless, 200-message session", med(resumed, "first_paint")),
        ("  ... conversation drawn (last 20 messages)", med(resumed, "conversation_shown")),
    ]
    if all(t is not None for t in terminal + no_probe):
        rows.append(("chat first paint in tmux (real terminal)", statistics.median(terminal)))
        rows.append(("  ... with tui.images = blocks (no terminal probe)", statistics.median(no_probe)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median of {runs} fresh processes each; load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'measure':<52} {'seconds':>8} {'x baseline':>11}")
    for label, seconds in rows:
        print(f"{label:<52} {seconds:8.3f} {seconds / baseline:10.1f}x")
    print(f"{'/help: Enter until the reply is drawn':<52} {med(fresh, 'help_reply'):8.3f}")
    print(f"{'first paint minus interpreter start':<52} {med(fresh, 'first_paint') - baseline:8.3f}")
    print("goal: chat usable in < 1 s:", "met" if med(fresh, "first_paint") < 1.0 else "NOT met")


if __name__ == "__main__":
    main()
