"""Names in a question that the knowledge base never mentions.

A question about "the Wasserstein loss", "BM25" or "RLHF" can sit close to a
course on GANs or RAG in embedding space and share most of its words, yet the
notes cannot answer it: the thing it names is not in them. `unknown_names`
finds such names: words written with a capital inside the sentence, in
capitals, or with digits ("QLoRA", "L1"), that no indexed chunk contains,
not even as a spelling slip of one edit, a hyphenated form whose parts are
known ("U-Net"), or a longer form with the same stem ("reparameterizing").
Lower-case words are left alone: without a frequency list of general English
we cannot tell a student's everyday word ("nutshell") from an unknown term.
"""

from __future__ import annotations

import re
from typing import Collection

from course_assistant_plugins.rag.bm25 import STOPWORDS, stem, tokenize

WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")  # any script's letters: "Fréchet" is one word
LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789-"  # "-": "UNet" is a slip of "U-Net"


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
            if _looks_like_name(word, index == 0) and not known(word, vocabulary, prefixes) and word not in out:
                out.append(word)
    return out


def prefix_index(vocabulary: Collection[str]) -> frozenset[str]:
    """The 6-letter prefixes of the long words, for `known`'s longer-form check."""
    return frozenset(term[:6] for term in vocabulary if len(term) >= 7)
