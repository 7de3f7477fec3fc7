"""Flashcards over the course notes: the example plugin of docs/plugins.md.

It uses nothing but the public API (`from assistant import ...`): a slash
command with options, an intent with example utterances, a config key, a
doctor check and a CLI subcommand. Importing it stays light: the retriever
(embeddings, vector store) loads only when a quiz runs.
"""

from __future__ import annotations

from typing import Any, Iterator

from assistant import (
    Command,
    Context,
    Data,
    Event,
    Plugin,
    Progress,
    Request,
    Setting,
    Sources,
    Text,
    UserError,
    add_command,
    load_intent_examples,
    parse_flags,
)

MAX_CARDS = 10


class FlashcardsPlugin(Plugin):
    name = "flashcards"
    description = "fill-in-the-blank flashcards from the course notes"
    commands = (Command("quiz", "flashcards about TOPIC from the notes", "TOPIC [--cards N] [--answers]"),)
    intents = {"quiz": "quiz"}  # free text such as "quiz me on GANs" runs /quiz
    settings = {"flashcards.cards": Setting(3, "cards per quiz")}

    def intent_examples(self) -> dict[str, list[str]]:
        return load_intent_examples(__name__)  # flashcards_plugin/intents.jsonl

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        topic, options = parse_flags(request.text, {"cards": int, "answers": bool})
        cards = yield from make_cards(context, topic, options.get("cards"))
        for i, card in enumerate(cards, 1):
            yield Text(f"**Card {i}.** {card.prompt} [{i}]\n\n")
        if options.get("answers"):
            yield Text("Answers: " + ", ".join(f"{i}. {c.answer}" for i, c in enumerate(cards, 1)) + "\n")
        else:
            yield Text("Type `/quiz TOPIC --answers` to see the answers.\n")
        yield Sources([c.source for c in cards])

    def add_cli(self, subparsers: Any) -> None:
        parser = add_command(subparsers, "flashcards", "print flashcards about TOPIC from the notes", _cli_flashcards)
        parser.add_argument("topic", nargs="+", help="what to be quizzed on")
        parser.add_argument("--cards", type=int, help="how many cards (default: flashcards.cards)")

    def doctor(self, context: Context) -> list[dict[str, Any]]:
        cards = context.config.get("flashcards.cards")
        has_notes = context.has_service("retriever")
        return [{"name": "flashcards: a retriever over the notes", "ok": has_notes,
                 "detail": "from the rag plugin" if has_notes else "install a plugin that offers the retriever"},
                {"name": "flashcards: cards per quiz", "ok": 1 <= cards <= MAX_CARDS,
                 "detail": f"flashcards.cards = {cards} (1-{MAX_CARDS})"}]


def make_cards(context: Context, topic: str, count: int | None):
    """Yields progress events; returns the cards (the result of the generator)."""
    from .cards import card_from

    topic = topic.strip()
    if not topic:
        raise UserError("a quiz needs a topic", "try: /quiz the VAE loss")
    count = count if count is not None else context.config.get("flashcards.cards")
    if not 1 <= count <= MAX_CARDS:
        raise UserError(f"--cards must be between 1 and {MAX_CARDS}, not {count}")
    yield Progress("finding passages", 0, 1)
    retriever = context.retriever
    yield from retriever.prepare(cancel=context.cancel)  # indexes the notes on first use
    context.cancel.raise_if_cancelled()
    found = retriever.search(topic, k=3 * count)
    yield Progress("finding passages", 1, 1)
    if not found.covered:
        raise UserError(f"the notes do not cover {topic!r}", "try a topic from the course, e.g. diffusion models")
    cards = [card for hit in found.hits if (card := card_from(hit.text, hit.to_source(), topic))][:count]
    if not cards:
        raise UserError(f"no sentence about {topic!r} makes a good card", "try a broader topic")
    return cards


def _cli_flashcards(args: Any, context: Context) -> Iterator[Event]:
    cards = yield from make_cards(context, " ".join(args.topic), args.cards)
    if args.json:
        yield Data([card.as_dict() for card in cards])
        return
    for i, card in enumerate(cards, 1):
        yield Text(f"{i}. {card.prompt}\n   answer: {card.answer}   ({card.source.label()})\n")
