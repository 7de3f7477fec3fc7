"""Loading and chunking without a model: headings, line ranges, formats, broken files."""

from __future__ import annotations


import pytest

from course_assistant_plugins.rag.chunking import chunk_document
from course_assistant_plugins.rag.loaders import UnreadableFile, load

from .conftest import write
from .helpers import encrypted_pdf, make_pdf

NOTE = """# VAEs

Intro paragraph about variational autoencoders and why they generate data.

## The loss

The loss has a reconstruction term that rebuilds the input from the code.
It also has a KL term that pulls each posterior towards the prior.

```python
# not a heading: inside a fence
loss = rec + beta * kl


```

### Beta

A weight beta on the KL term trades sharpness for a smoother latent space.

## Sampling

Decode points drawn from the standard normal prior to get new images.
"""


def test_markdown_chunks_keep_heading_path_and_exact_lines(tmp_path):
    path = write(tmp_path / "vae.md", NOTE)
    chunks = chunk_document(load(path))
    lines = path.read_text().split("\n")
    by_heading = {c.heading: c for c in chunks}
    assert set(by_heading) == {"VAEs", "VAEs > The loss", "VAEs > The loss > Beta", "VAEs > Sampling"}
    for chunk in chunks:  # the text is exactly the file's lines start..end
        assert chunk.text == "\n".join(lines[chunk.start_line - 1:chunk.end_line]).strip("\n")
    loss = by_heading["VAEs > The loss"]
    assert "# not a heading" in loss.text and loss.text.rstrip().endswith("```")  # the fence stays whole
    assert lines[loss.start_line - 1].startswith("The loss has")
    assert by_heading["VAEs > Sampling"].start_line == lines.index("Decode points drawn from the standard normal prior to get new images.") + 1
    assert by_heading["VAEs > The loss"].indexed_text().startswith("VAEs > The loss\n")


def test_long_sections_split_at_lines_without_gaps(tmp_path):
    body = "\n".join(f"Line {i} talks about diffusion noise schedules and denoising steps." for i in range(1, 121))
    path = write(tmp_path / "long.md", "# Long\n\n" + body + "\n")
    chunks = chunk_document(load(path), max_words=100, min_words=20)
    assert len(chunks) > 3
    assert chunks[0].start_line == 3 and chunks[-1].end_line == 122
    for before, after in zip(chunks, chunks[1:]):
        assert after.start_line == before.end_line + 1  # contiguous, no line lost
    assert all(len(c.text.split()) <= 100 + 10 for c in chunks[:-1])


def test_label_only_list_items_become_named_chunks(tmp_path):
    summary = ("# Diffusion\n\n## Summary\n\n"
               "*   **Advantages:**\n    *   Sharp and diverse samples.\n    *   Stable training with a plain loss.\n"
               "*   **Cons:**\n    *   **Slow Sampling:** many network calls per image.\n    *   Costly to train.\n"
               "*   **Uses:** text to image, inpainting.\n")
    path = write(tmp_path / "d.md", summary)
    chunks = chunk_document(load(path))
    lines = path.read_text().split("\n")
    by_heading = {c.heading: c for c in chunks}
    assert set(by_heading) == {"Diffusion > Summary > Advantages", "Diffusion > Summary > Cons"}
    cons = by_heading["Diffusion > Summary > Cons"]
    # The label's own points stay with it (an inline bold label is not a new section); no line is lost.
    assert lines[cons.start_line - 1].strip() == "*   **Cons:**" and "Slow Sampling" in cons.text
    assert "Uses" in cons.text and cons.end_line == len(lines) - 1
    assert by_heading["Diffusion > Summary > Advantages"].end_line == cons.start_line - 1


