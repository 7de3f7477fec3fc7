"""The `local` and `smollm2` backends: a GGUF model run with transformers on the CPU.

transformers reads a GGUF by dequantizing every tensor (Qwen 0.5B: ~45 s), so the
first load converts the model once and saves it as safetensors under
`models/<name>-<sha12>-<dtype>/` (written to a temp folder, then renamed);
later loads read that folder in seconds. Loading runs in a background thread
(`start_load`), shared by everyone who asks for the same model, so the TUI can
start it while the user types and a reply simply waits for it.

Generation streams through `TextIteratorStreamer` from a worker thread; a
`StoppingCriteria` checks the cancel token (and whether the reader went away)
after every token, so Escape stops decoding at once.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, List, Optional

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from assistant.cancel import Cancelled
from assistant.llm.weights import GgufSpec, WeightsError, gguf_path


class ModelLoadError(Exception):
    """The model could not be loaded; the message is one line for the user."""


def _import_transformers():
    os.environ.setdefault("USE_TF", "0")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from assistant.modelload import MODEL_LOAD_LOCK

    # transformers resolves its names lazily, and that is not thread-safe: the model loading in the
    # background while MiniLM loads for retrieval failed with "cannot import name 'AutoModel'".
    # Everything that imports transformers' submodules does it under the model-load lock.
    with MODEL_LOAD_LOCK:
        import torch
        import transformers

        for name in ("AutoTokenizer", "AutoModelForCausalLM", "TextIteratorStreamer", "StoppingCriteria",
                     "StoppingCriteriaList"):
            getattr(transformers, name)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return torch, transformers


def _load_causal_lm(transformers, torch, path: str, dtype, **kwargs):
    """from_pretrained under the process-wide model-load lock (see assistant.modelload)."""
    from assistant.modelload import MODEL_LOAD_LOCK

    with MODEL_LOAD_LOCK:
        return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)


def _quiet_gguf_progress() -> None:
    """The GGUF reader draws its own tqdm bar on stderr, which would corrupt the TUI."""
    import functools

    import tqdm.auto
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    gguf_utils.tqdm = functools.partial(tqdm.auto.tqdm, disable=True)


DTYPES = ("int8", "bfloat16", "float32")


def storage_dtype(dtype: str) -> str:
    """The dtype saved on disk: int8 runs from the bfloat16 weights, quantized at load (~2 s)."""
    if dtype not in DTYPES:
        raise ModelLoadError(f"llm.dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    return "bfloat16" if dtype == "int8" else dtype


def converted_dir(spec: GgufSpec, models_dir: Path, dtype: str) -> Path:
    return models_dir / f"{spec.name}-{spec.sha256[:12]}-{storage_dtype(dtype)}"


def is_converted(spec: GgufSpec, models_dir: Path, dtype: str) -> bool:
    return (converted_dir(spec, models_dir, dtype) / "converted.json").is_file()


def convert(spec: GgufSpec, models_dir: Path, dtype: str, progress: Callable[[str], None] | None = None) -> Path:
    """Dequantize the GGUF once and save it as safetensors + tokenizer (atomic folder rename)."""
    final = converted_dir(spec, models_dir, dtype)
    if (final / "converted.json").is_file():
        return final
    gguf = gguf_path(spec, models_dir, progress)
    torch, transformers = _import_transformers()
    dtype = storage_dtype(dtype)
    if progress:
        progress(f"converting {spec.label} for transformers (first use only, about a minute)")
    _quiet_gguf_progress()
    tmp = models_dir / f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = _load_causal_lm(transformers, torch, str(gguf.parent), getattr(torch, dtype), gguf_file=gguf.name)
        # The weights are plain dequantized tensors now; drop the GGUF marker so they can be saved.
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "converted.json").write_text(
            json.dumps({"from": gguf.name, "sha256": spec.sha256, "dtype": dtype}), encoding="utf-8"
        )
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first: keep theirs
            if not (final / "converted.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


INT8_FILE = "int8-weights.safetensors"


def quantize_cached(model: Any, folder: Path) -> None:
    """Round the model's Linear weights to int8, reusing the copy saved in `folder` by an earlier start.

    Rounding reads every weight as float32 (~10 s on a busy 2-core machine for Qwen 0.5B); reading the
    saved int8 copy (safetensors, no pickle) costs well under a second. A missing, unreadable or
    mismatched copy is rebuilt.
    """
    from assistant.llm.cpu_decode import int8_state, quantize_weights_int8

    cache = folder / INT8_FILE
    saved = None
    if cache.is_file():
        try:
            from safetensors.torch import load_file

            # Copies, not views of the mapped file: the int8 matmul kernel crashed on mapped storage.
            saved = {key: value.clone() for key, value in load_file(str(cache)).items()}
        except Exception:  # noqa: BLE001 - a damaged copy is rebuilt below
            saved = None
    quantize_weights_int8(model, saved)
    state = int8_state(model)
    if saved is None or any(key not in saved for key in state):
        try:
            from safetensors.torch import save_file

            from assistant.atomic import atomic_path

            with atomic_path(cache) as tmp:
                save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
        except OSError:  # a read-only models folder: round again at the next start
            pass


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    max_positions: int
    generate_lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """One background load of one model; many waiters, one thread."""

    def __init__(self, spec: GgufSpec, models_dir: Path, dtype: str, threads: int):
        self.spec, self.models_dir, self.dtype, self.threads = spec, models_dir, dtype, threads
        self.stage = f"preparing {spec.label}"
        self.started = time.monotonic()
        self.result: LoadedModel | None = None
        self.error: str | None = None
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"load-{spec.name}", daemon=True)
        self.thread.start()

    def _set_stage(self, text: str) -> None:
        self.stage = text

    def _run(self) -> None:
        try:
            path = convert(self.spec, self.models_dir, self.dtype, self._set_stage)
            self.stage = f"loading {self.spec.label}"
            torch, transformers = _import_transformers()
            if self.threads > 0:
                torch.set_num_threads(self.threads)
            from assistant.modelload import MODEL_LOAD_LOCK

            with MODEL_LOAD_LOCK:  # these import transformers' submodules (see _import_transformers)
                tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
                from assistant.llm.cpu_decode import register_attention

                attention = register_attention()
            model = _load_causal_lm(transformers, torch, str(path), getattr(torch, storage_dtype(self.dtype)),
                                    attn_implementation=attention)
            model.eval()
            if self.dtype == "int8":
                self.stage = f"preparing {self.spec.label} (int8 weights)"
                quantize_cached(model, path)
            self.result = LoadedModel(model, tokenizer, int(getattr(model.config, "max_position_embeddings", 4096)))
            self.stage = "ready"
        except WeightsError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure becomes one line and a fallback
            self.error = f"{self.spec.label} could not be loaded: {type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            if self.error:
                self.stage = "failed"
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, cancel: Any = None) -> LoadedModel:
        """Block until loaded; polls `cancel` so Escape works while the model loads."""
        while not self._done.wait(0.1):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
        if self.result is None:
            raise ModelLoadError(self.error or "model load failed")
        return self.result


_LOADS: dict[tuple, Load] = {}
_LOADS_LOCK = threading.Lock()


def start_load(spec: GgufSpec, models_dir: Path, dtype: str = "int8", threads: int = 0) -> Load:
    """The shared load for this model, started if needed (a failed load is retried)."""
    key = (spec.name, spec.sha256, str(models_dir), dtype)
    with _LOADS_LOCK:
        load = _LOADS.get(key)
        if load is None or (load.done and load.result is None):
            load = _LOADS[key] = Load(spec, models_dir, dtype, threads)
        return load


def forget_loads() -> None:
    """Drop every cached model (tests that corrupt files, or to free memory)."""
    with _LOADS_LOCK:
        _LOADS.clear()


def _keep_ends(tensor, head: int, tail: int):
    """The first `head` and the last `tail` columns of a (1, n) tensor."""
    import torch

    return torch.cat([tensor[:, :head], tensor[:, tensor.shape[1] - tail:]], dim=1)


def to_dicts(messages: List[BaseMessage]) -> list[dict[str, str]]:
    role = {"human": "user", "ai": "assistant", "system": "system"}
    return [{"role": role.get(m.type, "user"), "content": str(m.content)} for m in messages]


class TransformersChatModel(BaseChatModel):
    """A LangChain chat model over a local GGUF run by transformers."""

    accepts_cancel: ClassVar[bool] = True

    spec: GgufSpec
    models_dir: str
    dtype: str = "int8"
    threads: int = 0
    temperature: float = 0.2
    max_tokens: int = 512
    context_window: int = 4096
    repetition_penalty: float = 1.1
    _last_prompt: str = PrivateAttr(default="")

    @property
    def _llm_type(self) -> str:
        return f"transformers-gguf:{self.spec.name}"

    @property
    def load(self) -> Load:
        return start_load(self.spec, Path(self.models_dir), self.dtype, self.threads)

    @property
    def last_prompt(self) -> str:
        """The exact text (chat template applied) sent for the last reply."""
        return self._last_prompt

    def tokenizer_if_ready(self):
        load = self.load
        return load.result.tokenizer if load.done and load.result else None

    def window(self) -> int:
        load = self.load
        limit = load.result.max_positions if load.done and load.result else self.context_window
        return min(self.context_window, limit)

    def _encode(self, loaded: LoadedModel, messages: List[BaseMessage], max_new: int):
        """Chat template + tokens; drops the oldest history turns if the prompt exceeds the window."""
        dicts = to_dicts(messages)
        limit = max(self.window() - max_new, self.window() // 2)
        while True:
            text = loaded.tokenizer.apply_chat_template(dicts, add_generation_prompt=True, tokenize=False)
            ids = loaded.tokenizer(text, return_tensors="pt", add_special_tokens=False)
            n = ids["input_ids"].shape[1]
            middle = [i for i, m in enumerate(dicts[:-1]) if m["role"] != "system"]
            if n <= limit or not middle:
                break
            del dicts[middle[0]]
        if n > limit:  # one message alone is too long (callers should use fit_sources): cut the middle,
            # never the system instructions at the head, nor the question at the tail.
            head = 0
            if dicts[0]["role"] == "system":
                head = len(loaded.tokenizer(loaded.tokenizer.apply_chat_template(dicts[:1], tokenize=False),
                                            add_special_tokens=False)["input_ids"])
            head = min(head, limit // 2)
            ids = {k: _keep_ends(v, head, limit - head) for k, v in ids.items()}
            text = loaded.tokenizer.decode(ids["input_ids"][0])
        self._last_prompt = text
        return ids

    def _stream(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                run_manager: Optional[CallbackManagerForLLMRun] = None, cancel: Any = None,
                max_tokens: int | None = None, temperature: float | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        loaded = self.load.wait(cancel)
        torch, transformers = _import_transformers()
        max_new = int(max_tokens or self.max_tokens)
        temp = self.temperature if temperature is None else float(temperature)
        ids = self._encode(loaded, messages, max_new)
        reader_gone = threading.Event()

        class StopOnCancel(transformers.StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):  # checked after every token
                return bool(reader_gone.is_set() or (cancel is not None and cancel.cancelled))

        streamer = transformers.TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
        options: dict[str, Any] = dict(
            **ids, streamer=streamer, max_new_tokens=max_new, repetition_penalty=self.repetition_penalty,
            stopping_criteria=transformers.StoppingCriteriaList([StopOnCancel()]),
            pad_token_id=loaded.tokenizer.pad_token_id or loaded.tokenizer.eos_token_id,
        )
        if temp > 0:
            options.update(do_sample=True, temperature=temp, top_p=0.9)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with loaded.generate_lock, torch.inference_mode():
                    loaded.model.generate(**options)
            except BaseException as exc:  # noqa: BLE001 - surfaced to the reader below
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=work, name="generate", daemon=True)
        worker.start()
        produced = ""
        try:
            for piece in streamer:
                if not piece:
                    continue
                if stop:
                    before = len(produced)
                    produced += piece
                    hits = [produced.find(s) for s in stop if s in produced]
                    if hits:
                        tail = produced[before:min(hits)]
                        if tail:
                            yield ChatGenerationChunk(message=AIMessageChunk(content=tail))
                        break
                if run_manager:
                    run_manager.on_llm_new_token(piece)
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
                if cancel is not None and cancel.cancelled:
                    break
        finally:
            reader_gone.set()
            worker.join()
        if failure:
            raise ModelLoadError(f"generation failed: {type(failure[0]).__name__}: {failure[0]}".splitlines()[0])

    def _generate(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                  run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> ChatResult:
        text = "".join(str(c.message.content) for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def sample(self, messages: List[BaseMessage], n: int, temperature: float = 0.7, max_tokens: int | None = None,
               cancel: Any = None) -> list[str]:
        """`n` sampled replies from one batched `generate` call (cheaper than n calls on a CPU)."""
        loaded = self.load.wait(cancel)
        torch, transformers = _import_transformers()
        max_new = int(max_tokens or self.max_tokens)
        ids = self._encode(loaded, messages, max_new)

        class StopOnCancel(transformers.StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):
                return bool(cancel is not None and cancel.cancelled)

        with loaded.generate_lock, torch.inference_mode():
            out = loaded.model.generate(
                **ids, do_sample=True, temperature=max(float(temperature), 1e-3), top_p=0.9, max_new_tokens=max_new,
                num_return_sequences=n, repetition_penalty=self.repetition_penalty,
                pad_token_id=loaded.tokenizer.pad_token_id or loaded.tokenizer.eos_token_id,
                stopping_criteria=transformers.StoppingCriteriaList([StopOnCancel()]))
        if cancel is not None and cancel.cancelled:
            raise Cancelled()
        return loaded.tokenizer.batch_decode(out[:, ids["input_ids"].shape[1]:], skip_special_tokens=True)
