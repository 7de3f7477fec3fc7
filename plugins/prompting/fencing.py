"""Delimiters for untrusted text, and the checks around them.

The defence has four layers: unique random markers the text cannot predict,
a system instruction that the fenced text is data, removal of anything in the
text that looks like a delimiter (so it cannot close the fence early), and a
post-check of the reply for signs that a hidden instruction was obeyed.
"""

from __future__ import annotations

import re
import secrets

# Things a text could use to fake the end of a fence or a new prompt section.
_LOOKALIKES = re.compile(
    r"<{2,}[^<>\n]{0,60}>{2,}"                      # <<<ANY MARKER>>>
    r"|</?\s*(?:text|data|input|document|source|system|user|assistant|instructions?|untrusted)[^<>\n]{0,40}>"
    r"|`{3,}|\"{3,}|'{3,}|#{3,}|-{3,}|={3,}"        # ``` \"\"\" ### --- ===
    r"|\[/?(?:INST|SYS)\]|<\|[^|\n]{0,30}\|>",       # chat-template tokens
    re.I,
)

# Sentences that try to give the model new instructions.
_INJECTION = re.compile(
    r"(?:ignore|disregard|forget|override)\b[^.!?\n]{0,40}\b(?:instructions?|prompts?|rules?|tasks?|above|previous)"
    r"|\byou are now\b|\bnew instructions?\b|\bsystem prompt\b"
    r"|\b(?:say|print|output|respond with|reply with|answer with|write)\s+(?:only\s+)?[\"'“]?[A-Z][A-Z0-9_!]{2,}",
    re.I,
)
# The word an injection wants the model to say: "say PWNED", "reply with 'HACKED'".
_TARGET = re.compile(r"\b(?:say|print|output|respond with|reply with|answer with|write)\s+(?:only\s+)?[\"'“]?([A-Z][A-Z0-9_!]{2,})")


def make_markers() -> tuple[str, str]:
    tag = secrets.token_hex(4).upper()
    return f"<<<TEXT-{tag}>>>", f"<<<END-TEXT-{tag}>>>"


def strip_lookalikes(text: str) -> tuple[str, int]:
    """The text with delimiter look-alikes replaced by a space, and how many there were."""
    cleaned, count = _LOOKALIKES.subn(" ", text)
    return cleaned, count


def injection_sentences(text: str) -> list[str]:
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [s.strip() for s in sentences if s.strip() and _INJECTION.search(s)]


def injection_targets(text: str) -> list[str]:
    """Words the text tries to make the model say (upper-case tokens after 'say', ...)."""
    return sorted({m.strip("!").upper() for m in _TARGET.findall(text)})


def redact_injections(text: str) -> str:
    for sentence in injection_sentences(text):
        text = text.replace(sentence, "[instruction removed]")
    return text


def obeyed_injection(reply: str, source_text: str) -> bool:
    """True when the reply says what a hidden instruction asked for."""
    upper = reply.upper()
    for target in injection_targets(source_text):
        if re.search(rf"\b{re.escape(target)}\b", upper):
            return True
    return False


def fence(text: str, open_marker: str, close_marker: str) -> str:
    return f"{open_marker}\n{text}\n{close_marker}"
