"""LLM benchmark: time to first token for a ~1,000-token RAG prompt, and decode speed.

Runs the default model (Qwen2.5-Coder-0.5B via transformers) with int8 weights
(the default, assistant/llm/cpu_decode.py), in bfloat16 and in float32, SmolLM2-135M for comparison, and the same Qwen GGUF through
llama.cpp (llama-cpp-python when built, else the prebuilt xllamacpp), all through the public LLM API
(`stream_chat`), and prints ratios against the default configuration. `--big` adds
Qwen2.5-Coder-1.5B (`make bigmodel`) through transformers and through llama.cpp.
Tokens decoded are counted with the Qwen tokenizer of the first run for every Qwen run.
Goals from the issue: first token <= 3 s, decode >= 15 tokens/s.

    .venv/bin/python bench/llm.py [--threads 2] [--tokens 64] [--quick] [--big]

Converted models are cached in <tmp>/course-assistant-test-models (shared with
the tests; keyed by sha256), so only the first run pays the conversion.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # as the app does (assistant/cli.py)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import llm  # noqa: E402
from assistant.config import Config, resolve_home
from assistant import knowledge_dir
from assistant.plugin import Context  # noqa: E402
from assistant.templates import get_template  # noqa: E402

QUESTION = "How does the reparameterization trick let a VAE train with backpropagation?"


def rag_prompt(context: Context, target_tokens: int = 1000) -> list[dict]:
    """A RAG prompt of about `target_tokens` tokens (counted by the loaded model) from the course notes."""
    notes = sorted(knowledge_dir().glob("*.md"))
    text = "\n\n".join(p.read_text(encoding="utf-8") for p in notes)
    paragraphs = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200]
    template = get_template("rag")
    sources: list[str] = []
    messages: list[dict] = []
    for para in paragraphs:
        fenced = "\n\n".join(f"<source {i} notes.md>\n{t}\n</source>" for i, t in enumerate(sources + [para], 1))
        system, user = template.render(sources=fenced, question=QUESTION)
        if llm.count_tokens(context, system + user) > target_tokens:
            break
        sources.append(para)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return messages


def make_context(home: Path, cache: Path, backend: str, threads: int, **settings) -> Context:
    context = Context(Config(resolve_home(home)))
    values = {"backend": backend, "cache_dir": str(cache), "threads": threads, "temperature": 0.0, **settings}
    for key, value in values.items():
        context.config.set(f"llm.{key}", value, save=False)
    return context


def measure(label: str, context: Context, messages: list[dict] | None, tokens: int, counter=None) -> dict:
    started = time.perf_counter()
    thread = llm.preload(context)
    if thread is not None:
        thread.join()
    llm.complete(context, [{"role": "user", "content": "Hi"}], max_tokens=2)  # load + warm up
    notice = llm.take_notice(context)
    if notice:
        raise SystemExit(f"{label}: {notice.message}")
    load_s = time.perf_counter() - started
    messages = messages or rag_prompt(context)
    count = counter or (lambda text: llm.count_tokens(context, text))
    prompt_tokens = count("\n".join(m["content"] for m in messages))
    t0 = time.perf_counter()
    first = None
    text = ""
    for piece in llm.stream_chat(context, messages, max_tokens=tokens):
        if first is None:
            first = time.perf_counter()
        text += piece
    end = time.perf_counter()
    produced = count(text)
    decode = (produced - 1) / (end - first) if first and end > first and produced > 1 else 0.0
    row = {"label": label, "messages": messages, "context": context, "load_s": load_s, "prompt_tokens": prompt_tokens, "ttft_s": (first or end) - t0,
           "decode_tps": decode, "tokens": produced}
    print(f"{label:<34} load {row['load_s']:6.1f} s  prompt {prompt_tokens:5d} tok  first token "
          f"{row['ttft_s']:5.2f} s  decode {decode:5.1f} tok/s  ({produced} tokens)", flush=True)
    return row


def int8_quality(cache: Path, tokens_per_note: int = 1024) -> None:
    """What int8 weights cost the default model: perplexity on the course notes and next-token agreement."""
    import torch

    from assistant.llm.hf_local import start_load
    from assistant.llm.weights import QWEN

    models = {dtype: start_load(QWEN, cache, dtype).wait() for dtype in ("bfloat16", "int8")}
    tokenizer = models["int8"].tokenizer
    nll = {dtype: 0.0 for dtype in models}
    agree = count = 0
    with torch.inference_mode():
        for note in sorted(knowledge_dir().glob("*.md")):
            ids = tokenizer(note.read_text(encoding="utf-8"), return_tensors="pt").input_ids[:, :tokens_per_note]
            top = {}
            for dtype, loaded in models.items():
                logits = loaded.model(ids).logits[0, :-1].float()
                nll[dtype] += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
                top[dtype] = logits.argmax(-1)
            agree += int((top["int8"] == top["bfloat16"]).sum())
            count += ids.shape[1] - 1
    ppl = {dtype: float(torch.exp(torch.tensor(total / count))) for dtype, total in nll.items()}
    print(f"\nint8 vs bfloat16 on the course notes ({count} tokens): perplexity {ppl['int8']:.3f} vs "
          f"{ppl['bfloat16']:.3f} (x{ppl['int8'] / ppl['bfloat16']:.3f}); same top-1 next token {agree / count:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch / llama.cpp threads (default 2)")
    parser.add_argument("--tokens", type=int, default=64, help="tokens to decode per run")
    parser.add_argument("--quick", action="store_true", help="skip the float32 comparison")
    parser.add_argument("--big", action="store_true", help="also Qwen 1.5B, transformers and llama.cpp")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "course-assistant-test-models"))
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    messages = None  # built with the first model's tokenizer, then the same text for every model
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; threads {args.threads}; "
          f"{args.tokens} tokens decoded greedily", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as home:
        runs = [("local  qwen-0.5b transformers int8", "local", {"dtype": "int8"}),
                ("local  qwen-0.5b transformers bf16", "local", {"dtype": "bfloat16"})]
        if not args.quick:
            runs.append(("local  qwen-0.5b transformers fp32", "local", {"dtype": "float32"}))
        runs.append(("smollm2 135m  transformers bf16", "smollm2", {"dtype": "bfloat16"}))
        from assistant.llm.backends import gguf_runtime

        runtime = gguf_runtime()
        if runtime:
            runs.append((f"llamacpp qwen-0.5b Q4_K_M ({runtime})", "llamacpp", {}))
        else:
            print("no llama.cpp runtime installed: skipping the llama.cpp run")
        if args.big:
            runs.append(("local-1.5b transformers int8", "local-1.5b", {"dtype": "int8"}))
            if runtime:
                runs.append((f"local-1.5b-llamacpp ({runtime})", "local-1.5b-llamacpp", {}))
        counter = None
        for label, backend, settings in runs:
            qwen = "qwen" in label or "1.5b" in label
            rows.append(measure(label, make_context(Path(home), cache, backend, args.threads, **settings),
                                messages, args.tokens, counter if qwen else None))
            messages = rows[-1]["messages"]
            if counter is None and qwen:
                first_context = rows[-1]["context"]
                counter = lambda text, c=first_context: llm.count_tokens(c, text)  # noqa: E731
    base = rows[0]
    print("\nratios against the default (qwen transformers int8):")
    for row in rows[1:]:
        print(f"  {row['label']:<34} first token x{row['ttft_s'] / base['ttft_s']:.2f}   "
              f"decode x{row['decode_tps'] / max(base['decode_tps'], 1e-9):.2f}")
    ok_ttft, ok_decode = base["ttft_s"] <= 3.0, base["decode_tps"] >= 15.0
    print(f"\ngoals for the default model: first token <= 3 s: {'met' if ok_ttft else 'MISSED'} "
          f"({base['ttft_s']:.2f} s); decode >= 15 tok/s: {'met' if ok_decode else 'MISSED'} "
          f"({base['decode_tps']:.1f} tok/s)")
    int8_quality(cache)


if __name__ == "__main__":
    main()
