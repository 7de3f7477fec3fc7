"""Frozen MiniLM sentence embeddings and the two cheap classifiers built on them.

`CentroidClassifier` (one mean vector per class, cosine similarity) is the
router's fallback while the LoRA model trains, and a baseline in the bench;
`fit_logistic` is the other frozen-embedding baseline.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_ENCODER: "Encoder | None" = None
_ENCODER_LOCK = threading.Lock()


class Encoder:
    """all-MiniLM-L6-v2 with mean pooling and L2 normalisation (as sentence-transformers does)."""

    def __init__(self) -> None:
        from transformers import AutoModel

        from .lora import base_model_path, load_tokenizer, quiet_transformers

        quiet_transformers()
        self.tokenizer = load_tokenizer()
        from assistant import MODEL_LOAD_LOCK

        with MODEL_LOAD_LOCK:
            self.model = AutoModel.from_pretrained(str(base_model_path())).eval()
        self._lock = threading.Lock()  # one forward pass at a time per model

    def encode(self, texts: list[str], batch_size: int = 64):
        import numpy as np
        import torch

        out = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                     max_length=128, return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype="float32")


def shared_encoder() -> Encoder:
    """One encoder per process: loading MiniLM costs about a second."""
    global _ENCODER
    with _ENCODER_LOCK:
        if _ENCODER is None:
            _ENCODER = Encoder()
        return _ENCODER


@dataclass
class CentroidClassifier:
    classes: list[str]
    centroids: Any  # (n_classes, dim), unit length
    temperature: float = 0.05  # softmax over cosine similarities / temperature

    @classmethod
    def fit(cls, vectors, labels: list[str]) -> "CentroidClassifier":
        import numpy as np

        classes = sorted(set(labels))
        labels_arr = np.array(labels)
        cents = np.stack([vectors[labels_arr == c].mean(axis=0) for c in classes])
        cents /= np.linalg.norm(cents, axis=1, keepdims=True)
        return cls(classes, cents.astype("float32"))

    def predict_proba(self, vectors):
        import numpy as np

        sims = vectors @ self.centroids.T / self.temperature
        sims -= sims.max(axis=1, keepdims=True)
        exp = np.exp(sims)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, vectors) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(vectors).argmax(axis=1)]


def fit_logistic(vectors, labels: list[str]):
    """Logistic regression on frozen embeddings (sklearn); `.classes_` holds the labels."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=10.0, max_iter=2000).fit(vectors, labels)
