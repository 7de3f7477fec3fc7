"""Names a knowledge base never mentions (plugins/rag/names.py): the vocabulary is a real BM25 one."""

from __future__ import annotations

import pytest

from course_assistant_plugins.rag.bm25 import BM25, tokenize
from course_assistant_plugins.rag.names import prefix_index, unknown_names

NOTES = ["The reparameterization trick of a VAE samples z from N(mu, sigma). FID is the Fréchet distance.",
         "A U-Net predicts the noise; the GAN uses the Wasserstein loss with Adam.",
         "LoRA trains low-rank matrices; the L2 norm of the update is small.",
         "A diffusion model learns to remove noise step by step."]


@pytest.fixture(scope="module")
def vocab():
    bm25 = BM25([tokenize(t) for t in NOTES])
    return bm25.vocab, prefix_index(bm25.vocab)


@pytest.mark.parametrize("question,names", [
    ("How does RLHF tune a chat model?", ["RLHF"]),           # capitals the notes never use
    ("What does the L1 norm do to LoRA weights?", ["L1"]),    # letters with digits
    ("Why does Mamba beat attention?", ["Mamba"]),            # a capital inside the sentence
    ("RLHF vs PPO: which is cheaper?", ["RLHF", "PPO"]),
    ("How does the Wasserstein loss help a GAN?", []),        # the notes name it
    ("Is a UNet or a U-Net used for the noise?", []),         # a hyphen away
    ("Why is the Wassersten loss smoother?", []),             # a slip of one letter
    ("What does Reparameterizing do in VAEs?", []),           # a longer form of a known stem
    ("Explain LoRAs in 2024 terms", []),                      # plural, a sentence's first word, a year
    ("what does nutshell mean here", []),                     # lower case: an everyday English word
    ("how is perplexity computed for a VAE?", ["perplexity"]),  # lower case, rare in English, not in the notes
    ("Perplexity of a GAN: how is it measured?", ["Perplexity"]),  # a sentence's first word is judged as lower case
    ("can i rerank the retrieved chunks", ["rerank"]),         # in no English word list at all
    ("what does the difussion model learn", []),              # two slips from a word the notes use
    ("why is my model so slwo to train", []),                 # a slip of an everyday word
    ("waht does the decoder do", []),                         # a short word: two letters swapped
    ("how are lpips scores read", ["lpips"]),                 # short: one deletion from "lips" is no slip
    ("how does self-attention weigh tokens", []),             # compounds of known words are not judged
    ("WHY ARE MY GAN SAMPLES SO BLURRY", []),                 # typed in capitals: no word stands out
    ("Is the Fréchet distance a metric?", []),                # accents: the notes have it
    ("What does Σ mean, and is ΣΘ a matrix?", []),            # symbols the index cannot hold are not judged
    ("Does the Kullback–Leibler term use Šidák's bound?", ["Kullback", "Leibler", "Šidák"]),  # shown whole
])
def test_unknown_names(vocab, question, names):
    assert unknown_names(question, *vocab) == names


def test_without_a_word_list_lower_case_words_are_not_judged(vocab, monkeypatch):
    from course_assistant_plugins.rag import names

    monkeypatch.setattr(names, "english_ranks", lambda: {})
    assert unknown_names("how is perplexity computed for RLHF?", *vocab) == ["RLHF"]
