"""Benchmark of the rag plugin; prints its figures and ratios against baselines.

1. Ingest throughput: `KnowledgeBase.ingest` of knowledge/ (read, chunk,
   embed, store in embedded Chroma) vs raw sentence-transformers `encode` of the
   very same chunk texts with the same batch size (goal: ratio >= 0.8).
2. Query latency p50/p95 of `Retriever.search` (query embedding + dense search
   + BM25 + fusion; no LLM) on synthetic knowledge bases of 1k/10k/100k chunks.
   Synthetic chunks are sentences of the course notes shuffled into new
   passages; to build 100k of them on a 2-core laptop their vectors are a pool
   of real MiniLM vectors plus small noise (query latency depends on the index
   size, not on where the vectors came from). Goal: p50 <= 30 ms at 10k.
3. Peak memory of a real ingest (a subprocess reading ru_maxrss), for as many
   chunks as `--ingest-chunks` (default 1,000): memory stays flat because
   ingest embeds in batches of 256 and commits every 512 chunks.

Usage: python bench/rag.py [--sizes 1000,10000,100000] [--ingest-chunks 2000] [--store chroma|faiss]
       python bench/rag.py --memory-only --ingest-chunks 100000 --ingest-sentences 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _config(home: Path, store: str):
    from assistant.config import Config, resolve_home

    config = Config(resolve_home(home))
    config.set("vector_store.kind", store, save=False)
    return config


def sentences() -> list[str]:
    import re

    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "knowledge").glob("*.md")))
    text = re.sub(r"\$\$.*?\$\$|```.*?```", " ", text, flags=re.S)
    text = re.sub(r"^#.*$", " ", text, flags=re.M)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 40 < len(s.strip()) < 300]


def bench_ingest(store: str) -> dict:
    from assistant.events import Data
    from course_assistant_plugins.rag.chunking import chunk_document
    from assistant.embeddings import BATCH_SIZE, get_embeddings
    from course_assistant_plugins.rag.kb import KnowledgeBase
    from course_assistant_plugins.rag.loaders import load

    emb = get_embeddings()
    texts = [c.indexed_text() for f in sorted((ROOT / "knowledge").glob("*.md")) for c in chunk_document(load(f))]
    model = emb._client  # the SentenceTransformer inside HuggingFaceEmbeddings
    model.encode(texts[:8])  # warm up

    def raw() -> float:
        start = time.perf_counter()
        model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True)
        return len(texts) / (time.perf_counter() - start)

    raw_rates = [raw()]
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(_config(Path(tmp), store), "bench", emb)
        report = [e.obj for e in kb.ingest([ROOT / "knowledge"]) if isinstance(e, Data)][0]
        kb.close()
    raw_rates.append(raw())  # before and after, so background load hits both sides alike
    raw_rate = statistics.mean(raw_rates)
    return {"chunks": len(texts), "ingest_chunks_per_s": round(report.rate(), 1),
            "raw_encode_chunks_per_s": round(raw_rate, 1), "ratio": round(report.rate() / raw_rate, 3)}


def build_synthetic(kb, n: int, pool_vectors, pool_texts, rng: random.Random, store: str) -> None:
    """Fill a knowledge base with n synthetic chunks without embedding each one."""
    import numpy as np

    db = kb.db
    noise = np.random.default_rng(0)
    batch = 2000
    for start in range(0, n, batch):
        size = min(batch, n - start)
        picks = [rng.randrange(len(pool_texts)) for _ in range(size)]
        vectors = pool_vectors[picks] + noise.normal(0, 0.02, (size, pool_vectors.shape[1])).astype("float32")
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"syn-{start + i}" for i in range(size)]
        path = f"/synthetic/doc{start // batch}.md"
        texts = [pool_texts[p] for p in picks]
        if store == "faiss":
            kb.store._blocks.append(vectors.astype("float32"))
            kb.store.ids.extend(ids)
            kb.store.paths.extend([path] * size)
        else:
            kb.store.vs._collection.upsert(ids=ids, embeddings=vectors.tolist(), documents=texts,
                                           metadatas=[{"path": path}] * size)
        db.execute("BEGIN")
        db.executemany("INSERT INTO chunks(id, path, source, heading, start_line, end_line, text, seq) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [(ids[i], path, path, f"Synthetic > Part {start + i}", i + 1, i + 1, texts[i], i)
                        for i in range(size)])
        kb._bump_generation()
        db.execute("COMMIT")
    kb.store.flush()


def bench_latency(sizes: list[int], store: str, queries: int = 60) -> list[dict]:
    import numpy as np

    from assistant.embeddings import get_embeddings
    from course_assistant_plugins.rag.kb import KnowledgeBase
    from course_assistant_plugins.rag.retriever import Retriever

    emb = get_embeddings()
    rng = random.Random(0)
    sents = sentences()
    pool_texts = [" ".join(rng.sample(sents, 4)) for _ in range(600)]
    pool_vectors = np.asarray(emb.embed_documents(pool_texts), dtype="float32")
    qa = [json.loads(x)["question"] for x in (ROOT / "knowledge/qa/retrieval_qa.jsonl").read_text().splitlines() if x.strip()]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            config = _config(Path(tmp), store)
            kb = KnowledgeBase(config, "syn", emb)
            start = time.perf_counter()
            build_synthetic(kb, n, pool_vectors, pool_texts, rng, store)
            kb.save_manifest(kb.load_manifest())
            build_s = time.perf_counter() - start
            retriever = Retriever(config, emb)
            retriever._ready.add("syn")  # not the default KB: nothing to auto-ingest
            retriever._kbs["syn"] = kb
            start = time.perf_counter()
            retriever.search(qa[0], kb="syn")  # builds the in-memory BM25 once
            warm_s = time.perf_counter() - start
            times, embed_times = [], []
            for q in (qa * 3)[:queries]:
                t = time.perf_counter()
                emb.embed_query(q)
                embed_times.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                retriever.search(q, k=5, kb="syn")
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            embed_p50 = statistics.median(embed_times)
            rows.append({"chunks": n, "store": store, "p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                         "query_embedding_p50_ms": round(embed_p50, 1),
                         "build_s": round(build_s, 1), "first_query_s": round(warm_s, 2)})
            print(f"  {n:>7} chunks ({store}): p50 {rows[-1]['p50_ms']} ms, p95 {rows[-1]['p95_ms']} ms "
                  f"(of which the query embedding alone: p50 {embed_p50:.1f} ms) "
                  f"(index built in {build_s:.0f} s, first query incl. BM25 build {warm_s:.1f} s)", flush=True)
            kb.close()
    return rows


def ingest_child(n_chunks: int, store: str, sentences_per_chunk: int = 5) -> None:
    """Runs in a subprocess: ingest ~n_chunks real chunks, print peak RSS and rate.

    With one sentence per chunk, 100k chunks embed in minutes instead of an hour;
    what memory does is the same (batches of the same size, commits every 512).
    """
    from assistant.events import Data
    from course_assistant_plugins.rag.kb import KnowledgeBase

    rng = random.Random(1)
    sents = sentences()
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        per_file = 50
        for f in range(max(1, n_chunks // per_file)):
            sections = [f"## Section {s}\n\n" + " ".join(rng.sample(sents, sentences_per_chunk)) for s in range(per_file)]
            (docs / f"doc{f}.md").write_text(f"# Doc {f}\n\n" + "\n\n".join(sections) + "\n", encoding="utf-8")
        kb = KnowledgeBase(_config(Path(tmp) / "home", store), "mem")
        kb.embeddings  # load the model first: its weights are not ingest memory
        loaded = _vm("VmRSS")
        samples: list[float] = []
        started = time.monotonic()
        for event in kb.ingest([docs]):
            if isinstance(event, Data):
                report = event.obj
            samples.append(_vm("VmRSS"))
            if os.environ.get("BENCH_TRACE") and len(samples) % 200 == 0:
                print(f"# {time.monotonic() - started:.0f} s rss {samples[-1]:.0f} MiB", file=sys.stderr, flush=True)
        print(json.dumps({"chunks": report.chunks, "peak_rss_mib": round(_vm("VmHWM"), 1),
                          "rss_after_model_load_mib": round(loaded, 1),
                          "rss_at_10_to_100pct_mib": [round(samples[int(f / 10 * (len(samples) - 1))], 1)
                                                      for f in range(1, 11)],
                          "sentences_per_chunk": sentences_per_chunk, "seconds": round(time.monotonic() - started),
                          "chunks_per_s": round(report.rate(), 1)}))


def _vm(field: str) -> float:
    """MiB from /proc/self/status (VmHWM is this process's own peak; ru_maxrss survives exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--ingest-chunks", type=int, default=1000)
    parser.add_argument("--store", default="chroma", choices=("chroma", "faiss"))
    parser.add_argument("--ingest-sentences", type=int, default=5, help="sentences per chunk in the memory run")
    parser.add_argument("--memory-only", action="store_true", help="only the ingest-memory run")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        ingest_child(args.child, args.store, args.ingest_sentences)
        return
    print(f"rag benchmark on {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f})", flush=True)
    result: dict = {}
    if not args.memory_only:
        result["ingest"] = i = bench_ingest(args.store)
        print(f"ingest: {i['ingest_chunks_per_s']} chunks/s vs raw encode {i['raw_encode_chunks_per_s']} chunks/s "
              f"-> ratio {i['ratio']} (goal >= 0.8) over {i['chunks']} chunks", flush=True)
        print("query latency (query embedding + dense + BM25 + fusion):", flush=True)
        result["latency"] = bench_latency([int(s) for s in args.sizes.split(",") if s], args.store)
    if args.ingest_chunks:
        out = subprocess.run([sys.executable, __file__, "--child", str(args.ingest_chunks), "--store", args.store,
                              "--ingest-sentences", str(args.ingest_sentences)], capture_output=True, text=True)
        lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
        result["memory"] = json.loads(lines[-1]) if lines else {"error": out.stderr[-400:]}
        print(f"ingest memory: {result['memory']}", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
