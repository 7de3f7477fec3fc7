"""The LLM layer: one LangChain chat-model interface over several backends.

Backends (`llm.backend` in config.toml, `/model NAME` in the chat, `--model NAME`):
`local` (default, Qwen2.5-Coder-0.5B-Instruct via transformers), `smollm2`
(SmolLM2-135M, tests and weak machines), `llamacpp` (any GGUF through
llama-cpp-python), `ollama`, `openai` (any OpenAI-compatible server) and
`extractive` (no model: quotes the retrieved passages).

Public API (other plugins use only these):

- `get_llm(context, backend=None)` -> a LangChain `BaseChatModel`. Never
  raises for a backend that cannot work: it returns the extractive model and
  leaves a notice (see below). Local models load in a background thread.
- `preload(context)` -> starts loading the configured local model in the
  background (the TUI calls it at start-up); returns the loading thread or None.
- `stream_chat(context, messages, max_tokens=None, temperature=None, stop=None)`
  -> iterator of text deltas. Stops at once when `context.cancel` is set.
  Records the prompt in `context.state["last_prompt"]` (after the reply: the
  exact text with the model's chat template applied, for `/show-prompt`).
- `stream_events(context, messages, ...)` -> the same as `Text` events, with
  `Notice` events for fallbacks and model loading: the easiest way for a plugin.
- `complete(context, messages, ...)` -> the whole reply as one string.
- `generate_json(context, messages, schema=None)` -> parsed JSON (grammar-
  constrained with llamacpp; otherwise the first JSON value in the reply).
- `sample_replies(context, messages, n, temperature, max_tokens)` -> n sampled
  replies in one batched call (local transformers backends), else None.
- `count_tokens(context, text)`, `context_window(context)`,
  `fit_sources(context, question, sources, budget=None)` (see budget.py).
- `render_prompt(messages)`, `backend_status(context)` (for `assistant doctor`).

Backends are registered in the entry-point group `assistant.llm_backends`
(backends.py); `backends.backend_names()` lists them.

Fallback and notices: when the configured model cannot answer (missing or
corrupt model files, unreachable server, a failed load, an empty reply),
`stream_chat` answers with the extractive backend instead and stores one line
saying why in `context.state["llm_notice"]`. Plugins that use `stream_chat`
directly call `take_notice(context)` (-> `Notice` or None) after streaming and
yield it; `stream_events` does that for them. Load failures also switch the
session to extractive until `/model` is used again.

`messages` are dicts {"role": "system"|"user"|"assistant", "content": str}
or LangChain messages.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from assistant.llm.budget import context_window, count_tokens, fit_sources  # noqa: F401 - public API

NOTICE_KEY = "llm_notice"


def _to_dicts(messages: list[Any]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        if isinstance(m, dict):
            out.append({"role": m["role"], "content": m["content"]})
        else:  # LangChain BaseMessage
            role = {"human": "user", "ai": "assistant"}.get(m.type, m.type)
            out.append({"role": role, "content": str(m.content)})
    return out


def _to_langchain(messages: list[Any]) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds.get(m["role"], HumanMessage)(content=m["content"]) for m in _to_dicts(messages)]


def render_prompt(messages: list[Any]) -> str:
    """A readable transcript of the messages, for /show-prompt."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in _to_dicts(messages))


# -- notices -----------------------------------------------------------------
def _notice(context: Any, message: str) -> None:
    context.state[NOTICE_KEY] = message


def take_notice(context: Any):
    """The pending LLM notice as a `Notice` event (and clear it), or None."""
    from assistant.events import Notice

    message = context.state.pop(NOTICE_KEY, None)
    return Notice("warning", message) if message else None


def _one_line(exc: BaseException) -> str:
    from assistant.errors import first_line

    return first_line(exc)[:300]


# -- building models ---------------------------------------------------------
def _build(context: Any, name: str):
    from assistant.llm.backends import backend_names, backends

    backend = backends().get(name)
    if backend is None and not backends():
        from assistant.errors import UserError

        raise UserError("no LLM backend is registered (the entry-point group assistant.llm_backends is empty)",
                        "reinstall course-assistant: pip install -e . or make install")
    if backend is None:
        raise ValueError(f"unknown LLM backend {name!r}; choose one of {', '.join(backend_names())}")
    return backend.build(context)


def get_llm(context: Any, backend: str | None = None):
    """The chat model for `backend` (default: `llm.backend`); extractive, with a notice, if it cannot work."""
    from assistant.llm.extractive import ExtractiveChatModel

    name = backend or context.config.get("llm.backend") or "local"
    try:
        return _build(context, name)
    except Exception as exc:  # noqa: BLE001 - any backend problem becomes a notice and the fallback
        _notice(context, f"LLM backend {name!r} unavailable: {_one_line(exc)}; answering by quoting the "
                         "retrieved passages (extractive) instead")
        return ExtractiveChatModel()


def preload(context: Any):
    """Start loading the configured model in the background; returns the thread (or None)."""
    load = getattr(context.llm, "load", None)
    return load.thread if load is not None else None


# -- generating --------------------------------------------------------------
def _with_overrides(llm: Any, max_tokens: int | None, temperature: float | None):
    """A copy of `llm` with per-call limits, using each class's own field names."""
    update: dict[str, Any] = {}
    fields = getattr(type(llm), "model_fields", {})
    if max_tokens is not None:
        key = "num_predict" if "num_predict" in fields else "max_tokens"
        if key in fields:
            update[key] = int(max_tokens)
    if temperature is not None and "temperature" in fields:
        update["temperature"] = float(temperature)
    return llm.model_copy(update=update) if update else llm


def _backend_name(context: Any) -> str:
    return context.config.get("llm.backend") or "local"


