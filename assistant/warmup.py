"""Load what the first message will need while the user is still typing."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def warm_up_models(context: Any) -> None:
    """Build the intent router and start loading the LLM; errors surface later, on use."""
    try:
        if context.has_service("intent_classifier"):
            # One prediction loads the embeddings and the router model (or starts training it).
            context.service("intent_classifier").predict("hello")
    except Exception as exc:  # noqa: BLE001 - the router reports its own problems when used
        log.debug("intent router warm-up failed: %s", exc)
    try:
        from assistant.llm.backends import backends

        backend = backends().get(context.config.get("llm.backend"))
        if backend is not None and backend.preload:
            from assistant.llm import preload

            preload(context)
    except Exception as exc:  # noqa: BLE001 - get_llm falls back with a notice when used
        log.debug("LLM preload failed: %s", exc)
