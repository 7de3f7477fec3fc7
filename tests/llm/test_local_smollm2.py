"""The transformers path with the real SmolLM2-135M GGUF: generation, streaming, cancel, budgets."""

from __future__ import annotations

import threading

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage

from assistant import llm
from assistant.events import Notice, Text
from assistant.llm.hf_local import TransformersChatModel, converted_dir
from assistant.llm.weights import SMOLLM2
from assistant.templates import get_template


def test_answers_a_question_with_streamed_tokens(configure):
    context = configure("smollm2")
    events = list(llm.stream_events(context, [{"role": "user", "content": "What is the capital of France?"}]))
    deltas = [e.delta for e in events if isinstance(e, Text)]
    assert len(deltas) > 2, "the reply should arrive as several streamed pieces"
    assert "paris" in "".join(deltas).lower()
    assert not [e for e in events if isinstance(e, Notice) and e.level == "warning"]
    # /show-prompt gets the exact text with SmolLM2's chat template applied
    assert "<|im_start|>user\nWhat is the capital of France?" in context.state["last_prompt"]


def test_is_a_langchain_chat_model(configure):
    context = configure("smollm2")
    model = llm.get_llm(context)
    assert isinstance(model, BaseChatModel) and isinstance(model, TransformersChatModel)
    reply = model.invoke([HumanMessage(content="Say hello.")])
    assert isinstance(reply, AIMessage) and reply.content.strip()


def test_conversion_is_saved_once_as_safetensors(configure, model_cache):
    context = configure("smollm2")
    llm.complete(context, [{"role": "user", "content": "Hi"}], max_tokens=2)
    folder = converted_dir(SMOLLM2, model_cache, "bfloat16")
    assert (folder / "converted.json").is_file() and (folder / "model.safetensors").is_file()
    status = {row["name"]: row for row in llm.backend_status(context)}
    assert status["smollm2"]["ok"] and "converted" in status["smollm2"]["detail"] and status["smollm2"]["active"]


def test_cancel_stops_generation_at_once(configure):
    context = configure("smollm2", max_tokens=200)
    pieces = []
    for piece in llm.stream_chat(context, [{"role": "user", "content": "Write a long story about a dragon."}]):
        pieces.append(piece)
        if len(pieces) == 3:
            context.cancel.cancel()
    assert 3 <= len(pieces) <= 4, f"generation went on after cancel: {len(pieces)} pieces"
    assert not [t for t in threading.enumerate() if t.name == "generate" and t.is_alive()]
    # a reader that simply stops reading also ends the worker
    context.cancel.reset()
    stream = llm.stream_chat(context, [{"role": "user", "content": "Count from one to fifty in words."}])
    next(stream)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name == "generate" and t.is_alive()]


def test_preload_starts_a_background_load(configure):
    context = configure("smollm2")
    thread = llm.preload(context)
    assert thread is not None
    thread.join(timeout=300)
    assert context.llm.load.result is not None and context.llm.load.stage == "ready"


def test_fit_sources_keeps_the_question_and_fits_the_window(configure):
    context = configure("smollm2", context_window=512, max_tokens=64)
    llm.preload(context).join(timeout=300)
    question = "Why does the reparameterization trick let gradients flow through sampling?"
    passage = ("The encoder outputs a mean and a log-variance. Sampling is rewritten as mean plus sigma times "
               "noise drawn from a standard normal, so the randomness sits outside the network. ") * 6
    sources = [passage, passage.upper(), passage[::-1]]
    template = get_template("rag")
    kept = llm.fit_sources(context, question, sources, system=template.system)
    assert 1 <= len(kept) < len(sources)
    assert all(sources[i].startswith(k.rstrip(" …")) for i, k in enumerate(kept))
    fenced = "\n\n".join(f"<source {i + 1}>\n{t}\n</source>" for i, t in enumerate(kept))
    system, user = template.render(sources=fenced, question=question)
    prompt_tokens = llm.count_tokens(context, system + user)
    assert question in user
    assert prompt_tokens <= llm.context_window(context) - 64
    # counting used SmolLM2's own tokenizer, not the character estimate
    tokenizer = context.llm.tokenizer_if_ready()
    assert llm.count_tokens(context, passage) == len(tokenizer(passage, add_special_tokens=False)["input_ids"])


def test_model_command_switches_the_live_model(configure):
    from assistant.events import Collected
    from assistant.llm.extractive import ExtractiveChatModel
    from assistant.router import dispatch

    context = configure("smollm2")
    assert isinstance(context.llm, TransformersChatModel)
    Collected(dispatch("/model extractive", context))
    assert isinstance(context.llm, ExtractiveChatModel)
    Collected(dispatch("/model smollm2", context))
    reply = llm.complete(context, [{"role": "user", "content": "What is the capital of France?"}])
    assert isinstance(context.llm, TransformersChatModel) and "paris" in reply.lower()


def test_sample_replies_draws_several_answers_in_one_call(configure):
    context = configure("smollm2", max_tokens=12)
    replies = llm.sample_replies(context, [{"role": "user", "content": "Name a colour."}], n=3, temperature=1.0)
    assert len(replies) == 3 and all(isinstance(r, str) and r.strip() for r in replies)
    assert "<|im_start|>user\nName a colour." in context.state["last_prompt"]
    assert llm.sample_replies(configure("extractive"), [{"role": "user", "content": "x"}], n=3) is None
