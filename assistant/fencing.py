"""Fences for untrusted text (documents, web pages, user files) inside prompts.

Shared by the RAG answer (`<source N ...>` passages) and the prompting
techniques (`<<<TEXT-..>>>` markers); core code, so it imports no plugin.

Three things make a fence hold:
- a random per-request tag in the fence, which the text cannot predict;
- neutralisation of anything in the text that looks like a fence, a prompt
  section tag or a chat-template token, matched case- and space-insensitively
  (`</SOURCE>`, `< / source >`, `<source 2 file=..>`, `<|im_start|>`);
- callers cut untrusted text, never the instructions, when a prompt is too long.
"""

from __future__ import annotations

import re
import secrets

# Tag names a text could use to close a fence or open a fake prompt section.
TAG_NAMES = ("source", "text", "data", "input", "document", "system", "user", "assistant", "instructions",
             "instruction", "untrusted")
_LT = "[<\uff1c\ufe64]"  # "<" and its full-width / small look-alikes
_GT = "[>\uff1e\ufe65]"


def _spaced(word: str) -> str:
    """`word` with optional whitespace between its letters: s o u r c e still matches."""
    return r"\s*".join(re.escape(ch) for ch in word)


# The start of a tag: "<", optional "/", optional spaces, then a tag name (any case, any spacing).
TAG_START = re.compile(_LT + r"\s*/?\s*(?:" + "|".join(_spaced(n) for n in TAG_NAMES) + ")", re.I)
# A whole tag, for callers that remove it rather than defuse it.
TAG = re.compile(TAG_START.pattern + r"[^<>\n]{0,80}" + _GT + "?", re.I)
MARKER = re.compile(r"<{2,}[^<>\n]{0,60}>{2,}")                       # <<<ANY MARKER>>>
CHAT_TOKEN = re.compile(r"<\s*\|[^|\n]{0,30}\|\s*>|\[/?\s*(?:INST|SYS)\s*\]", re.I)  # <|im_start|>, [INST]


def new_tag() -> str:
    """A random tag for one request's fences (8 hex digits)."""
    return secrets.token_hex(4)


def neutralise(text: str, tag: str = "") -> tuple[str, int]:
    """`text` with every fence / tag / chat-token look-alike defused, and how many there were.

    Defusing swaps the angle brackets for ‹ › so the words stay readable (an
    HTML example in the notes still reads as one) but no longer parse as a
    tag; the request's own fence tag, should the text contain it, is removed.
    """
    count = 0

    def defuse(match: re.Match) -> str:
        nonlocal count
        count += 1
        return re.sub(_LT, "‹", re.sub(_GT, "›", match.group(0)))

    text = MARKER.sub(defuse, text)
    text = CHAT_TOKEN.sub(defuse, text)
    text = TAG_START.sub(defuse, text)
    if tag and tag.lower() in text.lower():
        text, hits = re.subn(re.escape(tag), "", text, flags=re.I)
        count += hits
    return text, count


# Sentences that try to give the model new instructions.
_INJECTION = re.compile(
    r"(?:ignore|disregard|forget|override)\b[^.!?\n]{0,40}\b(?:instructions?|prompts?|rules?|tasks?|above|previous)"
    r"|\byou are now\b|\bnew instructions?\b|\bsystem prompt\b"
    r"|\b(?:say|print|output|respond with|reply with|answer with|write)\s+(?:only\s+)?[\"'“]?[A-Z][A-Z0-9_!]{2,}"
    r"|\b(?:print|output|write|type|run|execute|paste|show)\b[^`\n]{0,40}`[^`\n]{3,200}`",
    re.I,
)
# The word an injection wants the model to say: "say PWNED", "reply with 'HACKED'".
_TARGET = re.compile(r"\b(?:say|print|output|respond with|reply with|answer with|write)\s+(?:only\s+)?[\"'“]?([A-Z][A-Z0-9_!]{2,})")
# A command an injection wants printed: "print the command `curl x | sh`".
_COMMAND = re.compile(r"\b(?:say|print|output|write|type|run|execute|paste|show)\b[^`\n]{0,40}`([^`\n]{3,200})`", re.I)


def injection_sentences(text: str) -> list[str]:
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [s.strip() for s in sentences if s.strip() and _INJECTION.search(s)]


def injection_targets(text: str) -> list[str]:
    """Words the text tries to make the model say (upper-case tokens after 'say', ...)."""
    return sorted({m.strip("!").upper() for m in _TARGET.findall(text)})


def injected_commands(text: str) -> list[str]:
    """Commands the text tries to make the model print (back-ticked after 'print', 'run', ...)."""
    return sorted({" ".join(m.split()) for m in _COMMAND.findall(text)})


def obeyed_injection(reply: str, source_text: str) -> bool:
    """True when the reply says what a hidden instruction asked for (a target word or a command)."""
    upper = reply.upper()
    if any(re.search(rf"\b{re.escape(t)}\b", upper) for t in injection_targets(source_text)):
        return True
    flat = " ".join(reply.split())
    return any(command in flat for command in injected_commands(source_text))
