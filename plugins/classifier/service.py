"""Train, evaluate, store and serve classifiers; the intent router service.

`train_and_save` is the one training pipeline (CLI, chat, first use, router):
check the data, split it, fine-tune with LoRA, evaluate on the held-out test
split, save atomically. `IntentRouter` is the `intent_classifier` service.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from assistant import CancelToken, Data, Event, Notice, Progress, Text, installed_intent_examples

from . import slots as slot_rules
from . import store
from .data import LabelledTexts, builtin_dataset, examples_sha256, intent_data, load_labelled, relative, split

INTENT_MODEL = "intents"
BUILTIN_EPOCHS = {"intents": 4, "sentiment": 4}


def default_epochs(n_train: int, batch_size: int) -> int:
    """Enough passes for about 64 optimizer steps: small data sets need more epochs."""
    steps = max(1, -(-n_train // batch_size))
    return min(30, max(4, -(-64 // steps)))


@dataclass
class Prediction:
    text: str
    label: str
    confidence: float
    scores: dict[str, float]


class TextClassifier:
    """A loaded classifier: `predict(texts)` -> [Prediction]."""

    def __init__(self, name: str, model, tokenizer, meta: dict[str, Any]):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta
        self.classes: list[str] = list(meta["classes"])
        self._lock = threading.Lock()

    def predict(self, texts: list[str]) -> list[Prediction]:
        from .lora import predict_proba

        with self._lock:
            probs = predict_proba(self.model, self.tokenizer, texts)
        out = []
        for text, row in zip(texts, probs):
            best = int(row.argmax())
            out.append(Prediction(text, self.classes[best], float(row[best]),
                                  {c: round(float(p), 4) for c, p in zip(self.classes, row)}))
        return out


# -- training pipeline -------------------------------------------------------

def train_and_save(home: Path, name: str, data: LabelledTexts, *, epochs: int | None = None, rank: int = 8,
                   merge: bool = False, cancel: CancelToken | None = None, data_info: dict[str, Any] | None = None,
                   threads: int = 2, result_out: list | None = None) -> Iterator[Event]:
    """Fine-tune `name` on `data`; yields Progress, Notices, the report as Text and Data.

    `result_out`, when given, receives the in-memory TrainResult (tests, bench).
    """
    from .lora import TrainConfig, TrainResult, predict_proba, train
    from .metrics import format_report, report

    directory = store.model_dir(home, name)
    splits = split(data)
    cfg = TrainConfig(rank=rank, alpha=2 * rank, threads=threads)
    cfg.epochs = epochs or BUILTIN_EPOCHS.get(name) or default_epochs(len(splits.train), cfg.batch_size)
    if cfg.epochs < 1 or cfg.epochs > 200:
        raise store.ClassifierError(f"--epochs must be between 1 and 200, got {cfg.epochs}")
    if cfg.rank < 1 or cfg.rank > 128:
        raise store.ClassifierError(f"--rank must be between 1 and 128, got {cfg.rank}")
    yield Notice("info", f"training classifier {name!r} (LoRA r={cfg.rank}, {cfg.epochs} epochs) on "
                         f"{len(splits.train)} examples, {len(splits.classes)} classes; "
                         f"{len(splits.validation)} for validation, {len(splits.test)} held out for the test")
    result: TrainResult | None = None
    for item in train(splits, cfg, cancel, label=f"training {name}"):
        if isinstance(item, Progress):
            yield item
        else:
            result = item
    assert result is not None
    if result_out is not None:
        result_out.append(result)
    probs = predict_proba(result.model, result.tokenizer, splits.test.texts)
    predicted = [result.classes[i] for i in probs.argmax(axis=1)]
    rep = report(splits.test.labels, predicted, result.classes)
    meta = {
        "name": name,
        "classes": result.classes,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "head": "mean-pooled cosine (plugins/classifier/model.py)",
        "data": data_info or {"source": data.source},
        "splits": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "config": asdict(cfg),
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "trainable_share": result.trainable_share,
        "train_seconds": round(result.seconds, 2),
        "best_epoch": result.best_epoch,
        "history": result.history,
        "report": rep,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (cancel or CancelToken()).raise_if_cancelled()
    store.save(directory, result.model, result.tokenizer, meta, merge=merge)
    yield Text(f"Trained {name!r} in {result.seconds:.1f} s: {result.trainable_params:,} of "
               f"{result.total_params:,} parameters trainable ({result.trainable_share:.2%}); "
               f"best epoch {result.best_epoch}.\n{format_report(rep)}\nSaved to {directory}"
               + (" (with a merged standalone model in merged/)" if merge else "") + "\n")
    yield Data({"action": "classifier_trained", "name": name, "path": str(directory), "merged": merge,
                "trainable_params": result.trainable_params, "total_params": result.total_params,
                "trainable_share": result.trainable_share, "train_seconds": meta["train_seconds"],
                "best_epoch": result.best_epoch, **{k: rep[k] for k in ("accuracy", "macro_f1", "classes", "confusion", "n")}})


def builtin_data(name: str, examples: list[tuple[str, str]] | None = None) -> tuple[LabelledTexts, dict[str, Any]]:
    """A built-in classifier's data; for the intents, the installed plugins' examples (or `examples`)."""
    if name == INTENT_MODEL:
        examples = installed_intent_examples() if examples is None else examples
        intents = sorted({intent for _, intent in examples})
        return intent_data(examples), {"source": f"intent examples of the installed plugins ({', '.join(intents)})",
                                       "sha256": examples_sha256(examples), "intents": intents}
    found = builtin_dataset(name)
    assert found is not None
    path, text_col, label_col = found
    data = load_labelled(path, text_col, label_col)
    return data, {"source": relative(path), "sha256": store.file_sha256(path), "text_col": text_col, "label_col": label_col}


def is_builtin(name: str) -> bool:
    return name == INTENT_MODEL or builtin_dataset(name) is not None


def is_current(home: Path, name: str, examples: list[tuple[str, str]] | None = None) -> bool:
    """A stored model exists and, for a built-in one, was trained on the data there is now
    (for the intents: the same installed plugins' examples)."""
    meta = store.read_meta(store.model_dir(home, name))
    if meta is None:
        return False
    if name == INTENT_MODEL:
        examples = installed_intent_examples() if examples is None else examples
        return meta.get("data", {}).get("sha256") == examples_sha256(examples)
    found = builtin_dataset(name)
    if found is None:
        return True
    return meta.get("data", {}).get("sha256") == store.file_sha256(found[0])


def ensure_model(home: Path, name: str, cancel: CancelToken | None = None,
                 examples: list[tuple[str, str]] | None = None) -> Iterator[Event]:
    """Train a built-in classifier (intents, sentiment) on first use; no-op when stored and current."""
    store.check_name(name)
    if is_current(home, name, examples):
        return
    if not is_builtin(name):
        raise store.ClassifierError(f"no trained classifier named {name!r}",
                                    f"train one: assistant classify train --data FILE --name {name}")
    data, info = builtin_data(name, examples)
    yield Notice("info", f"first use of the {name!r} classifier: training it now (once; it is cached in {home / 'models'})")
    yield from train_and_save(home, name, data, cancel=cancel, data_info=info)


_LOADED: dict[tuple[str, str], tuple[float, TextClassifier]] = {}
_LOADED_LOCK = threading.Lock()


def load_classifier(home: Path, name: str) -> TextClassifier:
    """Load (and keep in memory per process) a stored classifier; reloads when retrained."""
    directory = store.model_dir(home, name)
    try:
        stamp = (directory / "meta.json").stat().st_mtime
    except OSError:
        stamp = -1.0
    key = (str(directory), name)
    with _LOADED_LOCK:
        cached = _LOADED.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
    model, tokenizer, meta = store.load(directory)
    classifier = TextClassifier(name, model, tokenizer, meta)
    with _LOADED_LOCK:
        _LOADED[key] = (stamp, classifier)
    return classifier


# -- the intent router -------------------------------------------------------

class IntentRouter:
    """The `intent_classifier` service: predict(text) -> (intent, confidence, slots).

    Uses the LoRA intent model from <home>/models/classifiers/intents/. When
    it is not trained yet, the first call starts training in a background
    thread (config `router.training`: "background" (default), "foreground"
    or "off") and answers meanwhile with a nearest-centroid classifier over
    frozen MiniLM embeddings of the same training split, so no message waits
    for a training run.
    """

    def __init__(self, home: Path, training: str = "background", examples: list[tuple[str, str]] | None = None):
        self.home = Path(home)
        self.training = training
        # (utterance, intent) of the installed plugins: the router serves exactly their intents
        self.examples = installed_intent_examples() if examples is None else examples
        self.cancel = CancelToken()
        self._lora: TextClassifier | None = None
        self._centroids = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.progress: Progress | None = None
        self._switch_notice: str | None = None  # said once, after background training finishes

    # which model answers now: "lora" | "centroid"
    @property
    def backend(self) -> str:
        return "lora" if self._lora is not None else "centroid"

    @property
    def training_in_progress(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _load_lora(self) -> TextClassifier | None:
        if self._lora is None and is_current(self.home, INTENT_MODEL, self.examples):
            try:
                self._lora = load_classifier(self.home, INTENT_MODEL)
            except store.ClassifierError as exc:
                self.last_error = str(exc)
        return self._lora

    def ensure_trained(self, cancel: CancelToken | None = None) -> Iterator[Event]:
        """Train now (with Progress) unless stored; waits for a running background run."""
        if self.training_in_progress:
            yield Notice("info", "the intent model is training in the background; waiting for it")
            while self.training_in_progress:
                if cancel is not None and cancel.cancelled:
                    return
                if self.progress is not None:
                    yield self.progress
                time.sleep(0.5)
        yield from ensure_model(self.home, INTENT_MODEL, cancel, self.examples)
        self._load_lora()

    def start_background_training(self) -> bool:
        with self._lock:
            if self.training_in_progress or is_current(self.home, INTENT_MODEL, self.examples):
                return False

            def work() -> None:
                try:
                    for event in ensure_model(self.home, INTENT_MODEL, self.cancel, self.examples):
                        if isinstance(event, Progress):
                            self.progress = event
                    if self._load_lora() is not None:
                        self._switch_notice = ("the intent router's LoRA model finished training in the background "
                                               "and routes your messages from now on (a simpler classifier did until now)")
                except Exception as exc:  # noqa: BLE001 - the fallback keeps routing
                    self.last_error = f"{type(exc).__name__}: {exc}"

            self._thread = threading.Thread(target=work, name="intent-router-training", daemon=True)
            self._thread.start()
            return True

    def _centroid_classifier(self):
        with self._lock:
            if self._centroids is None:
                from .embedding import CentroidClassifier, shared_encoder

                data, _ = builtin_data(INTENT_MODEL, self.examples)
                train = split(data).train
                self._centroids = CentroidClassifier.fit(shared_encoder().encode(train.texts), train.labels)
            return self._centroids

    def classify(self, text: str) -> tuple[str, float]:
        lora = self._load_lora()
        if lora is None:
            if self.training == "foreground":
                for _ in self.ensure_trained(self.cancel):
                    pass
                lora = self._lora
            elif self.training != "off":
                self.start_background_training()
        if lora is not None:
            pred = lora.predict([text])[0]
            return pred.label, pred.confidence
        from .embedding import shared_encoder

        centroids = self._centroid_classifier()
        probs = centroids.predict_proba(shared_encoder().encode([text]))[0]
        best = int(probs.argmax())
        return centroids.classes[best], float(probs[best])

    def take_notice(self) -> str | None:
        """A message for the user, once: the LoRA model has replaced the fallback."""
        notice, self._switch_notice = self._switch_notice, None
        return notice

    def predict(self, text: str) -> tuple[str, float, dict[str, Any]]:
        intent, confidence = self.classify(text)
        return intent, confidence, slot_rules.extract(intent, text)

    def predict_many(self, texts: list[str]) -> list[tuple[str, float, dict[str, Any]]]:
        lora = self._load_lora()
        if lora is None:
            return [self.predict(t) for t in texts]
        return [(p.label, p.confidence, slot_rules.extract(p.label, p.text)) for p in lora.predict(texts)]

    def close(self) -> None:
        self.cancel.cancel()
