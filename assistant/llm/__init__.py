"""The LLM layer: one LangChain chat-model interface over several backends.

Public API (other plugins use only these):

- `get_llm(context, backend=None)` -> a LangChain `BaseChatModel` for the
  configured backend (`llm.backend` in config.toml, `/model`, `--model`).
- `stream_chat(context, messages, **kw)` -> iterator of text deltas; stops at
  once when `context.cancel` is set; records the exact prompt in
  `context.state["last_prompt"]` for `/show-prompt`.
- `complete(context, messages, **kw)` -> the whole reply as one string.

`messages` are dicts {"role": "system"|"user"|"assistant", "content": str}
or LangChain messages.

NOTE: this is the interface skeleton; the backends are filled in by issue 4.
"""

from __future__ import annotations

from typing import Any, Iterator

BACKENDS = ("local", "smollm2", "llamacpp", "ollama", "openai", "extractive")


def _to_dicts(messages: list[Any]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        if isinstance(m, dict):
            out.append({"role": m["role"], "content": m["content"]})
        else:  # LangChain BaseMessage
            role = {"human": "user", "ai": "assistant"}.get(m.type, m.type)
            out.append({"role": role, "content": str(m.content)})
    return out


def render_prompt(messages: list[Any]) -> str:
    """A readable transcript of the messages, for /show-prompt."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in _to_dicts(messages))


def get_llm(context: Any, backend: str | None = None):
    from assistant.llm.extractive import ExtractiveChatModel

    return ExtractiveChatModel()


def stream_chat(context: Any, messages: list[Any], **kwargs: Any) -> Iterator[str]:
    context.state["last_prompt"] = render_prompt(messages)
    llm = context.llm
    for chunk in llm.stream(messages, **kwargs):
        if context.cancel.cancelled:
            break
        text = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
        if text:
            yield text


def complete(context: Any, messages: list[Any], **kwargs: Any) -> str:
    return "".join(stream_chat(context, messages, **kwargs))


def backend_status(context: Any) -> list[dict[str, Any]]:
    """[{"name", "ok", "detail"}] for `assistant doctor`; must not load models."""
    return [{"name": "extractive", "ok": True, "detail": "always available (quotes retrieved passages)"}]
