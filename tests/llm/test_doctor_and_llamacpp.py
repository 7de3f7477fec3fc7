"""`assistant doctor` lists every backend quickly; llama.cpp (built, or the prebuilt xllamacpp) runs a real GGUF."""

from __future__ import annotations

import importlib.util
import json

import pytest

from assistant import llm
from assistant.llm.backends import gguf_runtime
from assistant.llm.weights import SMOLLM2, source_files


def test_doctor_lists_every_backend_without_loading_models(run_cli):
    import sys

    code, out, err = run_cli("doctor", "--json")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)["llm_backends"]}
    from assistant.llm.backends import backend_names

    assert set(rows) == set(backend_names()) >= {"local", "local-1.5b", "smollm2", "llamacpp", "ollama", "openai",
                                                  "extractive"}
    assert rows["extractive"]["ok"] and rows["local"]["active"]
    assert not rows["openai"]["ok"] and "llm.base_url" in rows["openai"]["detail"]
    assert "transformers" not in sys.modules or not any(
        t.name.startswith("load-") and t.is_alive() for t in __import__("threading").enumerate())


def test_doctor_points_a_cpu_without_bfloat16_hardware_to_llamacpp(configure, monkeypatch):
    from assistant.llm import cpuinfo

    context = configure("local")
    for has, hinted in ((True, False), (False, True)):
        monkeypatch.setattr(cpuinfo, "cpu_has_bfloat16", lambda has=has: has)
        rows = {row["name"]: row for row in llm.backend_status(context)}
        assert ("`llamacpp` answers faster here" in rows["local"]["detail"]) is hinted
        assert "answers faster here" not in rows["smollm2"]["detail"]


def test_unknown_backend_is_a_notice_not_a_crash(configure):
    context = configure("gpt-17")
    assert type(llm.get_llm(context)).__name__ == "ExtractiveChatModel"
    assert "unknown LLM backend" in llm.take_notice(context).message


@pytest.mark.skipif(gguf_runtime() is None, reason="no llama.cpp runtime installed")
def test_llamacpp_generates_and_constrains_json(configure):
    # The 135M model's answers under llama.cpp are erratic (greedy decoding drifts into French), so this
    # checks streaming and the grammar; the slow test checks answer quality with Qwen through llama.cpp.
    context = configure("llamacpp", model_path=str(source_files(SMOLLM2)[0]), max_tokens=12)
    pieces = list(llm.stream_chat(context, [{"role": "user", "content": "What is the capital of France?"}]))
    assert len(pieces) > 3 and "".join(pieces).strip()
    assert llm.take_notice(context) is None
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"]}
    value = llm.generate_json(context, [{"role": "user", "content": "Give the capital of France as JSON."}],
                              schema=schema, max_tokens=60)
    assert isinstance(value, dict) and set(value) >= {"city", "country"}
    if hasattr(context.llm, "count_tokens"):  # llama-cpp-python counts with the model's own tokenizer
        assert llm.count_tokens(context, "hello world") == context.llm.count_tokens("hello world") > 0


@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp is not installed")
def test_prebuilt_llamacpp_streams_stops_and_cancels():
    from langchain_core.messages import HumanMessage

    from assistant.llm.xllamacpp import XLlamaCppChatModel

    model = XLlamaCppChatModel(model_path=str(source_files(SMOLLM2)[0]), threads=2, max_tokens=200, temperature=0)
    story = [HumanMessage("Write a long story about a robot who learns to paint.")]
    stream = model._stream(story)
    first = [next(stream).message.content for _ in range(3)]
    stream.close()  # the reader leaves: decoding stops and the model is free for the next request
    assert all(first)

    class Cancel:
        cancelled = False

    cancel, pieces = Cancel(), 0
    for _ in model._stream(story, cancel=cancel):
        pieces += 1
        if pieces == 4:
            cancel.cancelled = True
    assert 4 <= pieces <= 6  # at most a chunk or two already on their way
    counted = model.invoke([HumanMessage("Count from 1 to 9, one number per line.")], stop=["5"], max_tokens=40)
    assert "5" not in counted.content and "4" in counted.content


@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp is not installed")
def test_a_missing_gguf_is_one_clear_error(tmp_path):
    from assistant.llm.hf_local import ModelLoadError
    from assistant.llm.xllamacpp import load_server

    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        load_server(str(tmp_path / "nothing.gguf"), 512, 1)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelLoadError, match="could not load"):
        load_server(str(broken), 512, 1)
