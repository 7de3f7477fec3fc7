"""Follow-up detection and the rule-based rewrite (assistant.followup): no model involved."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assistant.followup import enumeration, refers_back, resolve, rewrite, topic_of

VAE_LOSS = [{"role": "user", "content": "What are the two terms of the VAE loss?"},
            {"role": "assistant", "content": "The reconstruction loss and the KL divergence [1]."}]
COLLAPSE = [{"role": "user", "content": "What is mode collapse?"},
            {"role": "assistant", "content": "The generator keeps producing a few kinds of samples [2]."}]


@pytest.mark.parametrize("text", [
    "What does the second one do?", "and the second one?", "why?", "Why is it unstable?", "how do I fix it?",
    "What about GANs?", "And for the discriminator?", "Give me an example", "In code?", "What does this term do?",
    "How does that work?", "What are its advantages?", "What is the latter used for?", "Does a VAE use it?",
    "Can you explain that in simpler words?",
])
def test_follow_ups_refer_back(text):
    assert refers_back(text)


@pytest.mark.parametrize("text", [
    "What is LoRA?", "What is the reparameterization trick and why do we need it?",
    "Which activation does the generator's last layer use?", "How is the second term of the VAE loss computed?",
    "Is it true that GANs are hard to train?", "What does it mean when the discriminator loss goes to zero?",
    "What is the difference between a VAE and a GAN?", "Why does the decoder use a sigmoid?", "", "/help",
    "What is the loss that a VAE minimises?",
])
def test_self_contained_questions_do_not(text):
    assert not refers_back(text)


def test_ordinal_takes_the_item_from_the_previous_reply():
    out = rewrite("What does the second one do?", VAE_LOSS)
    assert "KL divergence" in out and "reconstruction" not in out.lower()
    assert "the first one" not in rewrite("And the first one?", VAE_LOSS)
    assert "reconstruction loss" in rewrite("And the first one?", VAE_LOSS).lower()


def test_ordinal_without_a_list_names_the_previous_subject():
    history = [{"role": "user", "content": "What are the two terms of the VAE loss?"}]
    assert "the two terms of the VAE loss" in rewrite("What does the second one do?", history)


def test_pronoun_is_replaced_by_the_previous_subject():
    assert rewrite("How do I fix it?", COLLAPSE) == "How do I fix mode collapse?"
    assert "mode collapse" in rewrite("Why does it happen?", COLLAPSE)


def test_ellipsis_and_what_about_keep_the_previous_question():
    why = rewrite("why?", COLLAPSE)
    assert "mode collapse" in why and why.lower().endswith("why?")
    about = rewrite("What about diffusion models?", COLLAPSE)
    assert "mode collapse" in about and "diffusion models" in about


def test_topic_switch_is_left_alone():
    assert rewrite("What is LoRA?", COLLAPSE) == "What is LoRA?"
    assert resolve("What is LoRA?", COLLAPSE).method == "none"


def test_a_chain_of_follow_ups_keeps_the_first_topic():
    history = COLLAPSE + [{"role": "user", "content": "Why does it happen?"},
                          {"role": "assistant", "content": "The generator finds one output that fools the critic."}]
    assert "mode collapse" in rewrite("How do I fix it?", history)


def test_no_history_means_no_rewrite():
    assert rewrite("What does the second one do?", []) == "What does the second one do?"
    assert resolve("why?", None).resolved == "why?"


def test_enumeration_reads_lists_and_sentences():
    assert enumeration("1. **Reconstruction loss**: how close\n2. **KL divergence** - pulls") == [
        "Reconstruction loss", "KL divergence"]
    assert enumeration("The three are A, B and C.") == ["A", "B", "C"]
    assert enumeration("No list here at all, just words.") == []
    assert topic_of("How does the reparameterization trick work?") == "the reparameterization trick"


def test_llm_rewrite_is_used_when_it_is_one_standalone_question():
    seen = []

    def complete(messages):
        seen.append(messages)
        return "What does the KL divergence term of the VAE loss do?\nextra chatter"

    out = resolve("What does the second one do?", VAE_LOSS, complete)
    assert out.method == "llm" and out.resolved == "What does the KL divergence term of the VAE loss do?"
    assert "<conversation>" in seen[0][-1]["content"] and "VAE loss" in seen[0][-1]["content"]


@pytest.mark.parametrize("bad", ["", "It does that.", "x" * 400])
def test_a_useless_llm_rewrite_falls_back_to_the_rules(bad):
    out = resolve("What does the second one do?", VAE_LOSS, lambda messages: bad)
    assert out.method == "rules" and "KL divergence" in out.resolved


def test_a_failing_model_falls_back_to_the_rules():
    def boom(messages):
        raise RuntimeError("no model")

    assert resolve("How do I fix it?", COLLAPSE, boom).resolved == "How do I fix mode collapse?"


def test_module_is_light():
    code = "import sys, assistant.followup; print(sorted(m for m in sys.modules if m in {'torch','numpy','transformers'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_and_x_swaps_the_sibling_in_the_previous_question():
    few = [{"role": "user", "content": "What is few-shot prompting?"}]
    assert rewrite("And zero-shot?", few) == "What is zero-shot prompting?"
    gen = [{"role": "user", "content": "Which activation does the GAN generator's output layer use?"}]
    assert "discriminator's output layer" in rewrite("And the discriminator?", gen)
    assert "generator" not in rewrite("And the discriminator?", gen)


def test_plural_pronoun_takes_the_items_of_the_last_reply():
    history = [{"role": "user", "content": "What does the VAE encoder output?"},
               {"role": "assistant", "content": "A mean and a log-variance for every latent dimension."}]
    out = rewrite("How is z computed from them?", history)
    assert "mean" in out and "log-variance" in out
