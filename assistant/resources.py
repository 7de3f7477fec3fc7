"""Data files shipped with the code, found the same way in a checkout and in an installed wheel.

Plugins keep their data inside their own package and read it with
`importlib.resources` (`package_file`). The course notes (`knowledge/`) and the
prompt templates (`prompts/`) stay top-level folders of the repository; the wheel
carries them as `assistant/_data/knowledge` and `assistant/_data/prompts`
(the package-dir mapping in pyproject.toml), and a checkout reads them where
they are. A missing folder is an error naming what to reinstall, never an
empty result.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from assistant.errors import UserError

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent  # the repository, when run from a checkout
_INSTALLED_DATA = "_data"  # assistant/_data/<name> inside an installed wheel


class MissingData(UserError):
    """A data folder or file that ships with the package is not there."""


def package_file(package: str, *parts: str) -> Path:
    """A file or folder inside an importable package, e.g. package_file("my_plugin", "cards.jsonl")."""
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        raise MissingData(f"package {package!r} is not installed") from None
    path = Path(str(root.joinpath(*parts)))
    if not path.exists():
        raise MissingData(f"{'/'.join(parts)} is missing from the package {package!r} ({path})",
                          "reinstall the package")
    return path


def _shipped_dir(name: str) -> Path:
    installed = Path(str(resources.files("assistant"))) / _INSTALLED_DATA / name
    if installed.is_dir():
        return installed
    checkout = _CHECKOUT_ROOT / name
    if checkout.is_dir() and (_CHECKOUT_ROOT / "pyproject.toml").is_file():
        return checkout
    raise MissingData(f"the built-in {name}/ folder is missing (looked in {installed} and {checkout})",
                      "reinstall course-assistant")


def knowledge_dir() -> Path:
    """The built-in course notes (Markdown) and their QA sets (qa/)."""
    return _shipped_dir("knowledge")


def prompts_dir() -> Path:
    """The built-in prompt templates, one TOML file per technique."""
    return _shipped_dir("prompts")


def display_path(path: str | Path) -> str:
    """How a shipped file is named to users: `knowledge/vae.md`, the same installed or not; others in full."""
    path = Path(path)
    for name in ("knowledge", "prompts"):
        try:
            return f"{name}/{path.resolve().relative_to(_shipped_dir(name).resolve()).as_posix()}"
        except (ValueError, MissingData):
            continue
    try:
        return path.resolve().relative_to(_CHECKOUT_ROOT).as_posix()
    except ValueError:
        return str(path)


def load_intent_examples(package: str, resource: str = "intents.jsonl") -> dict[str, list[str]]:
    """{intent: [utterances]} from a JSON Lines file of {"text", "intent"} rows inside `package`."""
    from assistant.jsonl import parse_jsonl

    path = package_file(package, resource)
    examples: dict[str, list[str]] = {}
    for number, row in parse_jsonl(path.read_text(encoding="utf-8"), path, MissingData):
        text, intent = row.get("text"), row.get("intent")
        if not isinstance(text, str) or not isinstance(intent, str) or not text.strip() or not intent.strip():
            raise MissingData(f"{path}:{number}: each row needs a non-empty 'text' and 'intent'")
        examples.setdefault(intent.strip(), []).append(text.strip())
    return examples

