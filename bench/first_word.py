"""First run: how long from opening the chat on a fresh state directory to the first streamed word?

A new student's first question ("What is mode collapse in a GAN and how can I
tell if my GAN has it?") is typed the moment the prompt shows. Nothing is
prepared: the course notes are not indexed, the default model is neither
assembled nor converted, the intent router is not trained. The chat starts
those steps in the background (assistant/warmup.py); the question waits only
for the index, is answered by quoting the notes, and the model's answer follows
when the model is ready.

Measured, from process start:
  - headless (Textual's pilot, the same path as `assistant`): first paint, the
    first word of the quoted answer, the first word of the model's answer;
  - in tmux (a real terminal, `python -m assistant.cli --home NEW`): the first
    paint and the first word of the quoted answer (read from the screen).

Run: .venv/bin/python bench/first_word.py [--model-timeout 600] [--skip-tmux]
Each run converts the default model once more in its fresh directory (~1 GB, deleted after).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is mode collapse in a GAN and how can I tell if my GAN has it?"

CHILD = r"""
import asyncio, json, os, sys, time
t0 = float(os.environ["BENCH_T0"])
home, question, model_timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
from assistant.cli import _quiet_environment, build_parser, make_context
_quiet_environment()
from assistant.registry import Registry
registry = Registry.load()
context = make_context(build_parser(registry).parse_args(["--home", home]), registry)
from assistant.tui.app import ChatApp
from assistant.tui.widgets import NoticeLine, PromptInput, Reply
app = ChatApp(context, warm_up=True)
out = {}

def texts():
    return [r.text for r in app.query(Reply) if r.text.strip()]

async def main():
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        out["first_paint_s"] = time.time() - t0
        app.query_one(PromptInput).value = question
        await pilot.press("enter")
        out["sent_s"] = time.time() - t0
        while not texts():
            await pilot.pause(0.05)
        out["first_word_s"] = time.time() - t0
        out["first_reply_head"] = texts()[0][:160]
        deadline = time.time() + model_timeout
        while len(texts()) < 2 and time.time() < deadline:
            await pilot.pause(0.1)
        if len(texts()) >= 2:
            out["model_first_word_s"] = time.time() - t0
            out["model_reply_head"] = texts()[1][:160]
        out["notices"] = [str(n.content) for n in app.query(NoticeLine)]
        await pilot.press("ctrl+q")

asyncio.run(main())
print("RESULT " + json.dumps(out))
"""


def headless(model_timeout: float) -> dict:
    home = Path(tempfile.mkdtemp(prefix="first-word-"))
    try:
        env = dict(os.environ, BENCH_T0=repr(time.time()), PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        done = subprocess.run([sys.executable, "-c", CHILD, str(home), QUESTION, str(model_timeout)], env=env,
                              capture_output=True, text=True, timeout=model_timeout + 900)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            return {"error": (done.stderr or done.stdout)[-2000:]}
        return json.loads(line[len("RESULT "):])
    finally:
        shutil.rmtree(home, ignore_errors=True)


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def in_tmux(limit: float) -> dict:
    home = Path(tempfile.mkdtemp(prefix="first-word-tmux-"))
    session = f"first-word-{os.getpid()}"
    command = (f"cd {ROOT} && PYTHONPATH={ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')} "
               f"{sys.executable} -m assistant.cli --home {home}")
    out: dict = {}
    try:
        t0 = time.time()
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command], check=True)
        while "Ask about the course" not in screen(session):
            if time.time() - t0 > 120:
                return {"error": "no first paint in 120 s", "screen": screen(session)}
            time.sleep(0.05)
        out["first_paint_s"] = time.time() - t0
        # Keys typed in the first instants can be lost while the app sets up (focus comes with on_mount):
        # type, wait (a loaded machine draws slowly) until the prompt shows the question, then send it.
        for _ in range(20):
            subprocess.run(["tmux", "send-keys", "-t", session, "-l", QUESTION], check=True)
            shown_at = time.time()
            while time.time() - shown_at < 15:
                prompt = screen(session).split("Things to try", 1)[-1].split("Models", 1)[-1]
                if "What is mode collapse" in prompt or "Ask about the course" not in prompt:
                    break
                time.sleep(0.1)
            if "What is mode collapse" in prompt:
                break
        out["typed_s"] = time.time() - t0
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        # The quoted answer cites its passages: the first "[1]" under the question is its first sentence.
        while True:
            shown = screen(session)
            below = shown.split("how can I tell if my GAN has it?", 1)[-1]
            if "[1]" in below or "Not covered" in below:
                break
            if time.time() - t0 > limit:
                return {**out, "error": f"no answer in {limit} s", "screen": shown}
            time.sleep(0.1)
        out["first_word_s"] = time.time() - t0
        out["screen"] = shown
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-timeout", type=float, default=600, help="seconds to wait for the model's answer")
    parser.add_argument("--skip-tmux", action="store_true")
    parser.add_argument("--skip-headless", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    result: dict = {"load_average_at_start": round(load, 1)}
    if not args.skip_headless:
        result["headless"] = headless(args.model_timeout)
    if not args.skip_tmux and shutil.which("tmux"):
        result["tmux"] = in_tmux(limit=600)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
