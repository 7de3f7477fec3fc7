"""Grounding check: which sentences of an answer no retrieved source supports.

For the RAG plugin, after an answer is complete:

    from assistant.llm.grounding import mark_unsupported, minilm_embedder
    marked, unsupported = mark_unsupported(answer, [s.text for s in sources],
                                           embed_fn=minilm_embedder())  # embed_fn optional

A sentence counts as supported when enough of its content words occur in one
source (lexical overlap; crude stemming) or, with `embed_fn`, when its
embedding is close to some sentence of a source. Sentences with too few
content words to judge (a greeting, "The notes do not cover this.") and
citation-only fragments are never marked. Unsupported sentences get `MARK`
appended in `marked`; `unsupported` lists them as they were.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

MARK = " [not in the sources]"
LEXICAL_THRESHOLD = 0.6  # share of a sentence's content words found in one source
EMBEDDING_THRESHOLD = 0.62  # cosine similarity with the closest source sentence (MiniLM)
MIN_CONTENT_WORDS = 3

STOPWORDS = frozenset(
    """a an the and or but if then than that this these those is are was were be been being to of in on
    for with as by at from into over under about it its it's they them their there here we you your our
    i he she his her not no yes can could should would will may might must do does did done has have had
    so such which who whom what when where why how also very more most less much many some any each
    other only just both all one two use used using uses like e.g i.e etc""".split()
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\[(\"'`*-])|\n+")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-']+|\d+(?:\.\d+)?")
CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
REFUSAL = re.compile(r"\b(not cover|do(?:es)? not (?:contain|mention|say)|no information|cannot find|can't find|"
                     r"don't know|do not know|not in the (?:course )?notes)\b", re.I)

EmbedFn = Callable[[list[str]], Any]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s and s.strip()]


def _stem(word: str) -> str:
    word = word.lower().strip("'-")
    for suffix in ("ization", "isation", "ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in WORD.findall(CITATION.sub(" ", text)) if w.lower() not in STOPWORDS and len(w) > 1}


def lexical_support(sentence: str, source_words: Sequence[set[str]]) -> float:
    """Best share, over sources, of the sentence's content words that the source contains."""
    words = content_words(sentence)
    if not words or not source_words:
        return 0.0
    return max(len(words & src) / len(words) for src in source_words)


def _normalise(matrix: Any):
    import numpy as np

    arr = np.asarray(matrix, dtype="float32")
    return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)


def judged_sentences(answer: str) -> list[str]:
    """The sentences of `answer` the check judges: enough content words, and not a refusal."""
    return [s for s in split_sentences(answer) if len(content_words(s)) >= MIN_CONTENT_WORDS and not REFUSAL.search(s)]


def check_support(answer: str, source_texts: Sequence[str], embed_fn: EmbedFn | None = None,
                  lexical_threshold: float = LEXICAL_THRESHOLD,
                  embedding_threshold: float = EMBEDDING_THRESHOLD) -> tuple[list[str], list[str]]:
    """(judged sentences, the unsupported ones among them); faithfulness is 1 - unsupported / judged."""
    judged = judged_sentences(answer)
    source_words = [content_words(t) for t in source_texts if t.strip()]
    weak = [s for s in judged if lexical_support(s, source_words) < lexical_threshold]
    if weak and embed_fn is not None and source_words:
        source_sentences = [s for t in source_texts for s in split_sentences(t) if len(s) > 10] or list(source_texts)
        vectors = _normalise(embed_fn(weak + source_sentences))
        similarity = vectors[: len(weak)] @ vectors[len(weak):].T
        weak = [s for s, best in zip(weak, similarity.max(axis=1)) if best < embedding_threshold]
    return judged, list(dict.fromkeys(weak))


