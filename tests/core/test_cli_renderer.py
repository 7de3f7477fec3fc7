"""The CLI renderer: a notice after streamed text starts on its own line."""

from __future__ import annotations

import io

from assistant.cliutil import CliRenderer
from assistant.events import Notice, Source, Sources, Text


def test_a_notice_after_streamed_text_does_not_glue_onto_the_reply():
    # one stream for both, as a terminal shows stdout and stderr interleaved
    screen = io.StringIO()
    renderer = CliRenderer(out=screen, err=screen)
    renderer.consume([Text("The answer is"), Text(" here."), Notice("warning", "1 sentence not supported"),
                      Sources([Source(source="knowledge/vae.md", heading="VAE", start_line=3, end_line=9, score=0.5,
                                      text="...")])])
    lines = screen.getvalue().splitlines()
    assert lines[0] == "The answer is here."
    assert lines[1] == "warning: 1 sentence not supported"
    assert screen.getvalue().endswith("█████ best match\n") and not screen.getvalue().endswith("\n\n")
