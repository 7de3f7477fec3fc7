"""The `llamacpp` backend: any GGUF file through llama-cpp-python (an optional extra).

llama.cpp runs the quantized weights directly (no dequantizing, ~3x faster
decoding than transformers here) and can constrain output with a JSON grammar.
It has no wheel on PyPI; building it takes 9-15 minutes, see docs/llm.md.
Tokens are produced lazily by the iterator, so stopping the iteration (cancel)
stops decoding.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any, ClassVar, Iterator, List, Optional

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from assistant.llm.hf_local import ModelLoadError, to_dicts

_MODELS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    # Close while the interpreter is intact; llama.cpp's __del__ fails noisily at shutdown.
    for model in _MODELS.values():
        try:
            model.close()
        except Exception:  # noqa: BLE001
            pass
    _MODELS.clear()


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def load_llama(path: str, n_ctx: int, threads: int) -> Any:
    key = (path, n_ctx, threads)
    with _LOCK:
        if key not in _MODELS:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelLoadError(
                    "llama-cpp-python is not installed (optional; see docs/llm.md for the build command)"
                ) from exc
            if not Path(path).is_file():
                raise ModelLoadError(f"GGUF file not found: {path} (set llm.model_path)")
            try:
                _MODELS[key] = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads or os.cpu_count() or 1,
                                     verbose=False)
            except Exception as exc:  # noqa: BLE001 - llama.cpp raises ValueError on a bad file
                raise ModelLoadError(f"llama.cpp could not load {path}: {exc}".splitlines()[0]) from exc
        return _MODELS[key]


class GgufChatModel(BaseChatModel):
    """What both llama.cpp bindings share: the settings, cancel and JSON grammar; subclasses stream."""

    accepts_cancel: ClassVar[bool] = True
    constrains_json: ClassVar[bool] = True  # decoding follows a JSON grammar (generate_json)

    model_path: str
    threads: int = 0
    temperature: float = 0.2
    max_tokens: int = 512
    context_window: int = 4096

    def _generate(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                  run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> ChatResult:
        text = "".join(str(c.message.content) for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


class LlamaCppChatModel(GgufChatModel):
    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    def llama(self) -> Any:
        return load_llama(self.model_path, self.context_window, self.threads)

    def _stream(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                run_manager: Optional[CallbackManagerForLLMRun] = None, cancel: Any = None,
                max_tokens: int | None = None, temperature: float | None = None,
                json_schema: dict | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        options: dict[str, Any] = dict(
            messages=to_dicts(messages), stream=True, stop=stop or None,
            max_tokens=int(max_tokens or self.max_tokens),
            temperature=self.temperature if temperature is None else float(temperature),
        )
        if json_schema is not None:  # grammar-constrained: the output parses every time
            options["response_format"] = {"type": "json_object", "schema": json_schema} if json_schema else {
                "type": "json_object"}
        for part in self.llama().create_chat_completion(**options):
            if cancel is not None and cancel.cancelled:
                break
            piece = part["choices"][0].get("delta", {}).get("content") or ""
            if piece:
                if run_manager:
                    run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))

    def count_tokens(self, text: str) -> int:
        return len(self.llama().tokenize(text.encode("utf-8"), add_bos=False, special=True))
