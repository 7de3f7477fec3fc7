"""Pick the few-shot examples most similar to the input (all-MiniLM-L6-v2 embeddings)."""

from __future__ import annotations

from typing import Any

_cache: dict[tuple[str, ...], Any] = {}


def embed(texts: list[str]) -> Any:
    from assistant import embed_texts

    return embed_texts(texts)


def most_similar(text: str, examples: list[dict[str, Any]], k: int) -> list[tuple[dict[str, Any], float]]:
    """The k examples whose `input` is closest to text (cosine), most similar first."""
    if k <= 0 or not examples:
        return []
    inputs = tuple(str(e["input"]) for e in examples)
    if inputs not in _cache:  # the pool's embeddings are computed once per process
        _cache[inputs] = embed(list(inputs))
    scores = _cache[inputs] @ embed([text])[0]
    order = sorted(range(len(examples)), key=lambda i: -float(scores[i]))[:k]
    return [(examples[i], float(scores[i])) for i in order]


def format_examples(chosen: list[dict[str, Any]], input_label: str = "Input", output_label: str = "Output") -> str:
    """Examples as 'Input: ...\\nOutput: ...' blocks, followed by a blank line."""
    blocks = [f"{input_label}: {e['input']}\n{output_label}: {e.get('output', '')}" for e in chosen]
    return "".join(block + "\n\n" for block in blocks)
