"""Make untrusted text (documents, model output, error messages) safe to draw.

A document or a model reply may hold terminal escape sequences: ESC ] 52
writes the clipboard, ESC ] 0 sets the window title, CSI sequences move the
cursor or rewrite what is on screen. Rich and Textual strip only a few control
characters, ESC not among them. Bidi overrides make text read differently from
what it says. `sanitize` turns every such character into a visible stand-in,
so the user sees that it was there and nothing acts on it.

Applied at every display point (CLI renderer, TUI messages, sources panel,
passage view, notices, exports); `--json` output keeps the raw text.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# C0 controls except \t and \n, DEL, C1 controls, and the bidi controls
# (LRM/RLM, ALM, embeddings/overrides U+202A-202E, isolates U+2066-2069).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
REPLACEMENT = "\ufffd"


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # Control Pictures: ESC -> ␛, BEL -> ␇, CR -> ␍
    if code == 0x7F:
        return "\u2421"  # ␡
    return REPLACEMENT


def sanitize(text: str) -> str:
    """`text` with control and bidi characters replaced by visible stand-ins (\\n, \\t kept)."""
    if not isinstance(text, str):
        text = str(text)
    text = text.replace("\r\n", "\n")
    return _UNSAFE.sub(lambda m: _visible(m.group()), text)


SAFE_SCHEMES = ("http", "https")


def safe_url(url: str) -> bool:
    """Only http(s) links may be opened: no file:, javascript:, ssh:, custom handlers."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in SAFE_SCHEMES and bool(parts.netloc)


# [text](target) and <scheme:target> autolinks in Markdown.
_MD_LINK = re.compile(r"(\]\(\s*<?)([^)\s>]+)")
_AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]{1,31}:[^<>\s]*)>")


def sanitize_markdown(text: str) -> str:
    """`sanitize`, and links whose target is not http(s) defused (shown as text, not clickable)."""
    def link(match: re.Match) -> str:
        target = match.group(2)
        if safe_url(target) or "://" not in target and ":" not in target.split("/")[0]:
            return match.group(0)  # http(s), or a relative link / anchor: harmless
        return match.group(1) + "#blocked-" + target.replace(":", "-", 1)

    def autolink(match: re.Match) -> str:
        return match.group(0) if safe_url(match.group(1)) else "‹" + match.group(1) + "›"

    return _AUTOLINK.sub(autolink, _MD_LINK.sub(link, sanitize(text)))
