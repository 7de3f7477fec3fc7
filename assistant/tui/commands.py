"""Commands only the chat can run: they act on what is on screen, not through a plugin.

They are declared as a plugin so that /help, the command hints and the
unknown-command suggestions list them like every other command; the app
handles them itself (`ChatApp._chat_command`).
"""

from __future__ import annotations

import re
from typing import Iterator

from assistant.events import Error, Event
from assistant.plugin import Command, Context, Plugin, Request

CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.S)


class ChatCommandsPlugin(Plugin):
    name = "chat"
    description = "copy, regenerate and search the conversation (chat only)"
    commands = (
        Command("copy", "copy the last reply, or message N of this conversation; 'code' copies only its "
                        "code blocks (code K: the K-th)", "[N] [code [K]]"),
        Command("retry", "regenerate the last reply from the same question and history; both versions are kept",
                "[--model BACKEND]"),
        Command("find", "search all saved conversations and jump to a message", "WORDS"),
        Command("debug", "show or hide the raw JSON of results under their summary"),
    )
    intents: dict[str, str] = {}

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        yield Error(f"/{request.command} only works in the chat")


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of a Markdown text, without their fences."""
    return [block.rstrip("\n") for block in CODE_BLOCK.findall(markdown)]


def parse_copy(arg: str) -> tuple[int | None, bool, int | None]:
    """`/copy [N] [code [K]]` -> (N, code only, K); ValueError with a one-line reason."""
    tokens = arg.split()
    number = block = None
    code = False
    for token in tokens:
        if token.lower() == "code":
            code = True
        elif token.isdigit() and int(token) > 0:
            if code:
                block = int(token)
            elif number is None:
                number = int(token)
            else:
                raise ValueError(f"unexpected {token!r}")
        else:
            raise ValueError(f"/copy takes a message number and 'code', not {token!r}")
    return number, code, block
