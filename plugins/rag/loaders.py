"""Read one file into blocks that remember where they sit in the source file.

A block is a heading or a run of text (a paragraph, a list, a code fence).
Line numbers are 1-based and inclusive:

- Markdown and plain text: lines of the file itself; a chunk's text is exactly
  those lines.
- HTML: the line in the HTML file where each element starts (BeautifulSoup's
  `sourceline`); the chunk text is the element text, not the markup.
- PDF: page numbers (a PDF has no stable lines), so `start_line`/`end_line`
  are the first and last page of the chunk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant import UserError

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown"}
TEXT_SUFFIXES = {".txt", ".text", ".rst"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
MAX_FILE_BYTES = 50 * 1024 * 1024
# Caps per file against hostile input (a 2 KB PDF whose pages share one
# compressed stream expands to millions of characters): past a cap the rest of
# the file is left out and the Document carries a one-line note saying so.
MAX_PDF_PAGES = 2000
MAX_CHARS = 2_000_000  # indexed characters; about 1,000 pages of dense notes
MAX_PARSE_SECONDS = 60.0

ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class UnreadableFile(UserError):
    """The file cannot be indexed (binary, broken PDF, unknown encoding...)."""


@dataclass
class Block:
    start: int
    end: int
    text: str
    level: int = 0  # 1-6 for a heading, 0 for body text


@dataclass
class Document:
    path: Path
    kind: str  # markdown | text | html | pdf
    blocks: list[Block] = field(default_factory=list)
    lines: list[str] | None = None  # the file's lines when block text == file lines
    notes: list[str] = field(default_factory=list)  # one-line reports: caps hit, parts left out

    def slice(self, start: int, end: int, blocks: list[Block]) -> str:
        if self.lines is not None:
            return "\n".join(self.lines[start - 1:end]).strip("\n")
        return ("\n" if self.kind == "pdf" else "\n\n").join(b.text for b in blocks)


def kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in PDF_SUFFIXES:
        return "pdf"
    return "text"


def decode_text(data: bytes, path: Path) -> str:
    """UTF-8 (BOM allowed) or UTF-16 with a BOM; anything else is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableFile(f"{path.name}: broken UTF-16 text") from None
    if b"\x00" in data[:8192]:
        raise UnreadableFile(f"{path.name}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{path.name}: unknown text encoding (not UTF-8 at byte {exc.start})") from None


def load(path: Path, data: bytes | None = None, cancel: Any = None) -> Document:
    """Parse `path` (its bytes may be passed in when already read for hashing).

    The size is checked with `stat` before anything is read; `cancel` is
    checked per PDF page; the caps above bound what one file can produce.
    """
    if data is None:
        check_size(path)
        data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFile(too_big(path, len(data)))
    kind = kind_of(path)
    if kind == "pdf":
        return _cap_chars(_load_pdf(path, data, cancel))
    text = decode_text(data, path)
    if kind == "html":
        return _cap_chars(_load_html(path, text))
    lines = file_lines(text)
    blocks = markdown_blocks(lines) if kind == "markdown" else text_blocks(lines)
    return _cap_chars(Document(path, kind, blocks, lines))


def too_big(path: Path, size: int) -> str:
    return f"{path.name}: {size / 2**20:.0f} MiB is more than the {MAX_FILE_BYTES // 2**20} MiB limit"


def check_size(path: Path) -> int:
    """The file's size from `stat`, before reading it; UnreadableFile past the limit."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UnreadableFile(too_big(path, size))
    return size


def _cap_chars(doc: Document) -> Document:
    """Keep the blocks within MAX_CHARS; say where the file was cut."""
    total = 0
    for i, block in enumerate(doc.blocks):
        total += len(block.text)
        if total > MAX_CHARS:
            where = f"page {block.start}" if doc.kind == "pdf" else f"line {block.start}"
            doc.notes.append(f"{doc.path.name}: more than {MAX_CHARS:,} characters of text; "
                             f"indexed up to {where}, the rest left out")
            doc.blocks = doc.blocks[:i]
            break
    return doc


def file_lines(text: str) -> list[str]:
    """Lines as an editor numbers them (only "\n" ends a line, a final one adds none)."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def markdown_blocks(lines: list[str]) -> list[Block]:
    """ATX headings, fenced code kept whole, paragraphs split at blank lines."""
    blocks: list[Block] = []
    para: list[int] = []
    fence: str | None = None
    fence_start = 0

    def flush() -> None:
        if para:
            blocks.append(Block(para[0], para[-1], "\n".join(lines[para[0] - 1:para[-1]])))
            para.clear()

    for number, line in enumerate(lines, 1):
        if fence is not None:
            if line.strip().startswith(fence):
                blocks.append(Block(fence_start, number, "\n".join(lines[fence_start - 1:number])))
                fence = None
            continue
        opened = FENCE_OPEN.match(line)
        if opened:
            flush()
            fence, fence_start = opened.group(1)[:3], number
            continue
        heading = ATX_HEADING.match(line)
        if heading:
            flush()
            blocks.append(Block(number, number, heading.group(2).strip(), level=len(heading.group(1))))
        elif not line.strip():
            flush()
        else:
            para.append(number)
    flush()
    if fence is not None:  # unclosed fence: keep what is there
        blocks.append(Block(fence_start, len(lines), "\n".join(lines[fence_start - 1:])))
    return blocks