def _fallback(context: Any, messages: list[Any], reason: str, permanent: bool) -> Iterator[str]:
    from assistant.llm.extractive import ExtractiveChatModel

    _notice(context, f"{reason}; answering by quoting the retrieved passages (extractive) instead")
    fallback = ExtractiveChatModel()
    if permanent:  # a model that failed to load stays failed: do not retry on every question
        context.replace_service("llm", fallback)
    for chunk in fallback.stream(messages):
        if context.cancel.cancelled:
            return
        yield str(chunk.content)


def stream_chat(context: Any, messages: list[Any], max_tokens: int | None = None, temperature: float | None = None,
                stop: list[str] | None = None, **kwargs: Any) -> Iterator[str]:
    """Text deltas of the reply; falls back to extractive (with a notice) when the model cannot answer."""
    from assistant.cancel import Cancelled
    from assistant.llm.extractive import ExtractiveChatModel

    context.state["last_prompt"] = render_prompt(messages)
    lc_messages = _to_langchain(messages)
    llm = context.llm
    if getattr(llm, "accepts_cancel", False):
        kwargs["cancel"] = context.cancel
    model = _with_overrides(llm, max_tokens, temperature)
    produced = ""
    try:
        for chunk in model.stream(lc_messages, stop=stop, **kwargs):
            if context.cancel.cancelled:
                return
            text = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
            if text:
                produced += text
                yield text
    except Cancelled:
        return
    except Exception as exc:  # noqa: BLE001 - one line for the user, and the conversation goes on
        from assistant.llm.hf_local import ModelLoadError
        from assistant.llm.weights import WeightsError

        if produced.strip():
            _notice(context, f"the {_backend_name(context)} model stopped early: {_one_line(exc)}")
            return
        permanent = isinstance(exc, (ModelLoadError, WeightsError))
        yield from _fallback(context, lc_messages, f"the {_backend_name(context)} model failed: {_one_line(exc)}",
                             permanent)
        return
    finally:
        exact = getattr(model, "last_prompt", "")
        if isinstance(exact, str) and exact:
            context.state["last_prompt"] = exact
            if model is not llm and hasattr(llm, "_last_prompt"):
                llm._last_prompt = exact
    if not produced.strip() and not context.cancel.cancelled and not isinstance(llm, ExtractiveChatModel):
        yield from _fallback(context, lc_messages, f"the {_backend_name(context)} model returned an empty answer",
                             permanent=False)


def stream_events(context: Any, messages: list[Any], **kwargs: Any) -> Iterator[Any]:
    """`Text` deltas of the reply, preceded by `Notice`s (model loading, fallback)."""
    from assistant.events import Notice, Text

    llm = context.llm
    pending = take_notice(context)
    if pending:
        yield pending
    load = getattr(llm, "load", None)
    if load is not None and not load.done:
        # The stage may already say how long ("converting ... (first use only, about a minute)"): say it once.
        when = "" if "first use" in load.stage else " (the first use converts it, about a minute)"
        yield Notice("info", f"waiting for the model: {load.stage}{when}")
    for delta in stream_chat(context, messages, **kwargs):
        pending = take_notice(context)
        if pending:
            yield pending
        yield Text(delta)
    pending = take_notice(context)
    if pending:
        yield pending


def complete(context: Any, messages: list[Any], **kwargs: Any) -> str:
    return "".join(stream_chat(context, messages, **kwargs))


def sample_replies(context: Any, messages: list[Any], n: int, temperature: float = 0.7,
                   max_tokens: int | None = None) -> list[str] | None:
    """`n` sampled replies in one batched call on the local transformers backends (about the cost
    of 1.5 single replies on a CPU); None for other backends: then call `complete` n times.
    Raises `assistant.cancel.Cancelled` when cancelled."""
    sample = getattr(context.llm, "sample", None)
    if sample is None:
        return None
    replies = sample(_to_langchain(messages), n, temperature, max_tokens, cancel=context.cancel)
    context.state["last_prompt"] = getattr(context.llm, "last_prompt", "") or render_prompt(messages)
    return replies


def first_json(text: str) -> Any:
    """The first JSON object or array in `text` (e.g. inside a ```json fence); ValueError if none."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
            return value
        except json.JSONDecodeError:
            continue
    raise ValueError("the model's reply contains no valid JSON")


def constrains_json(context: Any) -> bool:
    """Whether the active model's decoding is grammar-constrained to valid JSON (llama.cpp)."""
    return bool(getattr(context.llm, "constrains_json", False))


def generate_json(context: Any, messages: list[Any], schema: dict | None = None, **kwargs: Any) -> Any:
    """Parsed JSON from the model: grammar-constrained with llamacpp (valid every time), else parsed
    from the reply (ValueError when it holds none). `schema` is a JSON Schema or None."""
    if constrains_json(context):
        kwargs["json_schema"] = schema or {}
    return first_json(complete(context, messages, **kwargs))


# -- doctor ------------------------------------------------------------------
def backend_status(context: Any) -> list[dict[str, Any]]:
    """[{"name", "ok", "detail", "active"}] for `assistant doctor`, one per registered backend. Loads no
    model; servers get one short probe, only when configured."""
    from assistant.llm.backends import backends, failures

    active = _backend_name(context)
    rows = []
    for name, backend in backends().items():
        try:
            ok, detail = backend.status(context)
        except Exception as exc:  # noqa: BLE001 - a faulty check is a failed check
            ok, detail = False, _one_line(exc)
        rows.append({"name": name, "ok": bool(ok), "detail": detail})
    rows += [{"name": name, "ok": False, "detail": f"failed to load: {error}"} for name, error in failures.items()]
    for row in rows:
        row["active"] = row["name"] == active
        if row["active"]:
            row["detail"] = "in use; " + row["detail"]
    return rows
