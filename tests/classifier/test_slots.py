"""Slot rules: counts, digit labels, model names, epochs, paths, text to classify."""

import pytest

from course_assistant_plugins.classifier.slots import extract


@pytest.mark.parametrize("intent, text, expected", [
    ("image_sample", "make me 9 gan images", {"model": "gan", "n": 9}),
    ("image_sample", "draw 16 sevens", {"n": 16, "label": 7}),
    ("image_sample", "can you draw a 3", {"label": 3}),
    ("image_sample", "draw five zeros", {"n": 5, "label": 0}),
    ("image_sample", "generate 2 images of the digit 4 with the vae", {"model": "vae", "n": 2, "label": 4}),
    ("image_sample", "sample 3 7s from the diffusion model", {"model": "diffusion", "n": 3, "label": 7}),
    ("image_sample", "use the GAN to draw a dozen samples", {"model": "gan", "n": 12}),
    ("image_sample", "draw sixes, like 10 of them", {"n": 10, "label": 6}),
    ("image_sample", "show some generated samples", {}),
    ("image_train", "train a vae for 5 epochs", {"model": "vae", "epochs": 5}),
    ("image_train", "kick off a 15 epoch gan run", {"model": "gan", "epochs": 15}),
    ("image_train", "fit the denoising diffusion model for one epoch", {"model": "diffusion", "epochs": 1}),
    ("image_train", "train the generator and discriminator", {"model": "gan"}),
    ("ingest", "ingest ~/notes/lecture3.md", {"path": "~/notes/lecture3.md"}),
    ("ingest", "add this pdf to the knowledge base: papers/ddpm.pdf", {"path": "papers/ddpm.pdf"}),
    ("ingest", "index \"/data/my notes\" please", {"path": "/data/my notes"}),
    ("ingest", "index my notes folder", {}),
    ("classify", "what's the sentiment of 'this course is a waste of time'", {"text": "this course is a waste of time"}),
    ("classify", "classify: the weather is cloudy today", {"text": "the weather is cloudy today"}),
    ("ask", "how does a GAN generator make 9 images?", {}),
])
def test_slots(intent, text, expected):
    assert extract(intent, text) == expected


def test_counts_are_bounded():
    assert "n" not in extract("image_sample", "make 100000 images")
    assert "epochs" not in extract("image_train", "train for 0 epochs")
