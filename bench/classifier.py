"""Classifier bench: LoRA vs full fine-tuning vs frozen embeddings, same data, same run.

For the shipped intent data (and the sentiment data) it trains and scores on
the fixed held-out test split:

  lora          MiniLM + LoRA on query/value, mean-pooled head (what the app uses)
  lora-cls      the same LoRA on transformers' stock [CLS]-pooler head (why we don't use it)
  full          every MiniLM weight trained, mean-pooled head
  logreg        logistic regression on frozen MiniLM embeddings
  centroid      nearest class centroid on frozen MiniLM embeddings (the router's fallback)

and prints accuracy, macro-F1, training time, trainable parameters, ratios
against the full fine-tuning baseline, and routing latency per utterance.

    .venv/bin/python bench/classifier.py [--task intents|sentiment|all] [--threads 2] [--skip-cls]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOALS = {"accuracy": 0.95, "route_ms": 15.0, "lora_seconds": 60.0}


def run_trained(name: str, splits, cfg) -> dict:
    from course_assistant_plugins.classifier.lora import predict_proba, run_training
    from course_assistant_plugins.classifier.metrics import report

    result = run_training(splits, cfg)
    probs = predict_proba(result.model, result.tokenizer, splits.test.texts)
    rep = report(splits.test.labels, [result.classes[i] for i in probs.argmax(axis=1)], result.classes)
    return {"method": name, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "seconds": result.seconds,
            "cpu": result.cpu_seconds, "trainable": result.trainable_params, "total": result.total_params, "epochs": cfg.epochs,
            "result": result}


def run_frozen(splits) -> list[dict]:
    from course_assistant_plugins.classifier.embedding import CentroidClassifier, fit_logistic, shared_encoder
    from course_assistant_plugins.classifier.metrics import report

    encoder = shared_encoder()
    started, cpu_started = time.perf_counter(), time.process_time()
    train_vecs = encoder.encode(splits.train.texts)
    encode_seconds, encode_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    test_vecs = encoder.encode(splits.test.texts)
    rows = []
    for name, fit in (("logreg", fit_logistic), ("centroid", CentroidClassifier.fit)):
        started, cpu_started = time.perf_counter(), time.process_time()
        model = fit(train_vecs, splits.train.labels)
        seconds = encode_seconds + time.perf_counter() - started
        cpu = encode_cpu + time.process_time() - cpu_started
        rep = report(splits.test.labels, list(model.predict(test_vecs)), splits.classes)
        n_classes, dim = len(splits.classes), train_vecs.shape[1]
        rows.append({"method": name, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "seconds": seconds,
                     "cpu": cpu, "trainable": n_classes * (dim + 1) if name == "logreg" else 0, "total": 22_565_376 + n_classes * (dim + 1),  # MiniLM without pooler + head
                     "epochs": "-", "model": model})
    return rows


def latency_ms(fn, texts: list[str], repeats: int = 1) -> tuple[float, float, float]:
    """Median and 90th percentile wall ms of one-utterance calls, and mean CPU ms per call."""
    fn(texts[0])  # warm up
    times = []
    cpu_started = time.process_time()
    for _ in range(repeats):
        for text in texts:
            started = time.perf_counter()
            fn(text)
            times.append((time.perf_counter() - started) * 1000)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / len(times)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))], cpu_ms


def bench_task(task: str, skip_cls: bool) -> dict:
    from course_assistant_plugins.classifier.data import split
    from course_assistant_plugins.classifier.lora import TrainConfig
    from course_assistant_plugins.classifier.service import BUILTIN_EPOCHS, builtin_data

    splits = split(builtin_data(task)[0])  # intents: the installed plugins' examples
    print(f"\n== {task}: {len(splits.train)} train / {len(splits.validation)} validation / "
          f"{len(splits.test)} test, {len(splits.classes)} classes ==", flush=True)
    epochs = BUILTIN_EPOCHS[task]
    rows = [run_trained("lora", splits, TrainConfig(epochs=epochs))]
    print(f"  lora done in {rows[-1]['seconds']:.1f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    if not skip_cls:
        rows.append(run_trained("lora-cls", splits, TrainConfig(epochs=epochs, head="cls")))
        print(f"  lora-cls done in {rows[-1]['seconds']:.1f} s", flush=True)
    rows.append(run_trained("full", splits, TrainConfig(epochs=epochs, mode="full", lr=5e-5, head_lr=2e-3)))
    print(f"  full done in {rows[-1]['seconds']:.1f} s", flush=True)
    rows += run_frozen(splits)
    full = next(r for r in rows if r["method"] == "full")
    print(f"\n{'method':<10} {'epochs':>6} {'accuracy':>9} {'macro-F1':>9} {'train s':>8} {'cpu s':>7} {'x full':>7} "
          f"{'trainable':>11} {'share':>7}")
    for r in rows:
        ratio = r["cpu"] / full["cpu"] if full["cpu"] else float("nan")  # CPU time: fair under shared load
        print(f"{r['method']:<10} {r['epochs']!s:>6} {r['accuracy']:>9.3f} {r['macro_f1']:>9.3f} {r['seconds']:>8.1f} "
              f"{r['cpu']:>7.1f} "
              f"{ratio:>7.2f} {r['trainable']:>11,} {r['trainable'] / r['total']:>7.2%}")
    return {"task": task, "splits": splits, "rows": rows}


def bench_latency(intents: dict) -> None:
    from course_assistant_plugins.classifier.embedding import shared_encoder
    from course_assistant_plugins.classifier.lora import predict_proba
    from course_assistant_plugins.classifier.slots import extract

    texts = intents["splits"].test.texts
    lora = next(r for r in intents["rows"] if r["method"] == "lora")["result"]
    merged = lora.model.merge_and_unload()  # what the router serves: the update folded in
    centroid = next(r for r in intents["rows"] if r["method"] == "centroid")["model"]
    encoder = shared_encoder()

    def route_lora(text: str):
        probs = predict_proba(merged, lora.tokenizer, [text])[0]
        intent = lora.classes[int(probs.argmax())]
        return intent, extract(intent, text)

    def route_centroid(text: str):
        probs = centroid.predict_proba(encoder.encode([text]))[0]
        intent = centroid.classes[int(probs.argmax())]
        return intent, extract(intent, text)

    import torch

    threads = torch.get_num_threads()
    print("\n== routing latency, one utterance per call (intent + slots) ==")
    results = {}
    for n_threads in sorted({1, threads}):
        torch.set_num_threads(n_threads)
        for name, fn in (("lora (merged)", route_lora), ("centroid", route_centroid)):
            key = f"{name}, {n_threads} thread{'s' if n_threads > 1 else ''}"
            results[key] = latency_ms(fn, texts, repeats=2)
            print(f"{key:<26} median {results[key][0]:6.2f} ms   p90 {results[key][1]:6.2f} ms   "
                  f"CPU {results[key][2]:6.2f} ms/call")
    torch.set_num_threads(threads)
    started, cpu_started = time.perf_counter(), time.process_time()
    probs = predict_proba(merged, lora.tokenizer, texts)
    [extract(lora.classes[int(row.argmax())], text) for row, text in zip(probs, texts)]
    batch_ms = (time.perf_counter() - started) * 1000 / len(texts)
    batch_cpu = (time.process_time() - cpu_started) * 1000 / len(texts)
    print(f"{'lora, batched (route --json)':<26} {batch_ms:6.2f} ms per utterance   CPU {batch_cpu:6.2f} ms")
    one = results["lora (merged), 1 thread"]
    print(f"lora / centroid latency (1 thread): {one[0] / results['centroid, 1 thread'][0]:.2f}x")
    return {"lora": one}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("intents", "sentiment", "all"), default="all")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the target laptop)")
    parser.add_argument("--skip-cls", action="store_true", help="skip the stock [CLS]-head LoRA run")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    tasks = ("intents", "sentiment") if args.task == "all" else (args.task,)
    results = {task: bench_task(task, args.skip_cls) for task in tasks}
    if "intents" in results:
        latency = bench_latency(results["intents"])
        lora = next(r for r in results["intents"]["rows"] if r["method"] == "lora")
        print("\n== goals (intents) ==")
        print(f"test accuracy {lora['accuracy']:.3f} (goal >= {GOALS['accuracy']}): "
              f"{'met' if lora['accuracy'] >= GOALS['accuracy'] else 'MISSED'}")
        wall, _, cpu = latency["lora"]
        print(f"routing {wall:.2f} ms wall, {cpu:.2f} ms CPU per utterance, 1 thread (goal <= {GOALS['route_ms']} ms): "
              f"{'met' if wall <= GOALS['route_ms'] else 'MISSED'}")
        print(f"LoRA training {lora['seconds']:.1f} s wall, {lora['cpu']:.1f} s CPU over {args.threads} threads "
              f"(goal <= {GOALS['lora_seconds']} s wall): {'met' if lora['seconds'] <= GOALS['lora_seconds'] else 'MISSED'}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
