"""llama.cpp without a compile step: any GGUF file through the prebuilt `xllamacpp` wheel.

`llama-cpp-python` has no wheel on PyPI and takes 9-15 minutes to build;
`xllamacpp` ships llama.cpp compiled for any x86-64 CPU with AVX2 (34 MB, no
dependencies). It decodes Qwen2.5-Coder-1.5B about 3.7x faster than the
transformers runtime here (12.5 vs 3.4 tokens/s), but reads a prompt about
half as fast (docs/llm.md), so it pays off for the 1.5B model, not the 0.5B.

Its Python API is llama.cpp's server run in-process: one `Server` per model
(it also listens on a loopback port, 127.0.0.1 only), and OpenAI-style
requests whose streamed chunks arrive through a callback in the calling
thread. `XLlamaCppChatModel` runs that call in a worker thread and hands the
pieces over through a queue, so stopping the iteration (or `cancel`) makes the
callback return True, which stops decoding.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from pathlib import Path
from typing import Any, Iterator, List, Optional

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from assistant.llm.hf_local import ModelLoadError, to_dicts
from assistant.llm.llamacpp import GgufChatModel

_SERVERS: dict[tuple, tuple[Any, threading.Lock]] = {}
_LOCK = threading.Lock()
_DONE = object()


@atexit.register
def _close_servers() -> None:
    _SERVERS.clear()  # each Server stops its loop when collected, while the interpreter is intact


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("xllamacpp") is not None


def load_server(path: str, n_ctx: int, threads: int) -> tuple[Any, threading.Lock]:
    """The model's Server (loaded once per path, window and threads) and the lock that serialises its requests."""
    key = (path, n_ctx, threads)
    with _LOCK:
        if key not in _SERVERS:
            try:
                import xllamacpp
            except ImportError as exc:
                raise ModelLoadError("xllamacpp is not installed (pip install xllamacpp)") from exc
            if not Path(path).is_file():
                raise ModelLoadError(f"GGUF file not found: {path} (set llm.model_path)")
            params = xllamacpp.CommonParams()
            params.model.path = path
            params.n_ctx = n_ctx
            params.n_parallel = 1
            params.verbosity = -1  # llama.cpp's own log lines would land in the terminal
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads or os.cpu_count() or 1
            try:
                _SERVERS[key] = (xllamacpp.Server(params), threading.Lock())
            except Exception as exc:  # noqa: BLE001 - a bad file raises RuntimeError with llama.cpp's message
                raise ModelLoadError(f"llama.cpp could not load {path}: {exc}".splitlines()[0]) from exc
        return _SERVERS[key]


class XLlamaCppChatModel(GgufChatModel):
    @property
    def _llm_type(self) -> str:
        return "xllamacpp"

    def _request(self, messages: List[BaseMessage], stop: Optional[List[str]], max_tokens: int | None,
                 temperature: float | None, json_schema: dict | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": to_dicts(messages), "stream": True,
            "max_tokens": int(max_tokens or self.max_tokens),
            "temperature": self.temperature if temperature is None else float(temperature),
        }
        if stop:
            request["stop"] = list(stop)
        if json_schema is not None:  # grammar-constrained: the output parses every time
            request["response_format"] = ({"type": "json_schema", "json_schema": {"name": "reply", "schema": json_schema}}
                                          if json_schema else {"type": "json_object"})
        return request

    def _stream(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                run_manager: Optional[CallbackManagerForLLMRun] = None, cancel: Any = None,
                max_tokens: int | None = None, temperature: float | None = None,
                json_schema: dict | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        server, busy = load_server(self.model_path, self.context_window, self.threads)
        request = self._request(messages, stop, max_tokens, temperature, json_schema)
        pieces: queue.Queue = queue.Queue()
        stopped = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            for choice in (chunk or {}).get("choices", []) if isinstance(chunk, dict) else []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    pieces.put(piece)
            return stopped.is_set() or bool(cancel is not None and cancel.cancelled)  # True stops decoding

        def run() -> None:
            try:
                with busy:
                    reply = server.handle_chat_completions(request, on_chunk)
                if isinstance(reply, dict) and reply.get("error"):
                    error = reply["error"]
                    pieces.put(ModelLoadError(f"llama.cpp: {error.get('message', error) if isinstance(error, dict) else error}"))
            except Exception as exc:  # noqa: BLE001 - handed to the reading thread
                pieces.put(exc)
            finally:
                pieces.put(_DONE)

        worker = threading.Thread(target=run, name="xllamacpp-decode", daemon=True)
        worker.start()
        try:
            while True:
                item = pieces.get()
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    raise item
                if run_manager:
                    run_manager.on_llm_new_token(item)
                yield ChatGenerationChunk(message=AIMessageChunk(content=item))
        finally:
            stopped.set()  # the reader is gone (done, cancelled or closed): the next chunk stops decoding
            worker.join()