def supporting_source(sentences: Sequence[str], source_texts: Sequence[str], embed_fn: EmbedFn | None = None,
                      lexical_threshold: float = LEXICAL_THRESHOLD,
                      embedding_threshold: float = EMBEDDING_THRESHOLD) -> list[int | None]:
    """For each sentence, the index of the source that supports it best, or None when none does.

    The same two tests as `check_support`: the source holding the largest share of the sentence's
    content words (if at least `lexical_threshold`), else, with `embed_fn`, the source whose
    closest sentence is most similar (if at least `embedding_threshold`).
    """
    source_words = [content_words(t) for t in source_texts]
    found: list[int | None] = []
    weak: list[int] = []
    for position, sentence in enumerate(sentences):
        words = content_words(sentence)
        shares = [len(words & src) / len(words) if words else 0.0 for src in source_words]
        best = max(range(len(shares)), key=shares.__getitem__) if shares else None
        if best is not None and shares[best] >= lexical_threshold:
            found.append(best)
        else:
            found.append(None)
            weak.append(position)
    if weak and embed_fn is not None and source_texts:
        owners = [(i, s) for i, t in enumerate(source_texts) for s in split_sentences(t) if len(s) > 10]
        if owners:
            vectors = _normalise(embed_fn([sentences[p] for p in weak] + [s for _, s in owners]))
            similarity = vectors[: len(weak)] @ vectors[len(weak):].T
            for row, position in zip(similarity, weak):
                column = int(row.argmax())
                if row[column] >= embedding_threshold:
                    found[position] = owners[column][0]
    return found


def add_citations(answer: str, source_texts: Sequence[str], embed_fn: EmbedFn | None = None) -> tuple[str, list[int]]:
    """`answer` with `[n]` (1-based) after each judged sentence that cites nothing but that source n supports.

    Small models seldom write the markers themselves; the grounding check knows which passage a
    sentence came from, so the citation is added from it. Returns (new answer, the numbers added).
    """
    judged = [s for s in judged_sentences(answer) if not CITATION.search(s)]
    owners = supporting_source(judged, source_texts, embed_fn)
    added: list[int] = []
    out = answer
    for sentence, owner in zip(judged, owners):
        if owner is None:
            continue
        at = out.find(sentence)
        if at < 0 or re.match(r"\s*\[\d", out[at + len(sentence):]):  # already followed by a marker
            continue
        end = at + len(sentence)
        cut = end - 1 if sentence[-1] in ".!?" else end  # "... prior [2]." rather than "... prior. [2]"
        out = out[:cut] + f" [{owner + 1}]" + out[cut:]
        added.append(owner + 1)
    return out, added


def mark_unsupported(answer: str, source_texts: Sequence[str], embed_fn: EmbedFn | None = None,
                     lexical_threshold: float = LEXICAL_THRESHOLD,
                     embedding_threshold: float = EMBEDDING_THRESHOLD, mark: str = MARK) -> tuple[str, list[str]]:
    """(answer with MARK after each unsupported sentence, the unsupported sentences).

    `embed_fn(list_of_texts) -> array (n, dim)` is optional; see `minilm_embedder()`.
    Without sources every judgeable sentence is unsupported.
    """
    _, unsupported = check_support(answer, source_texts, embed_fn, lexical_threshold, embedding_threshold)
    marked = answer
    for sentence in unsupported:
        marked = _append_after(marked, sentence, mark)
    return marked, unsupported


def _append_after(text: str, sentence: str, mark: str) -> str:
    at = text.find(sentence)
    if at < 0:
        return text
    end = at + len(sentence)
    # Keep a trailing citation like "[2]" with its sentence, then mark.
    trailing = re.match(r"(\s*\[\d+(?:\s*,\s*\d+)*\])*", text[end:])
    end += trailing.end() if trailing else 0
    return text[:end] + mark + text[end:]


def minilm_embedder() -> EmbedFn:
    """An `embed_fn` over the app's shared all-MiniLM-L6-v2 (see assistant.embeddings)."""
    from assistant.embeddings import encode

    return encode
