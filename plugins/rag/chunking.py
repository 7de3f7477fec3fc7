"""Heading-aware chunking: blocks -> chunks that keep their heading path and lines.

A chunk never crosses a heading. Inside a section, consecutive blocks are packed
up to `max_words`; a block longer than that is cut at list items, else at line
boundaries; a short tail is folded into the chunk before it so no chunk is a
lonely fragment.

Course texts written by others need three more rules (measured on a 2,800-line
course module, docs/rag.md):

- Part headings ("Module 9", "Sub-topic 2: GANs", "Part 4.1: ...", "Chapter 3")
  stay in the heading path of every section until the next part heading, even
  when the sections below use a shallower heading level than the part (a
  common slip that would otherwise drop the topic from "8. Python Code").
- Inside a code fence, a section comment (`# --- 5. Build the Decoder ---`)
  starts a new chunk and names it in the heading path.
- A paragraph that opens with a bold-only line ("**Optimal Discriminator:**")
  starts a new chunk with that label in its heading path.
- So does a list item that is only a bold label ("*   **Cons:**",
  "3.  **Encoder Class:**", its points indented below it): revision
  summaries pack pros, cons and applications of several topics into one
  list, and a question about one of them should find that item, named.

Heading titles lose their Markdown emphasis (`**...**`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from course_assistant_plugins.rag.loaders import Block, Document

MAX_WORDS = 100
MIN_WORDS = 30
VERSION = 6  # bump when chunking or the index changes (6: heading vectors): every file is indexed again

PART_TITLE = re.compile(r"^(?:module|unit|chapter|part|sub-?topic|lecture|week|lesson)\b", re.I)
CODE_SECTION = re.compile(r"^\s*(?:#|//|--)\s*-{2,}\s*(.+?)\s*-{2,}\s*$")
BOLD_LABEL = re.compile(r"^\s*(?:\*\*|__)([^*_\n]{2,80}?)(?:\*\*|__)\s*:?\s*$")
LIST_ITEM = re.compile(r"^(?:\d+[.)]|[*+-])\s+")
# A list item that is only a bold label ("*   **Cons:**", "3.  **Encoder Class:**"); its sub-items follow.
LABEL_ITEM = re.compile(r"^(\s*)(?:\d+[.)]|[*+-])\s+(?:\*\*|__)([^*_\n]{2,80}?)(?:\*\*|__)\s*:?\s*$")
LABEL_LEVEL = 8  # below any Markdown heading: a code section or a bold label


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


def clean_title(title: str) -> str:
    """A heading as people read it: no Markdown emphasis or code marks."""
    return " ".join(re.sub(r"(\*\*|__|`)", "", title).strip(" *_#").split())


def _split_long(block: Block, doc: Document, max_words: int) -> list[Block]:
    """Cut an oversized block, before a top-level list item where one is near, else at a line."""
    if doc.lines is None or block.start == block.end or _words(block.text) <= max_words:
        return [block]
    pieces: list[Block] = []
    start, count = block.start, 0
    for number in range(block.start, block.end + 1):
        line = doc.lines[number - 1]
        # A new top-level item once the piece is half full: lists are cut between items.
        if number > start and count >= max_words // 2 and LIST_ITEM.match(line):
            pieces.append(Block(start, number - 1, "\n".join(doc.lines[start - 1:number - 1])))
            start, count = number, 0
        count += _words(line)
        if count >= max_words and number < block.end:
            pieces.append(Block(start, number, "\n".join(doc.lines[start - 1:number])))
            start, count = number + 1, 0
    if start <= block.end:
        pieces.append(Block(start, block.end, "\n".join(doc.lines[start - 1:block.end])))
    return pieces


def _code_sections(block: Block, doc: Document) -> list[tuple[str, Block]]:
    """A fenced code block cut at its section comments: [(title or "", piece)]."""
    if doc.lines is None or not block.text.lstrip().startswith(("```", "~~~")):
        return [("", block)]
    cuts = [n for n in range(block.start + 1, block.end) if CODE_SECTION.match(doc.lines[n - 1])]
    if not cuts:
        return [("", block)]
    bounds = [block.start] + cuts + [block.end + 1]
    sections = []
    for a, b in zip(bounds, bounds[1:]):
        if a > b - 1:
            continue
        found = CODE_SECTION.match(doc.lines[a - 1])
        title = clean_title(found.group(1)) if found and a != block.start else ""
        sections.append((title, Block(a, b - 1, "\n".join(doc.lines[a - 1:b - 1]))))
    return sections


def _labelled_items(block: Block, doc: Document) -> list[tuple[int, str, Block]]:
    """A list cut before each label-only item: [(indent depth or -1, label or "", piece)]; [] without one."""
    if doc.lines is None or block.start == block.end or block.text.lstrip().startswith(("```", "~~~")):
        return []
    cuts = [n for n in range(block.start, block.end + 1) if LABEL_ITEM.match(doc.lines[n - 1])]
    if not cuts:
        return []
    bounds = sorted(set([block.start] + cuts)) + [block.end + 1]
    pieces = []
    for a, b in zip(bounds, bounds[1:]):
        found = LABEL_ITEM.match(doc.lines[a - 1])
        depth = len(found.group(1).expandtabs(4)) // 2 if found else -1
        pieces.append((depth, clean_title(found.group(2)).rstrip(":") if found else "",
                       Block(a, b - 1, "\n".join(doc.lines[a - 1:b - 1]))))
    return pieces


def _bold_label(block: Block) -> str:
    first = block.text.split("\n", 1)[0]
    found = BOLD_LABEL.match(first)
    return clean_title(found.group(1)).rstrip(":") if found else ""


def chunk_document(doc: Document, max_words: int = MAX_WORDS, min_words: int = MIN_WORDS) -> list[Chunk]:
    chunks: list[Chunk] = []
    parts: list[tuple[int, str]] = []  # (level, title) of the open part headings ("Sub-topic 2: ...")
    stack: list[tuple[int, str]] = []  # (level, title) of the open headings below them
    section: list[list[Block]] = []  # groups of blocks, one group per chunk

    def close_section() -> None:
        if not section:
            return
        if len(section) > 1 and sum(_words(b.text) for b in section[-1]) < min_words:
            section[-2].extend(section.pop())
        titles = [t for _, t in parts] + [t for _, t in stack]
        heading = " > ".join(t for i, t in enumerate(titles) if t and t not in titles[:i])
        for group in section:
            text = doc.slice(group[0].start, group[-1].end, group)
            if text.strip():
                chunks.append(Chunk(heading, group[0].start, group[-1].end, text))
        section.clear()

    def open_heading(level: int, title: str) -> None:
        close_section()
        if level < LABEL_LEVEL and PART_TITLE.match(title):
            while parts and parts[-1][0] >= level:
                parts.pop()
            parts.append((level, title))
            stack.clear()
            return
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))

    def add(piece: Block) -> None:
        size = _words(piece.text)
        if section and sum(_words(b.text) for b in section[-1]) + size <= max_words:
            section[-1].append(piece)
        else:
            section.append([piece])

    for block in doc.blocks:
        if block.level:
            open_heading(block.level, clean_title(block.text))
            continue
        label = _bold_label(block)
        if label:
            open_heading(LABEL_LEVEL, label)
        items = _labelled_items(block, doc)
        if items:
            for depth, title, part in items:
                if title:
                    open_heading(LABEL_LEVEL + 1 + depth, title)
                for piece in _split_long(part, doc, max_words):
                    add(piece)
            close_section()  # the list's labels end with the list
            while stack and stack[-1][0] > LABEL_LEVEL:
                stack.pop()
            continue
        code = _code_sections(block, doc)
        for title, part in code:
            if title:
                open_heading(LABEL_LEVEL + 1, title)
            for piece in _split_long(part, doc, max_words):
                add(piece)
        if len(code) > 1:  # the code's own sections end with the fence
            close_section()
            while stack and stack[-1][0] > LABEL_LEVEL:
                stack.pop()
    close_section()
    return chunks
