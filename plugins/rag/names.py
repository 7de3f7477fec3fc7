"""Names in a question that the knowledge base never mentions.

A question about "the Wasserstein loss", "BM25" or "RLHF" can sit close to a
course on GANs or RAG in embedding space and share most of its words, yet the
notes cannot answer it: the thing it names is not in them. `unknown_names`
finds such names: words written with a capital inside the sentence, in
capitals, or with digits ("QLoRA", "L1"), that no indexed chunk contains,
not even as a spelling slip of one edit, a hyphenated form whose parts are
known ("U-Net"), or a longer form with the same stem ("reparameterizing").

A lower-case word is judged against a frequency list of general English (the
82,765-word dictionary that the `symspellpy` wheel carries, built from Google
Books n-grams): one the knowledge base lacks and that English rarely uses
("perplexity", "rerank", "hnsw") names something; an everyday word the notes
happen not to use ("nutshell", "hijacking") does not, nor does a slip of one
("recieve", "difussion"). Hyphenated compounds of known words
("self-attention", "brand-new") stay unjudged: they are as often a student's
own phrasing as a term.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Collection

from course_assistant_plugins.rag.bm25 import STOPWORDS, stem, tokenize

WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")  # any script's letters: "Fréchet" is one word
LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789-"  # "-": "UNet" is a slip of "U-Net"
# A lower-case word rarer than this in general English names something when the notes lack it.
# Measured on our five QA sets: in-scope words the notes lack rank below it ("hijacking" 28,794,
# "drawbacks" 22,464); out-of-scope terms above ("perplexity" 47,152) or not at all ("rerank").
RARE_RANK = 30_000
INFLECTIONS = (("ies", ("y",)), ("ing", ("", "e")), ("ed", ("", "e")), ("es", ("", "e")), ("s", ("",)),
               ("ly", ("",)), ("er", ("", "e")))
ENGLISH_WORDS = "frequency_dictionary_en_82_765.txt"  # in the symspellpy package: "word count" lines, commonest first


def _looks_like_name(word: str, first: bool) -> bool:
    if len(word) < 2 or word.isdigit() or word.lower() in STOPWORDS:
        return False  # "I", a symbol such as "Σ" or "X", a number
    capitals = sum(c.isupper() for c in word)
    has_digit = any(c.isdigit() for c in word) and any(c.isalpha() for c in word)
    if first:  # every sentence starts with a capital: only "RLHF ..." or "L1 ..." count there
        return capitals >= 2 or has_digit
    return capitals >= 1 or has_digit


def _one_edit(word: str) -> set[str]:
    """Every string one deletion, swap, replacement or insertion away (Norvig's edits1)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return ({a + b[1:] for a, b in splits if b}
            | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
            | {a + c + b[1:] for a, b in splits if b for c in LETTERS}
            | {a + c + b for a, b in splits for c in LETTERS})


