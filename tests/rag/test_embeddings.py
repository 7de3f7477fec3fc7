"""The app's MiniLM (plain transformers) gives the vectors sentence-transformers gives, without importing it."""

from __future__ import annotations

import subprocess
import sys


def test_minilm_matches_sentence_transformers(embeddings):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from assistant.embeddings import model_path

    reference = SentenceTransformer(model_path(), device="cpu")
    texts = ["What is a VAE?", "x", "The reparameterization trick moves the randomness into epsilon. " * 40,
             "Diffusion models add Gaussian noise step by step and learn to remove it."]
    ours = embeddings.encode(texts)
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert ours.shape == theirs.shape == (4, 384)
    assert np.abs(ours - theirs).max() < 1e-4  # the long text is truncated to 256 tokens by both
    assert np.allclose(embeddings.embed_query("hello"), reference.encode(["hello"], normalize_embeddings=True)[0],
                       atol=1e-4)
    assert len(embeddings.embed_documents(texts)) == 4


def test_loading_minilm_does_not_import_sentence_transformers():
    code = ("import sys; from assistant.embeddings import encode; encode(['a question']); "
            "print([m for m in ('sentence_transformers', 'sklearn', 'langchain_huggingface') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    assert out.strip() == "[]"
