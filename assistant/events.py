"""The one stream of events every plugin action yields and every front end consumes.

Front ends (TUI, CLI, tests, benchmarks) never call into plugin internals; they
only read these events. Keep them plain dataclasses so they serialise to JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Union


@dataclass(frozen=True)
class Source:
    """Where a passage came from, precise enough for a student to check it."""

    source: str  # file path or URL
    heading: str = ""  # heading path, e.g. "VAEs > The loss"
    start_line: int = 0  # 1-based, inclusive, in the source file
    end_line: int = 0
    score: float = 0.0
    text: str = ""

    def label(self) -> str:
        """`file › heading (lines a-b)` as shown to users."""
        where = self.source
        if self.heading:
            where += f" › {self.heading}"
        if self.start_line:
            where += f" (lines {self.start_line}-{self.end_line or self.start_line})"
        return where


@dataclass(frozen=True)
class Text:
    delta: str


@dataclass(frozen=True)
class Sources:
    sources: list[Source] = field(default_factory=list)


@dataclass(frozen=True)
class Image:
    path: str
    caption: str = ""


@dataclass(frozen=True)
class Progress:
    label: str
    done: float
    total: float | None = None  # None: unknown length


@dataclass(frozen=True)
class Data:
    obj: Any


@dataclass(frozen=True)
class Notice:
    level: str  # "info" | "warning"
    message: str


@dataclass(frozen=True)
class Error:
    message: str
    hint: str = ""

    def line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


@dataclass(frozen=True)
class Control:
    """An instruction to the front end, not content: what the user asked the app itself to do.

    `action` is one of CONTROL_ACTIONS; `args` carries its details, e.g.
    Control("session", {"id": 3}) or Control("kb", {"name": "mine"}). Front ends
    act on the ones they understand and ignore the rest; the CLI shows none.
    """

    action: str
    args: dict[str, Any] = field(default_factory=dict)


# quit: save and leave; clear: start a new, empty conversation; session: show session args["id"];
# kb: the active knowledge base is now args["name"]; model: the LLM backend is now args["backend"];
# status: something in the status line changed (e.g. a file was exported).
CONTROL_ACTIONS = ("quit", "clear", "session", "kb", "model", "status")

Event = Union[Text, Sources, Image, Progress, Data, Notice, Error, Control]
EVENT_TYPES = (Text, Sources, Image, Progress, Data, Notice, Error, Control)


def event_to_dict(event: Event) -> dict[str, Any]:
    """JSON-ready form: {"type": "text", ...fields}."""
    payload = asdict(event)
    payload["type"] = type(event).__name__.lower()
    return payload


def collect_text(events: Iterable[Event]) -> str:
    """Concatenate the Text deltas of a stream (handy in tests and the CLI)."""
    return "".join(e.delta for e in events if isinstance(e, Text))


class Collected:
    """A fully consumed event stream, split by kind, and the generator's result.

    The one convention for results: a step that computes something yields its
    events and *returns* its result (`result = yield from step(...)` inside a
    plugin; `Collected(step(...)).result` outside). What a command shows or
    prints for scripts is its final `Data` event.
    """

    def __init__(self, events: Iterable[Event]):
        self.events: list[Event] = []
        self.result: Any = None
        iterator = iter(events)
        while True:
            try:
                self.events.append(next(iterator))
            except StopIteration as stop:
                self.result = stop.value
                break

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def text(self) -> str:
        return collect_text(self.events)

    @property
    def sources(self) -> list[Source]:
        return [s for e in self.of(Sources) for s in e.sources]

    @property
    def data(self) -> list[Any]:
        return [e.obj for e in self.of(Data)]

    @property
    def errors(self) -> list[Error]:
        return self.of(Error)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)
