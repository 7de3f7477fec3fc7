"""Delimiters for untrusted text, and the checks around them.

The defence has four layers: unique random markers the text cannot predict,
a system instruction that the fenced text is data, removal of anything in the
text that looks like a delimiter (so it cannot close the fence early), and a
post-check of the reply for signs that a hidden instruction was obeyed.
"""

from __future__ import annotations

import re
from assistant import CHAT_TOKEN, FENCE_MARKER, FENCE_TAG, new_tag
# The injection checks are shared with the RAG answer; re-exported for this plugin's callers.
from assistant import injection_sentences, injection_targets, obeyed_injection  # noqa: F401

# Things a text could use to fake the end of a fence or a new prompt section: the
# shared tag / marker / chat-token patterns, plus Markdown-ish separators.
_LOOKALIKES = re.compile(
    "|".join(p.pattern for p in (FENCE_MARKER, FENCE_TAG, CHAT_TOKEN))
    + r"|`{3,}|\"{3,}|'{3,}|#{3,}|-{3,}|={3,}",        # ``` \"\"\" ### --- ===
    re.I,
)

def make_markers() -> tuple[str, str]:
    tag = new_tag().upper()
    return f"<<<TEXT-{tag}>>>", f"<<<END-TEXT-{tag}>>>"


def strip_lookalikes(text: str) -> tuple[str, int]:
    """The text with delimiter look-alikes replaced by a space, and how many there were."""
    cleaned, count = _LOOKALIKES.subn(" ", text)
    return cleaned, count


def redact_injections(text: str) -> str:
    for sentence in injection_sentences(text):
        text = text.replace(sentence, "[instruction removed]")
    return text


def fence(text: str, open_marker: str, close_marker: str) -> str:
    return f"{open_marker}\n{text}\n{close_marker}"
