"""Extractive answers, source fitting by estimate, and the grounding check (with the real MiniLM)."""

from __future__ import annotations

from assistant import llm
from assistant.llm.extractive import NOT_COVERED, ExtractiveChatModel
from assistant.llm.grounding import MARK, mark_unsupported, minilm_embedder

VAE = ("A variational autoencoder encodes each input as a mean and a variance. "
       "The reparameterization trick samples the latent code as the mean plus the standard deviation times "
       "Gaussian noise, which keeps the sampling step differentiable. The loss adds a KL divergence term.")
GAN = "A generative adversarial network pits a generator against a discriminator. Training alternates between them."


def _fenced(*texts: str) -> str:
    return "\n\n".join(f"<source {i} notes.md>\n{t}\n</source>" for i, t in enumerate(texts, 1))


def _ask(question: str, *texts: str) -> str:
    return ExtractiveChatModel().invoke(f"{_fenced(*texts)}\n\nQuestion: {question}").content


def test_extractive_quotes_the_relevant_passage_with_its_number():
    answer = _ask("How does the reparameterization trick keep sampling differentiable?", GAN, VAE)
    assert answer.startswith("The reparameterization trick") and "[2]" in answer
    assert "[1]" not in answer  # the GAN passage shares no content words with the question


def test_extractive_says_when_the_notes_do_not_cover_it():
    assert _ask("What is the boiling point of mercury?", GAN, VAE) == NOT_COVERED


def test_extractive_backend_through_the_public_api(configure):
    context = configure("extractive")
    messages = [{"role": "user", "content": f"{_fenced(VAE)}\n\nQuestion: What does the loss add?"}]
    assert "KL divergence" in llm.complete(context, messages)
    assert llm.take_notice(context) is None


def test_fit_sources_by_estimate_never_cuts_the_question(configure):
    context = configure("extractive", context_window=300, max_tokens=100)
    question = "Explain the reparameterization trick " + "in great detail " * 5
    kept = llm.fit_sources(context, question, [VAE * 3, GAN * 5, VAE])
    assert len(kept) < 3 and VAE.startswith(kept[0][:50])
    used = sum(llm.count_tokens(context, k) for k in kept) + llm.count_tokens(context, question)
    assert used <= 300 - 100
    assert llm.fit_sources(context, "why? " * 400, [VAE, GAN]) == []  # the question alone fills the window


def test_grounding_marks_only_the_invented_sentence():
    answer = ("The reparameterization trick samples the latent code as the mean plus the standard deviation times "
              "noise [1]. It was invented in 1850 by Charles Darwin during his voyage on the Beagle.")
    marked, unsupported = mark_unsupported(answer, [VAE, GAN])
    assert unsupported == ["It was invented in 1850 by Charles Darwin during his voyage on the Beagle."]
    assert marked.count(MARK) == 1 and marked.endswith("Beagle." + MARK)
    assert "noise [1]." in marked and "noise [1]." + MARK not in marked


def test_grounding_accepts_a_paraphrase_with_embeddings_and_ignores_refusals():
    paraphrase = "Training switches back and forth between the generator network and the discriminator network."
    refusal = "The course notes do not cover the history of this method."
    _, lexical_only = mark_unsupported(paraphrase, [GAN], lexical_threshold=0.9)
    assert lexical_only == [paraphrase]
    _, with_minilm = mark_unsupported(paraphrase + " " + refusal, [GAN], embed_fn=minilm_embedder(),
                                      lexical_threshold=0.9)
    assert with_minilm == []
    _, unrelated = mark_unsupported("Paris is the capital city of France and hosts the Louvre museum.", [GAN, VAE],
                                    embed_fn=minilm_embedder())
    assert len(unrelated) == 1


def test_add_citations_names_the_supporting_passage_and_leaves_the_rest():
    from assistant.llm.grounding import add_citations

    sources = ["Sampling is not differentiable, so gradients cannot flow back into the encoder weights.",
               "The KL term pulls every posterior towards the standard normal prior."]
    answer = ("The KL term pulls each posterior towards the standard normal prior. "
              "Sampling is not differentiable so gradients cannot flow back [1]. "
              "Bananas are yellow fruit grown in warm places.")
    cited, added = add_citations(answer, sources)
    assert added == [2]
    assert cited == ("The KL term pulls each posterior towards the standard normal prior [2]. "
                     "Sampling is not differentiable so gradients cannot flow back [1]. "
                     "Bananas are yellow fruit grown in warm places.")
