"""The `extractive` backend: no model; answers by quoting the retrieved passages.

It reads the passages fenced in the prompt as `<source N ...>\\ntext\\n</source>`
and the question (the text after "Question:" in the last user message, else
that whole message), picks the passages whose best sentence shares the most
content words with the question (the retriever's order breaking ties), and
quotes from them with their numbers `[N]`.
With no passage relevant to the question it says the notes do not cover it.
It is also the fallback whenever the configured model cannot answer.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, List, Optional

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from assistant.llm.grounding import content_words, split_sentences

FENCE = re.compile(r"<source (\d+)[^>]*>\n(.*?)\n</source[^>]*>", re.S)  # closing tag may carry the fence
NOT_COVERED = "The retrieved course notes do not cover this question."
NO_PASSAGES = "No language model is available and there are no retrieved passages to quote."


def _question(messages: List[BaseMessage]) -> str:
    users = [str(m.content) for m in messages if m.type == "human"]
    last = users[-1] if users else ""
    last = FENCE.sub(" ", last)
    match = re.search(r"Question:\s*(.+)", last, re.S)
    return (match.group(1) if match else last).strip()


class ExtractiveChatModel(BaseChatModel):
    max_sentences: int = 3
    max_passages: int = 2

    @property
    def _llm_type(self) -> str:
        return "extractive"

    def answer(self, messages: List[BaseMessage]) -> str:
        prompt = "\n".join(str(m.content) for m in messages)
        passages = FENCE.findall(prompt)
        if not passages:
            return NO_PASSAGES
        wanted = content_words(_question(messages))
        scored = []
        for order, (number, body) in enumerate(passages):
            sentences = split_sentences(" ".join(body.split()))
            overlaps = [len(wanted & content_words(s)) for s in sentences]
            # Its best sentence decides, then the retriever's order: a long passage sharing a word
            # in every sentence is no better an answer than the short one that states it.
            scored.append((max(overlaps, default=0), -order, number, sentences, overlaps))
        if wanted and max(s[0] for s in scored) == 0:
            return NOT_COVERED
        parts = []
        for best, _, number, sentences, overlaps in sorted(scored, reverse=True)[: self.max_passages]:
            if wanted and best == 0:
                continue
            # The best-matching sentence and the ones after it read as a passage.
            start = max(range(len(sentences)), key=lambda i: (overlaps[i], -i)) if sentences else 0
            quote = " ".join(sentences[start: start + self.max_sentences])
            parts.append(f"{quote} [{number}]")
        return "\n\n".join(parts)

    def _generate(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                  run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.answer(messages)))])

    def _stream(self, messages: List[BaseMessage], stop: Optional[List[str]] = None,
                run_manager: Optional[CallbackManagerForLLMRun] = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for word in re.split(r"(\s+)", self.answer(messages)):
            if word:
                yield ChatGenerationChunk(message=AIMessageChunk(content=word))
