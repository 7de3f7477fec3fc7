"""Heading-aware chunking: blocks -> chunks that keep their heading path and lines.

A chunk never crosses a heading. Inside a section, consecutive blocks are packed
up to `max_words`; a block longer than that is cut at line boundaries; a short
tail is folded into the chunk before it so no chunk is a lonely fragment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plugins.rag.loaders import Block, Document

MAX_WORDS = 150
MIN_WORDS = 30


@dataclass(frozen=True)
class Chunk:
    heading: str  # "VAEs > The loss"
    start_line: int
    end_line: int
    text: str

    def indexed_text(self) -> str:
        """What is embedded and scored by BM25: heading path, then the prose.

        Display math is dropped and inline math reduced to its words: LaTeX
        would otherwise fill MiniLM's 256-token window with `\\mathcal{N}`
        and push the explaining sentences out of it.
        """
        return indexed_text(self.heading, self.text)


def indexed_text(heading: str, text: str) -> str:
    body = prose(text)
    return f"{heading}\n{body}" if heading else body


DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
INLINE_MATH = re.compile(r"\$([^$\n]+)\$")
LATEX_COMMAND = re.compile(r"\\(?:operatorname|mathcal|mathbb|mathrm|text|big|Big|left|right|tfrac|frac|sqrt)\b")


def _inline(match: re.Match) -> str:
    inner = LATEX_COMMAND.sub(" ", match.group(1))
    inner = re.sub(r"\\([A-Za-z]+)", r" \1 ", inner)  # \beta -> beta
    return " ".join(re.sub(r"[^A-Za-z0-9]+", " ", inner).split())


def prose(text: str) -> str:
    text = DISPLAY_MATH.sub(" ", text)
    return INLINE_MATH.sub(_inline, text)


def _words(text: str) -> int:
    return len(text.split())


def _split_long(block: Block, doc: Document, max_words: int) -> list[Block]:
    """Cut an oversized block at line boundaries (when its lines are file lines)."""
    if doc.lines is None or block.start == block.end or _words(block.text) <= max_words:
        return [block]
    pieces: list[Block] = []
    start, count = block.start, 0
    for number in range(block.start, block.end + 1):
        count += _words(doc.lines[number - 1])
        if count >= max_words and number < block.end:
            pieces.append(Block(start, number, "\n".join(doc.lines[start - 1:number])))
            start, count = number + 1, 0
    pieces.append(Block(start, block.end, "\n".join(doc.lines[start - 1:block.end])))
    return pieces


def chunk_document(doc: Document, max_words: int = MAX_WORDS, min_words: int = MIN_WORDS) -> list[Chunk]:
    chunks: list[Chunk] = []
    stack: list[tuple[int, str]] = []  # (level, title) of the open headings
    section: list[list[Block]] = []  # groups of blocks, one group per chunk

    def close_section() -> None:
        if not section:
            return
        if len(section) > 1 and sum(_words(b.text) for b in section[-1]) < min_words:
            section[-2].extend(section.pop())
        heading = " > ".join(title for _, title in stack)
        for group in section:
            text = doc.slice(group[0].start, group[-1].end, group)
            if text.strip():
                chunks.append(Chunk(heading, group[0].start, group[-1].end, text))
        section.clear()

    for block in doc.blocks:
        if block.level:
            close_section()
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.text))
            continue
        for piece in _split_long(block, doc, max_words):
            size = _words(piece.text)
            if section and sum(_words(b.text) for b in section[-1]) + size <= max_words:
                section[-1].append(piece)
            else:
                section.append([piece])
    close_section()
    return chunks