@lru_cache(maxsize=1)
def english_ranks() -> dict[str, int]:
    """Rank of each word in general English (1 = commonest); empty when the list is not installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("symspellpy")  # its data file only: the package's code is never imported
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / ENGLISH_WORDS
        if path.is_file():
            with path.open(encoding="utf-8") as lines:
                return {line.split(" ", 1)[0]: rank for rank, line in enumerate(lines, 1)}
    return {}


def _everyday(word: str, ranks: dict[str, int]) -> bool:
    """General English uses this word, an inflection of it, or a word one slip away, often enough."""
    if not ranks:
        return True  # no frequency list: judge nothing rather than everything
    forms = {word}
    for ending, replacements in INFLECTIONS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            forms.update(word[:-len(ending)] + r for r in replacements)
    if any(ranks.get(form, RARE_RANK + 1) <= RARE_RANK for form in forms):
        return True
    # Most short strings are one edit from some common word ("lpips" / "lips"): below 6 letters only a swap
    # of two neighbouring letters, the commonest slip, counts ("teh" / "the"; "bleu" / "blue" too).
    slips = _one_edit(word) if len(word) >= 6 else {word[:i] + word[i + 1] + word[i] + word[i + 2:]
                                                    for i in range(len(word) - 1)}
    return any(ranks.get(slip, RARE_RANK + 1) <= RARE_RANK for slip in slips)


def _rare_term(word: str, vocabulary: Collection[str]) -> bool:
    """A lower-case word (or a sentence's capitalised first word) the notes lack and English rarely uses."""
    lower = word.lower()
    if len(lower) < 4 or not lower.isascii() or not lower.isalpha() or lower in STOPWORDS:
        return False  # hyphenated compounds, numbers and other scripts are not judged here
    token = stem(lower)
    if token in vocabulary or lower in vocabulary or _everyday(lower, english_ranks()):
        return False  # the common case, by lookups; the scans of the vocabulary below run for rare words only
    # Stricter than `known` for names: a short word one letter from a notes word is a coincidence
    # ("bleu" / "blue"), and a shared 6-letter start is not a longer form ("controlnet" / "control").
    if len(token) >= 6 and not _one_edit(token).isdisjoint(vocabulary):
        return False
    if len(token) >= 9 and any(term.startswith(token[:8]) for term in vocabulary):
        return False
    return not _two_edits_known(lower, vocabulary)


def _two_edits_known(word: str, vocabulary: Collection[str]) -> bool:
    """A long word two slips from one the notes use ("difussion" for "diffusion")."""
    if len(word) < 8:
        return False
    from collections import Counter

    letters = Counter(word)

    def same_letters(term: str) -> bool:  # a typing slip keeps the letters: "controlnet" is not "controlled"
        counts = Counter(term)
        return sum((letters - counts).values()) <= 1 and sum((counts - letters).values()) <= 1

    return any(_distance(word, term) <= 2 for term in vocabulary
               if term[:2] == word[:2] and abs(len(term) - len(word)) <= 2 and same_letters(term))


def _distance(a: str, b: str) -> int:
    """Levenshtein distance with adjacent swaps (optimal string alignment)."""
    before, row = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return row[-1]


def known(word: str, vocabulary: Collection[str], prefixes: Collection[str]) -> bool:
    """The knowledge base has this word, a slip of it, its parts, or a longer form of its stem."""
    lower = word.lower()
    token = stem(lower)
    if token in vocabulary or lower in vocabulary:
        return True
    if not lower.isascii():  # the index splits "fréchet" into "fr" + "chet": known when all pieces are
        pieces = tokenize(lower)
        return not pieces or all(piece in vocabulary for piece in pieces)  # "Σ": the index cannot tell
    parts = [p for p in re.split(r"[-']", lower) if p]
    if len(parts) > 1 and all(len(p) <= 2 or p in STOPWORDS or stem(p) in vocabulary for p in parts):
        return True
    if len(token) >= 7 and token[:6] in prefixes:
        return True
    return len(token) >= 4 and not _one_edit(token).isdisjoint(vocabulary)


def unknown_names(question: str, vocabulary: Collection[str], prefixes: Collection[str]) -> list[str]:
    """The names in `question` that the knowledge base (its BM25 vocabulary) never mentions."""
    letters = [c for c in question or "" if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.6 * len(letters):
        return []  # a question typed in capitals: its capitals say nothing about names
    out: list[str] = []
    for sentence in re.split(r"(?<=[.!?:])\s+", question or ""):
        for index, match in enumerate(WORD.finditer(sentence)):
            word = match.group(0)
            if word.endswith(("'s", "'S")):
                word = word[:-2]
            if word in out:
                continue
            if _looks_like_name(word, index == 0):
                if not known(word, vocabulary, prefixes):
                    out.append(word)
            elif _rare_term(word, vocabulary):
                out.append(word)
    return out


def prefix_index(vocabulary: Collection[str]) -> frozenset[str]:
    """The 6-letter prefixes of the long words, for `known`'s longer-form check."""
    return frozenset(term[:6] for term in vocabulary if len(term) >= 7)
