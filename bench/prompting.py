"""Benchmark the prompt techniques on our own cases with a real model.

  python bench/prompting.py [--model local] [--limit N] [--paths 5] [--only arithmetic|extraction]

- arithmetic (plugins/prompting/data/arithmetic_cases.jsonl, 40 word problems):
  accuracy of zero-shot (the baseline) vs chain of thought vs self-consistency.
- extraction (plugins/prompting/data/extraction_cases.jsonl, 50 texts):
  JSON validity against the schema (first try, and final) and field accuracy.

Prints a table per part with ratios against the baseline; `--out FILE` also
saves every case's result as JSON lines (written after each technique, so a
long run that is stopped keeps what it finished).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("USE_TF", "0")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "plugins" / "prompting" / "data"


def make_context(args):
    from assistant.config import Config, resolve_home
    from assistant.plugin import Context
    from assistant.registry import Registry

    home = args.home or tempfile.mkdtemp(prefix="bench-prompting-")
    context = Context(Config(resolve_home(home)), Registry.load())
    context.config.set("llm.backend", args.model, save=False)
    if args.cache_dir:
        context.config.set("llm.cache_dir", args.cache_dir, save=False)
    return context


def run_technique(context, name, cases, options, out):
    from assistant.events import Progress
    from course_assistant_plugins.prompting.evaluate import run_cases

    start = time.perf_counter()
    gen = run_cases(context, name, cases, options)
    try:
        while True:
            event = next(gen)
            if isinstance(event, Progress):
                print(f"\r  {name}: {event.done:g}/{event.total:g} cases, {time.perf_counter() - start:.0f} s",
                      end="", file=sys.stderr, flush=True)
    except StopIteration as stop:
        rows, summary = stop.value
    print(file=sys.stderr)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["seconds_per_case"] = round(summary["seconds"] / max(1, len(rows)), 1)
    if out:
        with open(out, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps({"template": name, **row}, ensure_ascii=False, default=str) + "\n")
            fh.write(json.dumps({"summary": summary}) + "\n")
    return summary


def load(path, limit, skip=0):
    from course_assistant_plugins.prompting.evaluate import load_cases

    cases = load_cases(path)[skip:]
    return cases[:limit] if limit else cases


def arithmetic(context, args):
    cases = load(DATA / "arithmetic_cases.jsonl", args.limit, args.skip)
    print(f"\nArithmetic word problems: {len(cases)} cases, model backend '{args.model}'", flush=True)
    results = []
    chosen = args.techniques.split(",")
    for name, options in (("zero-shot", {}), ("cot", {}), ("self-consistency", {"paths": args.paths})):
        if name not in chosen:
            continue
        results.append(run_technique(context, name, cases, options, args.out))
        print(f"  {name}: accuracy {results[-1]['accuracy']:.1%}", file=sys.stderr, flush=True)
    base = results[0]["accuracy"] if results[0]["template"] == "zero-shot" else 0
    print("\n| technique | accuracy | vs zero-shot | format adherence | s/case |")
    print("|---|---|---|---|---|")
    for summary in results:
        ratio = f"{summary['accuracy'] / base:.2f}x" if base else "n/a (baseline 0)"
        label = summary["template"] + (f" ({args.paths} paths)" if summary["template"] == "self-consistency" else "")
        print(f"| {label} | {summary['accuracy']:.1%} | {ratio} | {summary['format_adherence']:.1%} | "
              f"{summary['seconds_per_case']} |")
    return results


def extraction(context, args):
    cases = load(DATA / "extraction_cases.jsonl", args.limit_json or args.limit, args.skip)
    print(f"\nJSON extraction: {len(cases)} cases, model backend '{args.model}'", flush=True)
    summary = run_technique(context, "json", cases, {}, args.out)
    first = summary["json_valid_first_try"]
    print("\n| measure | value |")
    print("|---|---|")
    print(f"| valid JSON on the first try (baseline: plain prompting) | {first:.1%} |")
    print(f"| valid JSON after re-prompt + repair (final result) | {summary['json_valid']:.1%} "
          f"({summary['json_valid'] / first:.2f}x) |" if first else
          f"| valid JSON after re-prompt + repair (final result) | {summary['json_valid']:.1%} |")
    print(f"| cases ending in an Error (no result shown) | {summary['errors']} |")
    print(f"| field accuracy (values equal to the expected ones) | {summary['accuracy']:.1%} |")
    print(f"| seconds per case | {summary['seconds_per_case']} |")
    return summary


def rescore(path):
    """Summaries recomputed from a saved --out file with the current scoring code (no model)."""
    from course_assistant_plugins.prompting.evaluate import score

    rows: dict[str, list] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "summary" not in row:
            rows.setdefault(row["template"], []).append(row)
    print("| template | cases | accuracy | format adherence | errors |")
    print("|---|---|---|---|---|")
    for name, items in rows.items():
        total = 0.0
        for row in items:
            want = row["expected"]
            case = {"expected": want} if isinstance(want, dict) else {"keywords": want} if isinstance(want, list) \
                else {"answer": want}
            total += 0.0 if row["error"] else score(case, {"answer": row["answer"]})
        n = len(items)
        print(f"| {name} | {n} | {total / n:.1%} | {sum(r['format_ok'] for r in items) / n:.1%} | "
              f"{sum(bool(r['error']) for r in items)} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="local", help="LLM backend (default: local, Qwen2.5-Coder-0.5B)")
    parser.add_argument("--limit", type=int, help="only the first N cases of each set")
    parser.add_argument("--limit-json", type=int, help="only the first N extraction cases (default: --limit)")
    parser.add_argument("--skip", type=int, default=0, help="start after the first N cases (to run a set in parts)")
    parser.add_argument("--paths", type=int, default=5, help="self-consistency paths (default 5)")
    parser.add_argument("--techniques", default="zero-shot,cot,self-consistency",
                        help="arithmetic: which techniques to run (comma-separated)")
    parser.add_argument("--only", choices=("arithmetic", "extraction"), help="run one part")
    parser.add_argument("--home", help="state directory (default: a temporary one)")
    parser.add_argument("--cache-dir", help="where converted models are kept (llm.cache_dir)")
    parser.add_argument("--out", help="append every case's result here (JSON lines)")
    parser.add_argument("--rescore", metavar="FILE", help="recompute the tables from a saved --out file and exit")
    args = parser.parse_args(argv)
    if args.rescore:
        rescore(args.rescore)
        return 0
    context = make_context(args)
    if args.only in (None, "extraction"):
        extraction(context, args)
    if args.only in (None, "arithmetic"):
        arithmetic(context, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
