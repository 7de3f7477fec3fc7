"""Course assistant: an offline, plugin-based study assistant for a Generative-AI course.

This module is the public API, all a plugin needs (docs/plugins.md is the
reference). Everything else under `assistant.` is private and may change.
Names whose module would import something heavy at import time are resolved
lazily (on first attribute access), so `import assistant` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assistant.atomic import OUTPUT_MODE, atomic_path, atomic_write_text
from assistant.cancel import Cancelled, CancelToken
from assistant.cliutil import add_command, add_command_group, add_eval_command, json_flag
from assistant.config import Config, Setting, resolve_home
from assistant.errors import UserError
from assistant.events import (
    Collected,
    Control,
    Data,
    Error,
    Event,
    Image,
    Notice,
    Progress,
    Source,
    Sources,
    Text,
    collect_text,
)
from assistant.jsonl import parse_jsonl, read_jsonl, read_text
from assistant.llm.backends import LLMBackend
from assistant.modelload import MODEL_LOAD_LOCK
from assistant.options import Bounded, parse_flags
from assistant.plugin import CliHandler, Command, Context, Plugin, Request
from assistant.registry import installed_intent_examples
from assistant.resources import MissingData, display_path, knowledge_dir, load_intent_examples, package_file, prompts_dir
from assistant.templates import PromptTemplate, TemplateError, get_template, load_templates
from assistant.version import __version__

# name -> module that defines it; imported on first access (see __getattr__).
_LAZY: dict[str, tuple[str, str]] = {
    # the language model
    "stream_chat": ("assistant.llm", "stream_chat"),
    "stream_events": ("assistant.llm", "stream_events"),
    "complete": ("assistant.llm", "complete"),
    "sample_replies": ("assistant.llm", "sample_replies"),
    "generate_json": ("assistant.llm", "generate_json"),
    "constrains_json": ("assistant.llm", "constrains_json"),
    "render_prompt": ("assistant.llm", "render_prompt"),
    "take_notice": ("assistant.llm", "take_notice"),
    "count_tokens": ("assistant.llm", "count_tokens"),
    "context_window": ("assistant.llm", "context_window"),
    "fit_sources": ("assistant.llm", "fit_sources"),
    "mark_unsupported": ("assistant.llm.grounding", "mark_unsupported"),
    "check_support": ("assistant.llm.grounding", "check_support"),
    "add_citations": ("assistant.llm.grounding", "add_citations"),
    # sentence embeddings (all-MiniLM-L6-v2)
    "get_embeddings": ("assistant.embeddings", "get_embeddings"),
    "embed_texts": ("assistant.embeddings", "encode"),
    "EmbeddingsUnavailable": ("assistant.embeddings", "EmbeddingsUnavailable"),
    "EMBEDDING_BATCH_SIZE": ("assistant.embeddings", "BATCH_SIZE"),
    # used by few plugins: not worth their import time at start-up
    "SessionStore": ("assistant.sessions", "SessionStore"),
    "FileLock": ("assistant.filelock", "FileLock"),
    "LockTimeout": ("assistant.filelock", "LockTimeout"),
    "resolve_followup": ("assistant.followup", "resolve"),
    "neutralise": ("assistant.fencing", "neutralise"),
    "new_tag": ("assistant.fencing", "new_tag"),
    "obeyed_injection": ("assistant.fencing", "obeyed_injection"),
    "injection_sentences": ("assistant.fencing", "injection_sentences"),
    "injection_targets": ("assistant.fencing", "injection_targets"),
    "FENCE_MARKER": ("assistant.fencing", "MARKER"),
    "FENCE_TAG": ("assistant.fencing", "TAG"),
    "CHAT_TOKEN": ("assistant.fencing", "CHAT_TOKEN"),
}

if TYPE_CHECKING:  # the type checker sees the lazy names as ordinary imports
    from assistant.embeddings import BATCH_SIZE as EMBEDDING_BATCH_SIZE
    from assistant.embeddings import EmbeddingsUnavailable, get_embeddings
    from assistant.embeddings import encode as embed_texts
    from assistant.llm import (
        complete,
        constrains_json,
        context_window,
        count_tokens,
        fit_sources,
        generate_json,
        render_prompt,
        sample_replies,
        stream_chat,
        stream_events,
        take_notice,
    )
    from assistant.fencing import CHAT_TOKEN
    from assistant.fencing import MARKER as FENCE_MARKER
    from assistant.fencing import TAG as FENCE_TAG
    from assistant.fencing import injection_sentences, injection_targets, neutralise, new_tag, obeyed_injection
    from assistant.filelock import FileLock, LockTimeout
    from assistant.followup import resolve as resolve_followup
    from assistant.llm.grounding import add_citations, check_support, mark_unsupported
    from assistant.sessions import SessionStore


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


__all__ = [
    "__version__",
    # plugin contract
    "Plugin", "Command", "Request", "Context", "CliHandler",
    # events
    "Event", "Text", "Sources", "Source", "Image", "Progress", "Data", "Notice", "Error", "Control",
    "Collected", "collect_text",
    # errors, cancellation
    "UserError", "Cancelled", "CancelToken",
    # options and command line
    "parse_flags", "Bounded", "add_command", "add_command_group", "add_eval_command", "json_flag",
    # config, state directory, sessions
    "Setting", "Config", "resolve_home", "SessionStore",
    # untrusted text in prompts
    "neutralise", "new_tag", "obeyed_injection", "injection_sentences", "injection_targets",
    "FENCE_MARKER", "FENCE_TAG", "CHAT_TOKEN",
    # follow-up questions
    "resolve_followup",
    # templates
    "PromptTemplate", "TemplateError", "get_template", "load_templates",
    # files shipped with a package
    "package_file", "knowledge_dir", "prompts_dir", "display_path", "load_intent_examples", "MissingData",
    "installed_intent_examples",
    # files
    "read_text", "read_jsonl", "parse_jsonl", "atomic_write_text", "atomic_path", "OUTPUT_MODE", "FileLock",
    "LockTimeout",
    # models
    "MODEL_LOAD_LOCK",
    # the language model ("LLMBackend": base class of a backend, entry-point group assistant.llm_backends)
    "LLMBackend",
    "stream_chat", "stream_events", "complete", "sample_replies", "generate_json", "constrains_json",
    "render_prompt", "take_notice", "count_tokens", "context_window", "fit_sources", "mark_unsupported", "check_support",
    "add_citations",
    # lazy: sentence embeddings
    "get_embeddings", "embed_texts", "EmbeddingsUnavailable", "EMBEDDING_BATCH_SIZE",
]
