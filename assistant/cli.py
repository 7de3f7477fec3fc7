"""`assistant` command line. Alone it opens the chat; subcommands come from plugins.

Errors print one line on stderr and exit 1 (2 for usage errors); a traceback
only with --debug. Keep this module light: no heavy imports at module level.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from assistant.version import __version__


def _quiet_environment() -> None:
    # Heavy libraries read these at import time; set them before any import.
    # OpenMP threads spin only briefly before sleeping: fast decoding on an idle laptop
    # (OMP_WAIT_POLICY=PASSIVE decodes ~35% slower), yet they yield the cores on a busy one.
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class OptionsAnywhereParser(argparse.ArgumentParser):
    """A subcommand parser that takes its options before or after the text.

    `prompt json --fields a,b "text"` and `prompt json "text" --fields a,b` mean
    the same: argparse's plain parsing stops filling a `nargs="*"` positional
    at the first option, leaving the text after it "unrecognized". Parsers
    with their own subcommands (`kb list`) parse as usual, their children
    intermixed in turn.
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        nested = any(isinstance(a, argparse._SubParsersAction) or a.nargs in (argparse.REMAINDER, argparse.PARSER)
                     for a in self._actions)
        if self._intermixing or nested:
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # parse_known_intermixed_args calls back into this method
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def build_parser(registry) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistant",
        description="Offline study assistant for the Generative-AI course. Run without a command to open the chat.",
    )
    parser.add_argument("--home", metavar="DIR", help="state directory (default: $ASSISTANT_HOME or the user data dir)")
    parser.add_argument("--model", metavar="BACKEND", help="LLM backend for this run only, e.g. local, smollm2, extractive (`assistant doctor` lists them)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OptionsAnywhereParser)
    for plugin in registry.plugins.values():
        try:
            plugin.add_cli(subparsers)
        except Exception as exc:  # noqa: BLE001 - a faulty plugin loses its commands, nothing more
            print(f"warning: plugin {plugin.name} could not add its commands: {exc}", file=sys.stderr)
    return parser


def make_context(args: argparse.Namespace, registry):
    from assistant.config import Config, resolve_home
    from assistant.plugin import Context

    config = Config(resolve_home(args.home))
    if getattr(args, "model", None):
        config.override("llm.backend", args.model)  # this run only, never saved
    context = Context(config, registry)
    for line in config.problems():
        print(f"warning: {line}", file=sys.stderr)
    context.state["debug"] = bool(args.debug)
    return context


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_environment()
    from assistant.registry import Registry

    registry = Registry.load()
    for failure in registry.failures:
        print(f"warning: plugin {failure.name} failed to load ({failure.error}); skipped", file=sys.stderr)
    parser = build_parser(registry)
    args = parser.parse_args(argv)
    try:
        context = make_context(args, registry)
        if args.command is None:
            from assistant.tui import run_tui

            run_tui(context)
            return 0
        from assistant.cliutil import CliRenderer

        renderer = CliRenderer(as_json=getattr(args, "json", False))
        return renderer.consume(args.handler(args, context))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line unless --debug (UserError: message and hint)
        if args.debug:
            raise
        from assistant.errors import one_line
        from assistant.sanitize import sanitize

        print(f"error: {sanitize(one_line(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
