"""The command line contract: --json, one-line errors, exit codes, doctor, start-up weight."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {"torch", "tensorflow", "transformers", "sentence_transformers", "chromadb", "keras"}


def test_importing_the_cli_loads_no_heavy_library():
    code = "import sys, assistant.cli; print(','.join(sorted(set(sys.modules) & %r)))" % HEAVY
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_help_lists_core_subcommands():
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "doctor" in out.stdout and "plugins" in out.stdout


def test_doctor_json_reports_environment(run_cli, home):
    code, out, _ = run_cli("doctor", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["state_dir"] == str(home)
    assert report["python"] == sys.version.split()[0]
    assert report["packages"]["textual"]  # installed, so a version string
    names = {c["name"]: c for c in report["checks"]}
    assert names["embeddings all-MiniLM-L6-v2"]["ok"] is True
    assert names["SmolLM2-135M GGUF"]["ok"] is True
    assert any(b["name"] == "extractive" and b["ok"] for b in report["llm_backends"])


def test_usage_error_exits_2(run_cli):
    code, _, err = run_cli("no-such-subcommand")
    assert code == 2
    assert "invalid choice" in err


def test_broken_config_is_one_line_error(run_cli, home):
    (home / "config.toml").write_text("this is [not toml")
    code, out, err = run_cli("doctor")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "config.toml" in errors[0]
    assert "Traceback" not in err


def test_state_directory_layout_is_created(run_cli, home):
    run_cli("plugins")
    for sub in ("index", "models", "outputs"):
        assert (home / sub).is_dir()
