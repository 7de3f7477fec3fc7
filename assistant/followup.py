"""Does a message refer back to the conversation? ("how do I fix it?", "and the second one?", "why?")

The smallest version the chat needs for routing follow-ups; the retrieval
work extends this module with a deterministic rewrite of the follow-up.
"""

from __future__ import annotations

import re

# Words that point at something said before; a short message using one is a follow-up.
ANAPHORS = {"it", "its", "it's", "this", "that", "these", "those", "them", "they", "their", "one", "ones",
            "same", "above", "previous", "earlier", "again", "else", "more", "instead", "there", "then"}
# Openings that continue the previous turn.
OPENINGS = ("and ", "but ", "so ", "also ", "what about", "how about", "why", "how come", "then ", "ok ", "okay ",
            "really", "what else", "what if", "can you elaborate", "tell me more", "explain more", "go on",
            "the first", "the second", "the third", "the last", "the other")
MAX_WORDS = 14  # a long message carries its own topic


def refers_back(text: str) -> bool:
    """True when `text` only makes sense with the conversation before it."""
    words = re.findall(r"[a-z']+", text.lower())
    if not words or len(words) > MAX_WORDS:
        return False
    lowered = " ".join(words)
    if lowered.startswith(OPENINGS):
        return True
    return any(w in ANAPHORS for w in words)
