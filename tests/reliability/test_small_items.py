"""The smaller hostile-input items: numeric limits, built-in classifier names, CSV rows, doctor redirects."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from assistant.events import Collected


@pytest.mark.parametrize("args", [
    ("prompt", "self-consistency", "x", "--paths", "100000"),
    ("prompt", "cot", "x", "--temperature", "nan"),
    ("prompt", "cot", "x", "--max-tokens", "0"),
    ("image", "train", "vae", "--latent-dim", str(10**6)),
    ("image", "train", "vae", "--time-budget", "nan"),
    ("image", "train", "vae", "--epochs", "-1"),
    ("image", "sample", "vae", "--n", "1000000000"),
    ("image", "sample", "diffusion", "--eta", "2"),
    ("image", "sample", "diffusion", "--label", "10"),
    ("classify", "train", "--data", "x.csv", "--rank", "100000"),
])
def test_numeric_flags_are_bounded_with_the_range_in_the_error(run_cli, args):
    code, _out, err = run_cli(*args)
    assert code == 2 and "must be between" in err, err
    assert err.strip().splitlines()[-1].count("\n") == 0 and "Traceback" not in err


@pytest.mark.parametrize("line", [
    "/ask what is a VAE --k 1000000",
    "/retrieve what is a VAE --k 0",
    "/image vae --n 1000000000",
    "/train vae --latent-dim 1000000",
    "/cot why --temperature inf",
    "/self-consistency why --paths 100000",
    "/classify train --data x.csv --epochs 100000",
])
def test_slash_options_are_bounded_with_the_range_in_the_error(context, line):
    from assistant.router import dispatch

    events = Collected(dispatch(line, context))
    assert events.errors and "must be between" in events.errors[0].message, line


def test_a_user_classifier_cannot_take_a_built_in_name(context, tmp_path):
    from course_assistant_plugins.classifier import train_classifier
    from course_assistant_plugins.classifier.store import ClassifierError, model_dir

    data = tmp_path / "mine.csv"
    data.write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-8")
    for name in ("sentiment", "intents"):
        with pytest.raises(ClassifierError, match=f"'{name}' is a built-in classifier"):
            list(train_classifier(context, {"data": str(data), "name": name}))
        assert not model_dir(context.home, name).exists()


def test_csv_rows_are_not_split_on_unicode_line_separators(tmp_path):
    from course_assistant_plugins.classifier.data import load_labelled

    data = tmp_path / "reviews.csv"
    rows = ["first line\u2028same review,pos", "with a next-line\x85char,neg", "\"quoted\nnewline\",pos",
            "page\x0cbreak,neg", "plain,pos"] * 3
    data.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    loaded = load_labelled(data)
    assert loaded.texts[:5] == ["first line\u2028same review", "with a next-line\x85char", "quoted\nnewline",
                                "page\x0cbreak", "plain"]
    assert loaded.labels[:5] == ["pos", "neg", "pos", "neg", "pos"] and len(loaded.texts) == 15


def test_doctor_never_sends_the_api_key_across_a_redirect_to_another_host(context, monkeypatch):
    from assistant.llm.servers import probe

    seen: dict[str, list] = {"origin": [], "other": []}

    def server(name: str, redirect_to: str | None = None) -> HTTPServer:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                seen[name].append((self.path, self.headers.get("Authorization")))
                if redirect_to and self.path == "/v1/models":
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.end_headers()
                    return
                if redirect_to and self.path == "/v1/here":  # a same-origin redirect keeps the key
                    self.send_response(302)
                    self.send_header("Location", "/v1/models-same")
                    self.end_headers()
                    return
                body = b'{"data": [{"id": "tiny"}]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        httpd = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd

    other = server("other")
    # 127.0.0.1 vs localhost: another host name for the same machine is another origin.
    origin = server("origin", redirect_to=f"http://localhost:{other.server_port}/v1/models")
    try:
        monkeypatch.setenv("SECRET_TEST_KEY", "sk-do-not-leak")
        cfg = context.config
        cfg.set("llm.base_url", f"http://127.0.0.1:{origin.server_port}/v1", save=False)
        cfg.set("llm.model", "tiny", save=False)
        cfg.set("llm.api_key_env", "SECRET_TEST_KEY", save=False)
        ok, detail = probe("openai", context)
        assert ok, detail
        assert seen["origin"] == [("/v1/models", "Bearer sk-do-not-leak")]
        assert seen["other"] == [("/v1/models", None)]
    finally:
        origin.shutdown()
        other.shutdown()
