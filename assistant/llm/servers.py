"""The `openai` and `ollama` backends: a model served over HTTP.

`openai` speaks to any OpenAI-compatible server (vLLM, llama.cpp's server,
LM Studio, OpenAI itself): `llm.base_url` (e.g. http://127.0.0.1:8000/v1),
`llm.model`, and the key read from the environment variable named by
`llm.api_key_env` (the key itself is never stored, printed or logged).
`ollama` speaks Ollama's /api/chat at `llm.base_url` (default
http://127.0.0.1:11434).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from assistant.errors import UserError

OLLAMA_DEFAULT_URL = "http://127.0.0.1:11434"


class ServerConfigError(UserError):
    pass


def _common(context: Any) -> dict[str, Any]:
    cfg = context.config
    return {"temperature": float(cfg.get("llm.temperature")), "max_tokens": int(cfg.get("llm.max_tokens"))}


def openai_model(context: Any):
    from langchain_openai import ChatOpenAI

    cfg = context.config
    base_url, model = cfg.get("llm.base_url"), cfg.get("llm.model")
    if not base_url or not model:
        raise ServerConfigError("the openai backend needs llm.base_url and llm.model in config.toml")
    key = os.environ.get(cfg.get("llm.api_key_env"), "")
    common = _common(context)
    return ChatOpenAI(
        base_url=base_url, model=model, api_key=key or "not-needed", temperature=common["temperature"],
        max_tokens=common["max_tokens"], streaming=True, max_retries=0,
        timeout=float(cfg.get("llm.timeout")),
    )


def ollama_model(context: Any):
    from langchain_ollama import ChatOllama

    cfg = context.config
    model = cfg.get("llm.model")
    if not model:
        raise ServerConfigError("the ollama backend needs llm.model in config.toml (e.g. qwen2.5-coder:0.5b)")
    common = _common(context)
    return ChatOllama(
        base_url=cfg.get("llm.base_url") or OLLAMA_DEFAULT_URL, model=model,
        temperature=common["temperature"], num_predict=common["max_tokens"],
        num_ctx=int(cfg.get("llm.context_window")),
        client_kwargs={"timeout": float(cfg.get("llm.timeout"))},
    )


class SameOriginAuthRedirect(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends the API key only to the origin it was meant for.

    urllib copies every header onto the redirected request, so a server (or a
    hijacked one) answering 302 to another host would receive the key. The key
    is kept as an unredirected header and re-attached only for the same scheme,
    host and port.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        auth = req.unredirected_hdrs.get("Authorization")
        if new is not None and auth and _origin(newurl) == _origin(req.full_url):
            new.add_unredirected_header("Authorization", auth)
        return new


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port


def probe(kind: str, context: Any, timeout: float = 1.5) -> tuple[bool, str]:
    """(reachable, detail) from one short GET: /models (openai) or /api/tags (ollama)."""
    cfg = context.config
    base = (cfg.get("llm.base_url") or (OLLAMA_DEFAULT_URL if kind == "ollama" else "")).rstrip("/")
    model = cfg.get("llm.model")
    if not base:
        return False, "not configured: set llm.base_url and llm.model"
    url = f"{base}/api/tags" if kind == "ollama" else f"{base}/models"
    request = urllib.request.Request(url)
    key_env = cfg.get("llm.api_key_env")
    if kind == "openai" and os.environ.get(key_env):
        request.add_unredirected_header("Authorization", f"Bearer {os.environ[key_env]}")
    try:
        with urllib.request.build_opener(SameOriginAuthRedirect).open(request, timeout=timeout) as response:
            body = json.loads(response.read(1 << 20) or b"{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{base} unreachable ({reason})"
    names = [m.get("id") or m.get("name") or m.get("model") for m in body.get("data", body.get("models", []))
             if isinstance(m, dict)]
    if not model:
        return False, f"{base} reachable, but llm.model is not set"
    if names and model not in names and f"{model}:latest" not in names:
        return False, f"{base} reachable, but it does not serve {model!r} (it serves {', '.join(map(str, names[:5]))})"
    key_note = f"; key from ${key_env}: {'set' if os.environ.get(key_env) else 'not set'}" if kind == "openai" else ""
    return True, f"{base} serves {model}{key_note}"