def text_blocks(lines: list[str]) -> list[Block]:
    """Plain text: paragraphs separated by blank lines, no headings."""
    blocks: list[Block] = []
    start = None
    for number, line in enumerate(lines + [""], 1):
        if line.strip():
            start = start or number
        elif start is not None:
            blocks.append(Block(start, number - 1, "\n".join(lines[start - 1:number - 1])))
            start = None
    return blocks


HTML_BLOCK_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "td", "th", "dt", "dd",
                   "figcaption", "caption")


HIDDEN_STYLE = re.compile(r"(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9]))", re.I)


def is_hidden(tag) -> bool:
    """An element a reader never sees: text hidden there is a classic prompt-injection carrier."""
    attrs = getattr(tag, "attrs", None) or {}
    return ("hidden" in attrs or str(attrs.get("aria-hidden", "")).strip().lower() == "true"
            or bool(HIDDEN_STYLE.search(str(attrs.get("style", "")))))


def _load_html(path: Path, text: str) -> Document:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    for tag in soup.find_all(is_hidden):
        if not tag.decomposed:  # an ancestor already went
            tag.decompose()
    blocks: list[Block] = []
    for tag in soup.find_all(HTML_BLOCK_TAGS):
        # Only innermost blocks: a <li> holding a <p> is read through the <p>.
        if tag.find(HTML_BLOCK_TAGS):
            continue
        body = tag.get_text(" " if tag.name != "pre" else "", strip=tag.name != "pre")
        body = body if tag.name == "pre" else " ".join(body.split())
        if not body.strip():
            continue
        line = tag.sourceline or 1
        end = line + (str(tag).count("\n"))
        level = int(tag.name[1]) if tag.name in ("h1", "h2", "h3", "h4", "h5", "h6") else 0
        blocks.append(Block(line, end, body.strip("\n"), level))
    if not blocks:  # no block markup at all: fall back to the visible text
        body = " ".join(soup.get_text(" ").split())
        if body:
            blocks.append(Block(1, max(1, text.count("\n") + 1), body))
    return Document(path, "html", blocks)


def _load_pdf(path: Path, data: bytes, cancel: Any = None) -> Document:
    import io
    import logging
    import time

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    notes: list[str] = []
    pages: list[str] = []
    started = time.monotonic()
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableFile(f"{path.name}: the PDF is encrypted")
        count = len(reader.pages)
        chars = 0
        for number, page in enumerate(reader.pages, 1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            stop = None
            if number > MAX_PDF_PAGES:
                stop = f"more than {MAX_PDF_PAGES:,} pages"
            elif number > 1 and time.monotonic() - started > MAX_PARSE_SECONDS:
                stop = f"reading took more than {MAX_PARSE_SECONDS:.0f} s"
            if stop:
                notes.append(f"{path.name}: {stop}; indexed pages 1-{number - 1} of {count}, the rest left out")
                break
            text = page.extract_text() or ""
            if chars + len(text) > MAX_CHARS:  # keep what fits of this page, then stop
                pages.append(text[:MAX_CHARS - chars])
                notes.append(f"{path.name}: more than {MAX_CHARS:,} characters of text; "
                             f"indexed up to page {number} of {count}, the rest left out")
                break
            chars += len(text)
            pages.append(text)
    except UnreadableFile:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, AttributeError, IndexError,
            RecursionError, MemoryError) as exc:
        raise UnreadableFile(f"{path.name}: broken PDF ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    blocks: list[Block] = []
    for number, page_text in enumerate(pages, 1):
        for line in page_text.splitlines():
            body = " ".join(line.split())
            if body:
                blocks.append(Block(number, number, body))
    if not blocks:
        raise UnreadableFile(f"{path.name}: the PDF has no extractable text (scanned images?)")
    return Document(path, "pdf", blocks, notes=notes)
