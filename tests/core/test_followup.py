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


@pytest.mark.parametrize("question,topic", [
    ("Which library is the GAN example written in?", "the library of the GAN example"),
    ("What happens during the reverse process of a diffusion model?", "the reverse process of a diffusion model"),
    ("How is LoRA used in industry?", "LoRA"),
    ("Which scores are commonly used to rate image generators?", "scores commonly used to rate image generators"),
    ("What loss does the GAN code minimise?", "the loss of the GAN code"),
    ("What is the learned prior?", "the learned prior"),
])
def test_topic_of_finds_the_subject_behind_the_wh_word(question, topic):
    assert topic_of(question) == topic


def test_that_one_points_at_a_reply_that_is_only_a_name():
    history = [{"role": "user", "content": "Which optimizer does the GAN code use?"},
               {"role": "assistant", "content": "Adam [2]."}]
    assert rewrite("why that one?", history).startswith("Why Adam")
    # a reply that is a sentence is not a name: the subject stays
    long = [history[0], {"role": "assistant", "content": "It uses Adam with a learning rate of 1e-4 for both networks."}]
    assert "GAN code" in rewrite("why that one?", long)


def test_a_demonstrative_ending_the_question_refers_back():
    assert refers_back("Is the decoder frozen when it does that?")
    assert refers_back("why is that?")
    assert not refers_back("Is the decoder frozen during training?")


def test_what_about_swaps_a_phrase_of_the_same_kind():
    health = [{"role": "user", "content": "How is RAG used in healthcare?"}]
    assert rewrite("And in law?", health) == "How is RAG used in law?"
    vae = [{"role": "user", "content": "How can a VAE be used to compress images?"}]
    assert rewrite("what about for GANs?", vae) == "How can GANs be used to compress images?"
    # no word of the same kind to swap: the new thing is added to the question
    assert rewrite("What about medicine?", health) == "How is RAG used in healthcare, for medicine?"


def test_the_first_one_followed_by_a_verb_is_still_an_ordinal():
    history = [{"role": "user", "content": "What are the two halves of a GAN?"},
               {"role": "assistant", "content": "A generator and a discriminator, trained against each other."}]
    assert rewrite("What does the first one output?", history).startswith("What does a generator output")


def test_a_list_inside_a_side_clause_is_not_what_they_points_at():
    assert enumeration("Cutting documents into passages before they are embedded and indexed.") == []
    history = [{"role": "user", "content": "What is chunking?"},
               {"role": "assistant", "content": "Cutting documents into passages before they are embedded and indexed."}]
    assert "chunking" in rewrite("how long should they be?", history)


@pytest.mark.parametrize("question,topic", [
    ("how long is the VAE sub-topic supposed to take?", "the VAE sub-topic"),  # "how long" asks; it is not the subject
    ("How many diffusion steps does the MNIST code use?", "the diffusion steps of the MNIST code"),
    ("In the GAN code, what does the train function loop over?", "the train function in the GAN code"),
    ("Is the noise predictor in the diffusion code a full U-Net?", "the noise predictor in the diffusion code"),
    ("Is there a delimiter example in the prompting code?", "a delimiter example in the prompting code"),
    ("Which libraries does the RAG example rely on?", "the libraries of the RAG example"),  # verb + particle
    ("How does the MockLLM in the RAG code decide what to answer?", "the MockLLM in the RAG code"),  # unlisted verb
    ("Why do we chunk documents in RAG?", "chunk documents in RAG"),  # "we" does it: the topic is what is done
])
def test_topic_of_question_shapes_students_type(question, topic):
    assert topic_of(question) == topic


def _turn(question: str, reply: str = "It depends.") -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]


@pytest.mark.parametrize("history,question,expected", [
    (_turn("how long is the VAE sub-topic supposed to take?"), "and the diffusion one?",
     "how long is the diffusion sub-topic supposed to take?"),
    (_turn("how many diffusion steps does the MNIST code use?"), "and how many epochs?",
     "how many epochs does the MNIST code use?"),
    (_turn("how are VAEs used in drug discovery?"), "can diffusion models do that too?",
     "how are diffusion models used in drug discovery?"),
    (_turn("which libraries does the RAG example rely on?"), "what if i've got a gpu?",
     "which libraries does the RAG example rely on, if i've got a gpu?"),
    (_turn("how does the MockLLM decide what to answer?"), "and when the prompt has no context?",
     "how does the MockLLM decide what to answer, when the prompt has no context?"),
])
def test_follow_up_shapes_students_type(history, question, expected):
    assert refers_back(question)
    assert rewrite(question, history) == expected


def test_a_quoted_question_is_not_pasted_into_a_pronoun():
    history = _turn("In the few-shot example, what does the model answer for 'What a delightful surprise!'?",
                    "Positive.")
    out = rewrite("how does it know to answer like that?", history)
    assert out.startswith("In the few-shot example, what does the model answer") and out.endswith("like that?")


def test_a_different_one_refers_back():
    assert refers_back("does the sampling function use a different one?")
    assert not refers_back("Does the sampling function use a different schedule?")
