"""Helpers plugins use to add `assistant SUBCOMMAND` parsers and print events."""

from __future__ import annotations

import argparse
import json
import sys
import weakref
from typing import Any, Iterable, TextIO

from assistant.events import Data, Error, Event, Image, Notice, Progress, Sources, Text, event_to_dict
from assistant.sanitize import sanitize


def json_flag() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print JSON on stdout")
    return parent


def add_command(subparsers: Any, name: str, help: str, handler: Any, description: str | None = None,
                json: bool = True) -> argparse.ArgumentParser:
    """Add a subcommand whose `handler(args, context)` yields events."""
    parser = subparsers.add_parser(name, help=help, description=description or help,
                                   parents=[json_flag()] if json else [])
    parser.set_defaults(handler=handler)
    return parser


# subparsers action -> {group name: its own subparsers action}; argparse offers no public lookup.
_GROUPS: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()

EVAL_HELP = "evaluate a component on a data set: assistant eval WHAT ... (each plugin adds its own)"


def add_command_group(subparsers: Any, name: str, help: str) -> Any:
    """The sub-subcommands of `assistant NAME`, created by the first plugin that asks, shared by all."""
    groups = _GROUPS.setdefault(subparsers, {})
    if name not in groups:
        parser = subparsers.add_parser(name, help=help, description=help)
        groups[name] = parser.add_subparsers(dest=f"{name}_command", metavar="WHAT", required=True)
    return groups[name]


def add_eval_command(subparsers: Any, name: str, help: str, handler: Any,
                     description: str | None = None) -> argparse.ArgumentParser:
    """`assistant eval NAME ...`: the one family of evaluation commands; each plugin adds its own."""
    return add_command(add_command_group(subparsers, "eval", EVAL_HELP), name, help, handler, description)


def to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


class CliRenderer:
    """Prints an event stream for a terminal or, with `as_json`, for scripts.

    JSON mode: each Data event is one JSON line on stdout; if a stream carries
    no Data, a single object {"text", "sources", "images", "notices"} is printed.
    Errors always go to stderr as one line; the exit code becomes 1.
    Text for people passes through `sanitize` (no escape sequences reach the
    terminal); JSON carries the raw text.
    """

    def __init__(self, as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None):
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.exit_code = 0
        self._progress_open = False
        self._line_open = False  # streamed reply text not yet ended by a newline

    def _end_line(self) -> None:
        """End the reply's current line so a notice on stderr starts on its own line."""
        if self._line_open:
            self.out.write("\n")
            self.out.flush()
            self._line_open = False

    def _end_progress(self) -> None:
        if self._progress_open:
            self.err.write("\n")
            self._progress_open = False

    def consume(self, events: Iterable[Event]) -> int:
        text: list[str] = []
        sources: list[dict] = []
        images: list[dict] = []
        notices: list[str] = []
        saw_data = False
        for event in events:
            if isinstance(event, Error):
                self._end_progress()
                self._end_line()
                self.err.write(f"error: {sanitize(event.line())}\n")
                self.exit_code = 1
            elif isinstance(event, Notice):
                notices.append(event.message)
                self._end_progress()
                self._end_line()
                self.err.write(f"{event.level}: {sanitize(event.message)}\n")
            elif isinstance(event, Progress):
                self._progress(event)
            elif isinstance(event, Data):
                saw_data = True
                if self.as_json:
                    self.out.write(json.dumps(event.obj, default=to_jsonable, ensure_ascii=False) + "\n")
                else:
                    self._end_progress()
                    self._end_line()
                    from assistant.present import describe_data

                    shown = describe_data(event.obj)  # for people; --json has the raw payload
                    if shown.strip():
                        self.out.write(sanitize(shown) + "\n")
            elif isinstance(event, Text):
                text.append(event.delta)
                if not self.as_json:
                    self._end_progress()
                    self.out.write(sanitize(event.delta))
                    self.out.flush()
                    if event.delta:
                        self._line_open = not event.delta.endswith("\n")
            elif isinstance(event, Sources):
                sources.extend(event_to_dict(event)["sources"])
                if not self.as_json and event.sources:
                    self._end_progress()
                    from assistant.present import relevance

                    self.out.write("\n\nSources:\n")
                    ranked = relevance([src.score for src in event.sources])
                    for i, (src, (words, bar)) in enumerate(zip(event.sources, ranked), 1):
                        self.out.write(f"  [{i}] {sanitize(src.label())}  {bar} {words}\n")
                    self._line_open = False
            elif isinstance(event, Image):
                images.append({"path": event.path, "caption": event.caption})
                if not self.as_json:
                    self._end_progress()
                    self.out.write(sanitize(f"\nimage: {event.path}" + (f"  ({event.caption})" if event.caption else "")) + "\n")
                    self._line_open = False
        self._end_progress()
        if self.as_json and not saw_data and (text or sources or images):
            self.out.write(json.dumps({"text": "".join(text), "sources": sources, "images": images, "notices": notices},
                                      ensure_ascii=False) + "\n")
        elif not self.as_json:
            self._end_line()
        self.out.flush()
        return self.exit_code

    def _progress(self, event: Progress) -> None:
        if self.as_json or not self.err.isatty():
            return
        if event.total:
            frac = max(0.0, min(1.0, event.done / event.total))
            bar = "█" * int(frac * 30) + "·" * (30 - int(frac * 30))
            line = f"\r{sanitize(event.label[:40]):<40} {bar} {event.done:g}/{event.total:g}"
        else:
            line = f"\r{sanitize(event.label[:60]):<60} {event.done:g}"
        self.err.write(line)
        self.err.flush()
        self._progress_open = True
