"""BM25 equals rank_bm25; citation markers are filtered while streaming; QA files are validated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from course_assistant_plugins.rag.answer import CitationFilter, clean_citations, fence
from course_assistant_plugins.rag.bm25 import BM25, tokenize


def test_sparse_bm25_matches_rank_bm25():
    from rank_bm25 import BM25Okapi

    docs = ["the generator maps noise to images", "the discriminator scores images as real or fake",
            "diffusion adds noise step by step and learns to remove noise", "lora trains low rank adapters",
            "retrieval finds passages; bm25 scores passages by terms", "noise noise noise schedule"]
    corpus = [tokenize(d) for d in docs]
    ours, ref = BM25(corpus), BM25Okapi(corpus)
    for query in ("noise images", "low rank adapters", "passages scores", "unknownword"):
        q = tokenize(query)
        np.testing.assert_allclose(ours.scores(q), ref.get_scores(q), rtol=1e-9, atol=1e-12)
    assert ours.top(tokenize("noise schedule"), 2)[0][0] == 5


def test_citation_filter_streams_and_drops_unknown_markers():
    f = CitationFilter(3)
    pieces = ["The KL term regularises [", "1]. Fake [", "9] cite and [2", ", 7] mixed; [source 3] too; a [link] stays."]
    out = "".join(f.feed(p) for p in pieces) + f.flush()
    assert out == "The KL term regularises [1]. Fake  cite and [2] mixed; [3] too; a [link] stays."
    assert f.cited == [1, 2, 3] and f.dropped == 2
    assert clean_citations("see [4]", 3) == ("see ", [])


def test_fence_matches_the_extractive_backend_and_escapes():
    from assistant.llm.extractive import FENCE
    from course_assistant_plugins.rag.retriever import Hit

    hit = Hit("knowledge/vae.md", 'VAEs > "The" loss', 3, 9, 0.1, "Body </source> text\nline two")
    fenced = fence(2, hit)
    assert fenced.startswith('<source 2 file="knowledge/vae.md" heading="VAEs &gt; &quot;The&quot; loss" lines="3-9">\n')
    (number, body), = FENCE.findall(fenced)
    assert number == "2" and "line two" in body and "</source> text" not in body


def test_extractive_quotes_the_passage_that_states_it_not_the_longest_match():
    from langchain_core.messages import HumanMessage

    from assistant.llm.extractive import ExtractiveChatModel
    from course_assistant_plugins.rag.retriever import Hit

    long_one = Hit("a.md", "GANs", 1, 9, 0.9, "The discriminator loss is logged. The discriminator is saved. "
                   "The discriminator learning rate is 1e-4. The discriminator has three layers.")
    states_it = Hit("b.md", "GANs", 1, 2, 0.8, "The discriminator ends in a sigmoid activation that outputs "
                    "a probability.")
    unrelated = Hit("c.md", "VAEs", 1, 2, 0.7, "The encoder outputs a mean.")
    prompt = "\n".join(fence(n, h) for n, h in enumerate([long_one, states_it, unrelated], 1))
    answer = ExtractiveChatModel().answer([HumanMessage(f"{prompt}\nQuestion: Which activation ends the discriminator?")])
    assert answer.startswith("The discriminator ends in a sigmoid") and "[2]" in answer
    assert "[3]" not in answer  # a passage sharing none of the question's words is never quoted


def test_qa_file_errors_name_the_line(tmp_path):
    from course_assistant_plugins.rag.evaluate import QaFileError, load_qa

    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"question": "ok?", "out_of_scope": True}) + "\n{not json}\n")
    with pytest.raises(QaFileError, match=r"qa.jsonl:2: not valid JSON"):
        load_qa(path)
    path.write_text(json.dumps({"question": "where?", "source": "a.md", "start_line": 5, "end_line": 2}) + "\n")
    with pytest.raises(QaFileError, match=r":1: an in-scope question"):
        load_qa(path)


def test_plugin_module_stays_light():
    import subprocess
    import sys

    code = ("import sys, assistant.cli, course_assistant_plugins.rag; heavy = [m for m in ('torch', 'chromadb', 'faiss', "
            "'transformers', 'sentence_transformers', 'langchain_chroma') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
