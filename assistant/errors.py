"""The one shape of a user-facing error: `UserError(message, hint)`.

Raise it (or a subclass) for anything the user can fix: a bad flag, a missing
file, an unknown name. Every front end shows it as one line, `message (hint)`:
the CLI on stderr with exit code 1, the chat as an error line. Any other
exception is a bug and is shown with the plugin's name in front of it.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; `hint` says how (may be empty)."""

    def __init__(self, message: str = "", hint: str = ""):
        super().__init__(message)
        self.hint = hint

    def line(self) -> str:
        """`message (hint)` on one line, as every front end prints it."""
        return one_line(self)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """`first line (hint)` for a UserError, the first line for anything else."""
    hint = getattr(exc, "hint", "") if isinstance(exc, UserError) else ""
    return f"{first_line(exc)} ({hint})" if hint else first_line(exc)
