"""The `extractive` backend: no model; quotes the best fenced passages."""

from __future__ import annotations

import re
from typing import Any, Iterator, List, Optional

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

FENCE = re.compile(r"<source (\d+)[^>]*>\n(.*?)\n</source>", re.S)


class ExtractiveChatModel(BaseChatModel):
    max_sentences: int = 3

    @property
    def _llm_type(self) -> str:
        return "extractive"

    def _answer(self, messages: List[BaseMessage]) -> str:
        prompt = "\n".join(str(m.content) for m in messages)
        passages = FENCE.findall(prompt)
        if not passages:
            return "No model is loaded and there are no retrieved passages to quote."
        parts = []
        for number, body in passages[:2]:
            sentences = re.split(r"(?<=[.!?])\s+", " ".join(body.split()))
            parts.append(" ".join(sentences[: self.max_sentences]) + f" [{number}]")
        return "\n\n".join(parts)

    def _generate(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                  run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._answer(messages)))])

    def _stream(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for word in re.split(r"(\s+)", self._answer(messages)):
            if word:
                yield ChatGenerationChunk(message=AIMessageChunk(content=word))
