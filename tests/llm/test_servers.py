"""The `openai` and `ollama` backends against loopback servers speaking their protocols."""

from __future__ import annotations

import json
import logging

from assistant import llm
from assistant.events import Notice, Text

from .fake_servers import FakeServer, closed_port

SECRET = "sk-test-do-not-log-1234567890"
SOURCES_PROMPT = [
    {"role": "system", "content": "Answer from the sources."},
    {"role": "user", "content": "<source 1 vae.md>\nThe reparameterization trick writes the latent sample as the "
                                "mean plus sigma times standard normal noise, so gradients reach the encoder.\n"
                                "</source>\n\nQuestion: How do gradients reach the encoder through the sampling step?"},
]


def _openai(configure, monkeypatch, server, **extra):
    monkeypatch.setenv("COURSE_TEST_KEY", SECRET)
    return configure("openai", base_url=server.base_url, model="tiny", api_key_env="COURSE_TEST_KEY", **extra)


def test_openai_streams_sse_and_sends_the_key(configure, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeServer("openai") as server:
        context = _openai(configure, monkeypatch, server)
        pieces = list(llm.stream_chat(context, [{"role": "user", "content": "what is a GAN?"}], max_tokens=7))
    assert len(pieces) > 2 and "".join(pieces) == "You asked: what is a GAN?"
    request = [r for r in server.requests if r["path"].endswith("/chat/completions")][-1]
    assert request["body"]["stream"] is True and request["body"]["model"] == "tiny"
    assert request["body"].get("max_completion_tokens", request["body"].get("max_tokens")) == 7
    assert request["headers"]["authorization"] == f"Bearer {SECRET}"
    # the key is read from the environment, never kept in config, state or logs
    assert SECRET not in json.dumps(context.config.data) + repr(context.state) + caplog.text


def test_openai_complete_and_status_probe(configure, monkeypatch):
    with FakeServer("openai") as server:
        context = _openai(configure, monkeypatch, server)
        assert llm.complete(context, [{"role": "user", "content": "hi"}]) == "You asked: hi"
        status = {row["name"]: row for row in llm.backend_status(context)}
    assert status["openai"]["ok"] and status["openai"]["active"]
    assert "serves tiny" in status["openai"]["detail"] and SECRET not in status["openai"]["detail"]


def test_unreachable_server_falls_back_to_extractive(configure, monkeypatch):
    monkeypatch.setenv("COURSE_TEST_KEY", SECRET)
    context = configure("openai", base_url=f"http://127.0.0.1:{closed_port()}/v1", model="tiny",
                        api_key_env="COURSE_TEST_KEY", timeout=3)
    events = list(llm.stream_events(context, SOURCES_PROMPT))
    notices = [e for e in events if isinstance(e, Notice)]
    text = "".join(e.delta for e in events if isinstance(e, Text))
    assert len(notices) == 1 and "openai" in notices[0].message and "extractive" in notices[0].message
    assert "reparameterization trick" in text and text.rstrip().endswith("[1]")
    status = {row["name"]: row for row in llm.backend_status(context)}
    assert not status["openai"]["ok"] and "unreachable" in status["openai"]["detail"]


def test_empty_reply_falls_back_with_a_notice(configure, monkeypatch):
    with FakeServer("openai", reply="") as server:
        context = _openai(configure, monkeypatch, server)
        text = "".join(llm.stream_chat(context, SOURCES_PROMPT))
    assert "[1]" in text
    notice = llm.take_notice(context)
    assert notice is not None and "empty answer" in notice.message
    assert llm.take_notice(context) is None  # taken once


def test_cancel_stops_a_server_stream(configure, monkeypatch):
    long_reply = " ".join(f"word{i}" for i in range(200))
    with FakeServer("openai", reply=long_reply, delay=0.01) as server:
        context = _openai(configure, monkeypatch, server)
        pieces = []
        for piece in llm.stream_chat(context, [{"role": "user", "content": "go"}]):
            pieces.append(piece)
            if len(pieces) == 5:
                context.cancel.cancel()
    assert len(pieces) == 5


def test_missing_server_settings_give_one_clear_notice(configure):
    context = configure("openai", base_url="", model="")
    model = llm.get_llm(context)
    assert type(model).__name__ == "ExtractiveChatModel"
    assert "llm.base_url" in llm.take_notice(context).message


def test_ollama_streams(configure):
    with FakeServer("ollama", model="qwen2.5-coder:0.5b") as server:
        context = configure("ollama", base_url=server.base_url, model="qwen2.5-coder:0.5b")
        pieces = list(llm.stream_chat(context, [{"role": "user", "content": "what is a VAE?"}]))
        status = {row["name"]: row for row in llm.backend_status(context)}
    assert len(pieces) > 2 and "".join(pieces) == "You asked: what is a VAE?"
    chat = [r for r in server.requests if r["path"] == "/api/chat"][-1]
    assert chat["body"]["model"] == "qwen2.5-coder:0.5b" and chat["body"]["options"]["num_predict"] == 24
    assert status["ollama"]["ok"]
