"""Builders for hostile inputs, shared by the reliability tests and bench/faults.py."""

from __future__ import annotations

import zlib


def shared_stream_pdf(pages: int, lines: int = 60, width: int = 70) -> bytes:
    """A small PDF whose `pages` pages all draw one Flate-compressed content stream.

    The file stays a few KB while text extraction yields pages * lines * width
    characters: the expansion a hostile PDF uses to exhaust memory and time.
    """
    ops = ["BT", "/F1 10 Tf", "12 TL", "40 760 Td"]
    row = ("lorem ipsum dolor " * 8)[:width]
    ops += [f"({row}) Tj T*" for _ in range(lines)]
    ops.append("ET")
    content = zlib.compress("\n".join(ops).encode(), 9)
    page_ids = [4 + i for i in range(pages)]
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {pages} >>".encode(),
        3: b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
    }
    font = 4 + pages
    for i in page_ids:
        objects[i] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
                      f"/Resources << /Font << /F1 {font} 0 R >> >> >>").encode()
    objects[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {font + 1}\n0000000000 65535 f \n".encode()
    for number in range(1, font + 1):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {font + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
