"""LoRA-tuned MiniLM classifiers: the intent router and user text classification.

Light on import: torch, transformers and peft load inside the functions that
need them (see service.py, lora.py, store.py).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Iterator

from assistant.cliutil import add_command
from assistant.options import Bounded
from assistant.events import Data, Error, Event, Notice, Text
from assistant import Setting
from assistant.plugin import Command, Context, Plugin, Request

LIMITS = {"epochs": Bounded(int, 1, 200), "rank": Bounded(int, 1, 128)}  # allowed ranges, CLI and slash alike
TRAIN_FLAGS: dict[str, Any] = {"data": str, "text_col": str, "label_col": str, "name": str,
                               "epochs": LIMITS["epochs"], "rank": LIMITS["rank"], "merge": bool}
DEFAULT_MODEL = "sentiment"


def _user_errors():
    from .data import DataError
    from .store import ClassifierError

    return DataError, ClassifierError


def _as_error(exc: Exception) -> Error:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Error(first, getattr(exc, "hint", ""))


def classify_texts(context: Context, texts: list[str], model: str | None = None) -> Iterator[Event]:
    """Classify texts with a stored classifier (built-in ones train on first use)."""
    from .service import ensure_model, load_classifier

    name = model or context.config.get("classifier.default_model")
    texts = [t.strip() for t in texts]
    if not any(texts):
        yield Error("nothing to classify", "give a text: /classify TEXT [--model NAME]")
        return
    for event in ensure_model(context.home, name, context.cancel):
        if not isinstance(event, Data):  # the training summary would read as a classification
            yield event
    classifier = load_classifier(context.home, name)
    for pred in classifier.predict(texts):
        yield Data({"text": pred.text, "label": pred.label, "confidence": round(pred.confidence, 4),
                    "model": name, "scores": pred.scores})


def train_classifier(context: Context, options: dict[str, Any]) -> Iterator[Event]:
    """`classify train`: check the data before anything heavy, then train and report."""
    from .data import load_labelled
    from .service import train_and_save
    from .store import ClassifierError, check_name, file_sha256, merge_existing, model_dir

    name = check_name(options.get("name") or "custom")
    from .service import BUILTIN_EPOCHS

    if name in BUILTIN_EPOCHS and options.get("data"):  # the built-in classifiers: intents, sentiment
        # Training "sentiment" on the user's file would silently replace the built-in model.
        raise ClassifierError(f"{name!r} is a built-in classifier; pick another --name for yours",
                              f"e.g. --name my-{name}")
    data_path = options.get("data")
    if not data_path:
        if options.get("merge"):
            merged = merge_existing(model_dir(context.home, name))
            yield Notice("info", f"merged the LoRA adapter of {name!r} into a standalone model: {merged}")
            yield Data({"action": "classifier_merged", "name": name, "path": str(merged)})
            return
        raise ClassifierError("classify train needs --data FILE (.csv, .tsv, .jsonl or .json)",
                              "e.g. --data reviews.csv --text-col text --label-col label --name reviews")
    text_col, label_col = options.get("text_col") or "text", options.get("label_col") or "label"
    data = load_labelled(data_path, text_col, label_col)
    from pathlib import Path

    path = Path(data_path).expanduser().resolve()
    info = {"source": str(path), "sha256": file_sha256(path), "text_col": text_col, "label_col": label_col}
    yield from train_and_save(context.home, name, data, epochs=options.get("epochs"),
                              rank=options.get("rank") or 8, merge=bool(options.get("merge")),
                              cancel=context.cancel, data_info=info)


def _guarded(events: Callable[[], Iterator[Event]]) -> Iterator[Event]:
    """Turn user-facing errors (bad data, missing model) into one Error event."""
    user_errors = _user_errors()
    try:
        yield from events()
    except user_errors as exc:
        yield _as_error(exc)


class ClassifierPlugin(Plugin):
    name = "classifier"
    description = "LoRA-tuned MiniLM classifiers: sentiment, your own labels, and the intent router"
    commands = (
        Command("classify", "classify a text (sentiment by default); /classify train --data FILE trains your own",
                "TEXT [--model NAME] | train --data FILE [--text-col C] [--label-col L] [--name N] [--epochs E] [--merge]"),
    )
    intents = {"classify": "classify"}
    settings = {
        "router.training": Setting("background", "first use trains the LoRA intent router",
                                   choices=("background", "foreground", "off")),
        "classifier.default_model": Setting(DEFAULT_MODEL, "classifier used by /classify without --model"),
    }

    def services(self) -> dict[str, Callable[[Context], Any]]:
        return {"intent_classifier": _make_router}

    def intent_examples(self) -> dict[str, list[str]]:
        from assistant import load_intent_examples

        return load_intent_examples(__name__)

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        from assistant.router import parse_flags

        try:
            text, options = parse_flags(request.text, {"model": str, **TRAIN_FLAGS})
        except ValueError as exc:
            yield Error(str(exc), "usage: /classify TEXT [--model NAME]")
            return
        if request.intent == "classify" and request.options.get("text"):
            text = str(request.options["text"])
        if text.strip() == "train" and request.intent is None:  # "/classify train --data FILE ..."
            yield from _guarded(lambda: train_classifier(context, options))
            return
        for event in _guarded(lambda: classify_texts(context, [text], options.get("model"))):
            if isinstance(event, Data) and "label" in event.obj:
                obj = event.obj
                yield Text(f"**{obj['label']}** ({obj['confidence']:.0%}, model {obj['model']})")
            yield event

    def add_cli(self, subparsers: Any) -> None:
        route = add_command(subparsers, "route", "show the intent the router picks for each input line",
                            _cli_route, description="Route free text to an intent. Reads TEXT, or one input per "
                            "line from stdin; with --json prints one {\"text\",\"intent\",\"confidence\",\"slots\"} per line.")
        route.add_argument("text", nargs="*", help="text to route (default: read lines from stdin)")
        classify = add_command(
            subparsers, "classify", "classify text, or train a classifier on your own labelled data", _cli_classify,
            description="assistant classify \"TEXT\" [--model NAME]   classify (default model: sentiment)\n"
                        "assistant classify train --data FILE [--text-col C] [--label-col L] [--name N] "
                        "[--epochs E] [--rank R] [--merge]   fine-tune MiniLM with LoRA on FILE")
        classify.formatter_class = argparse.RawDescriptionHelpFormatter
        classify.add_argument("text", nargs="*", metavar="TEXT | train",
                              help="text to classify (default: one per line from stdin), or the word 'train'")
        classify.add_argument("--model", dest="classifier_model", metavar="NAME",
                              help="classifier to use: sentiment (default), intents or one you trained")
        classify.add_argument("--list", action="store_true", help="list trained classifiers")
        group = classify.add_argument_group("train options")
        group.add_argument("--data", metavar="FILE", help="labelled .csv, .tsv, .jsonl or .json file")
        group.add_argument("--text-col", default=None, metavar="C", help="column with the text (default: text)")
        group.add_argument("--label-col", default=None, metavar="L", help="column with the label (default: label)")
        group.add_argument("--name", default=None, metavar="NAME", help="name to save the classifier under (default: custom)")
        group.add_argument("--epochs", type=LIMITS["epochs"], default=None, metavar="E", help="training epochs (default: by data size)")
        group.add_argument("--rank", type=LIMITS["rank"], default=None, metavar="R", help="LoRA rank (default: 8)")
        group.add_argument("--merge", action="store_true", help="also save a standalone model with the adapter merged in")

    def doctor(self, context: Context) -> list[dict[str, Any]]:
        from .data import SENTIMENT_FILE
        from .store import list_classifiers

        trained = {row["name"]: row for row in list_classifiers(context.home)}
        intents = context.registry.intent_examples() if context.registry else []
        served = sorted({intent for _, intent in intents})
        checks = [{"name": "classifier data", "ok": SENTIMENT_FILE.is_file() and len(served) >= 2,
                   "detail": f"{SENTIMENT_FILE.name}; {len(intents)} intent examples for {len(served)} intents "
                             f"({', '.join(served)})"}]
        for name in ("intents", "sentiment"):
            row = trained.get(name)
            detail = (f"trained, test accuracy {row['accuracy']:.3f}" if row and row["accuracy"] is not None
                      else "not trained yet: trains on first use")
            checks.append({"name": f"classifier {name}", "ok": True, "detail": detail})
        return checks


def _make_router(context: Context):
    from .service import IntentRouter

    examples = context.registry.intent_examples() if context.registry else None
    return IntentRouter(context.home, training=str(context.config.get("router.training")), examples=examples)


def _read_lines(args_text: list[str]) -> list[str]:
    if args_text:
        return [" ".join(args_text)]
    return [line.rstrip("\n") for line in sys.stdin if line.strip()]


def _cli_route(args: Any, context: Context) -> Iterator[Event]:
    def events() -> Iterator[Event]:
        from .service import IntentRouter

        texts = _read_lines(args.text)
        if not texts:
            yield Error("nothing to route", "give TEXT or pipe lines on stdin")
            return
        router = context.service("intent_classifier")
        if isinstance(router, IntentRouter):
            for event in router.ensure_trained(context.cancel):
                if not isinstance(event, Data):  # keep `route --json` one line out per line in
                    yield event
            results = router.predict_many(texts)
        else:  # a third-party router service
            results = [router.predict(t) for t in texts]
        for text, (intent, confidence, slots) in zip(texts, results):
            if args.json:
                yield Data({"text": text, "intent": intent, "confidence": round(float(confidence), 4), "slots": slots})
            else:
                extra = "  " + " ".join(f"{k}={v}" for k, v in slots.items()) if slots else ""
                yield Text(f"{intent:<13} {confidence:5.2f}  {text}{extra}\n")

    return _guarded(events)


def _cli_classify(args: Any, context: Context) -> Iterator[Event]:
    def events() -> Iterator[Event]:
        from .store import list_classifiers

        train_opts = {"data": args.data, "text_col": args.text_col, "label_col": args.label_col, "name": args.name,
                      "epochs": args.epochs, "rank": args.rank, "merge": args.merge or None}
        if args.list:
            rows = list_classifiers(context.home)
            if args.json:
                yield Data(rows)
            else:
                for row in rows or []:
                    acc = f"{row['accuracy']:.3f}" if row["accuracy"] is not None else "-"
                    yield Text(f"{row['name']:<16} accuracy {acc}  classes: {', '.join(row['classes'])}\n")
                if not rows:
                    yield Notice("info", "no classifiers trained yet")
            return
        if args.text == ["train"]:
            yield from train_classifier(context, train_opts)
            return
        given = [f"--{k.replace('_', '-')}" for k, v in train_opts.items() if v is not None]
        if given:
            yield Error(f"{', '.join(given)} only apply to training", "use: assistant classify train --data FILE ...")
            return
        texts = _read_lines(args.text)
        for event in classify_texts(context, texts, args.classifier_model):
            if isinstance(event, Data) and not args.json and "label" in event.obj:
                obj = event.obj
                yield Text(f"{obj['label']:<12} {obj['confidence']:5.2f}  {obj['text']}\n")
            else:
                yield event

    return _guarded(events)
