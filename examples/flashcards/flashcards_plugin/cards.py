"""Turning retrieved passages into fill-in-the-blank cards (no language model: fast and repeatable)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant import Source

SENTENCE = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"[A-Za-z][A-Za-z-]{5,}")
COMMON = {"because", "between", "without", "through", "another", "however", "therefore", "example",
          "different", "several", "usually", "instead", "whether", "important"}


@dataclass
class Card:
    prompt: str  # a sentence from the notes with one key term blanked out
    answer: str  # the term
    source: Source  # where the sentence comes from

    def as_dict(self) -> dict[str, str]:
        return {"prompt": self.prompt, "answer": self.answer, "source": self.source.label()}


def card_from(passage: str, source: Source, topic: str) -> Card | None:
    """The first sentence of a passage that holds a long, uncommon word; that word becomes the blank."""
    wanted = {w.lower() for w in WORD.findall(topic)}
    for sentence in SENTENCE.split(" ".join(passage.split())):
        if not 40 <= len(sentence) <= 240:
            continue
        terms = [w for w in WORD.findall(sentence) if w.lower() not in COMMON]
        if not terms:
            continue
        # prefer a term the user asked about, else the longest one
        term = next((w for w in terms if w.lower() in wanted), max(terms, key=len))
        return Card(sentence.replace(term, "_____", 1), term, source)
    return None