def test_query_synonyms_find_a_list_labelled_with_another_word():
    from course_assistant_plugins.rag.bm25 import BM25, expand_query, tokenize

    docs = [tokenize(text) for text in (
        "Diffusion, cons: sampling is slow and training is costly",
        "Diffusion models add noise step by step and learn to remove it",
        "A diffusion model predicts the noise with a U-Net",
        "GANs pit a generator against a discriminator",
        "A VAE encoder outputs a mean and a log-variance")]
    query = tokenize("What are the drawbacks of diffusion models?")
    assert "con" in expand_query(query) and "drawback" in expand_query(query)
    bm25 = BM25(docs)
    assert bm25.top(query, 1)[0][0] != 0  # on its own words the question misses the list of cons
    assert bm25.top(expand_query(query), 1)[0][0] == 0
    # the data-preparation group: "scaled" finds a code comment that says "Normalize"
    pixels = tokenize("How are the pixel values scaled before training?")
    code = BM25([tokenize(text) for text in (
        "x = x.astype('float32') / 255  # Normalize the images", "Each pixel of a digit is drawn in grey",
        "The generator maps noise to images", "Training runs for fifty epochs", "The decoder outputs logits")])
    assert 0 not in [i for i, _ in code.top(pixels, 3)] and 0 in [i for i, _ in code.top(expand_query(pixels), 3)]


def test_british_spellings_match_american_text():
    from course_assistant_plugins.rag.bm25 import tokenize

    assert tokenize("How are the images normalised? Which colours does minimising change?") == tokenize(
        "How are the images normalized? Which colors does minimizing change?")
    assert tokenize("noise promise") == ["noise", "promise"]  # only the listed ML stems fold


def test_math_is_dropped_from_the_indexed_text_but_kept_in_the_chunk(tmp_path):
    path = write(tmp_path / "m.md", "# M\n\nWe add noise $\\beta_t$ here.\n\n$$\nq(x_t) = \\mathcal{N}(0, I)\n$$\n\nThen we stop.\n")
    chunk = chunk_document(load(path))[0]
    assert "\\mathcal" in chunk.text
    assert "mathcal" not in chunk.indexed_text() and "beta t" in chunk.indexed_text()


def test_html_blocks_use_source_lines(tmp_path):
    page = ("<html><head><style>p {color: red}</style></head><body>\n<h1>GANs</h1>\n"
            "<p>The generator maps noise to images.</p>\n<h2>Training</h2>\n"
            "<p>The discriminator\nlearns to tell real from fake.</p>\n<script>var x = 1;</script>\n</body></html>\n")
    path = write(tmp_path / "gan.html", page)
    chunks = chunk_document(load(path))
    assert [(c.heading, c.start_line, c.end_line) for c in chunks] == [("GANs", 3, 3), ("GANs > Training", 5, 6)]
    assert chunks[1].text == "The discriminator learns to tell real from fake."
    assert all("color" not in c.text and "var x" not in c.text for c in chunks)


def test_pdf_lines_are_pages(tmp_path):
    path = tmp_path / "lecture.pdf"
    path.write_bytes(make_pdf([["LoRA adds low rank adapters.", "The base stays frozen."], ["Rank r is small."]]))
    chunks = chunk_document(load(path))
    text = " ".join(c.text for c in chunks)
    assert "low rank adapters" in text and "Rank r is small" in text
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 2


@pytest.mark.parametrize("name,data,reason", [
    ("blob.md", bytes(range(256)) * 4, "binary"),
    ("latin.txt", "caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"), "encoding"),
    ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage", "broken PDF"),
    ("locked.pdf", None, "encrypted"),
    ("empty.md", b"   \n\n", None),
])
def test_unreadable_files_raise_one_clear_reason(tmp_path, name, data, reason):
    from course_assistant_plugins.rag.kb import parse_file

    path = tmp_path / name
    path.write_bytes(encrypted_pdf() if data is None else data)
    with pytest.raises(UnreadableFile) as info:
        parse_file(path, path.read_bytes())
    message = str(info.value)
    assert message.startswith(name) and "\n" not in message
    assert (reason or "no text") in message


def test_utf16_with_bom_is_read(tmp_path):
    path = tmp_path / "u16.txt"
    path.write_bytes("Attention heads mix tokens.\n".encode("utf-16"))
    assert chunk_document(load(path))[0].text == "Attention heads mix tokens."
