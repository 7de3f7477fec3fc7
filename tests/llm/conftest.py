"""Fixtures for the LLM layer: a model cache shared across test runs, and configured contexts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

# Converted models are keyed by the GGUF's sha256, so a cache kept between runs
# can never serve the wrong weights; a clean machine builds it on first use.
MODEL_CACHE = Path(tempfile.gettempdir()) / "course-assistant-test-models"


@pytest.fixture(scope="session")
def model_cache() -> Path:
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    return MODEL_CACHE


@pytest.fixture
def configure(context, model_cache):
    """configure(backend, **llm_settings) -> the context with those llm.* settings (not saved)."""

    def _configure(backend: str = "smollm2", **settings):
        values = {"backend": backend, "cache_dir": str(model_cache), "temperature": 0.0, "max_tokens": 24, **settings}
        for key, value in values.items():
            context.config.set(f"llm.{key}", value, save=False)
        context.drop_service("llm")
        return context

    return _configure
