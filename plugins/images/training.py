"""The epoch loop every image model shares: budget, cancel, progress, checkpoints.

A model supplies `step(batch_indices) -> {loss name: value}` and `save(state)`;
`run_epochs` shuffles, batches, reports Progress, stops on --epochs or
--time-budget (whichever comes first) or on cancel, and saves a checkpoint at
the end of every epoch (and of a partial epoch when stopped early), so no
finished work is lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from assistant import Event, Image, Notice, Progress

PROGRESS_EVERY_S = 0.5
CHECKPOINT_EVERY_S = 5.0
UNBOUNDED_EPOCHS = 100_000
PREVIEW_IMAGES = 64


@dataclass
class TrainPlan:
    epochs: int
    time_budget: float | None
    batch_size: int
    seed: int | None


@dataclass
class TrainResult:
    epochs_done: int = 0  # epochs finished in this run
    batches: int = 0
    images: int = 0
    seconds: float = 0.0
    stopped: str = "epochs"  # epochs | time_budget | cancelled
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def plan_from_options(options: dict[str, Any], default_epochs: int, default_batch: int) -> TrainPlan:
    budget = options.get("time_budget")
    epochs = options.get("epochs")
    if epochs is None:
        epochs = UNBOUNDED_EPOCHS if budget else default_epochs
    return TrainPlan(int(epochs), float(budget) if budget else None, int(options.get("batch_size") or default_batch),
                     None if options.get("seed") is None else int(options["seed"]))


def run_epochs(context: Any, plan: TrainPlan, n_items: int, step: Callable[[np.ndarray], dict[str, float]],
               save: Callable[[int, dict[str, float]], None], start_epoch: int = 0, label: str = "training",
               after_epoch: Callable[[int, dict[str, float]], Iterator[Event]] | None = None,
               ) -> Iterator[Event]:
    """Train epochs start_epoch+1 .. plan.epochs; returns a TrainResult (use `yield from`).

    `save(epoch, mean_losses)` runs after each (possibly partial) epoch before
    anything else is yielded, so cancelling right after still keeps the work;
    when epochs are shorter than CHECKPOINT_EVERY_S (a few thousand digits with
    big batches), it runs at most that often, and always after the last epoch
    and when training stops early.
    Batches are full-size only (static shapes compile once); the remainder of
    each shuffled epoch is left for the next shuffle.
    """
    if start_epoch >= plan.epochs:
        yield Notice("warning", f"{label} already has {start_epoch} epochs and --epochs counts the total "
                                f"(like Keras' initial_epoch): ask for more than {start_epoch}")
        return TrainResult(stopped="epochs")
    rng = np.random.default_rng(plan.seed)
    batch = max(1, min(plan.batch_size, n_items))
    per_epoch = max(1, n_items // batch)
    result = TrainResult()
    started = time.perf_counter()
    last_report = 0.0
    last_save = started
    pending: tuple[float, dict[str, float]] | None = None  # the newest state not yet saved
    for epoch in range(start_epoch + 1, plan.epochs + 1):
        order = rng.permutation(n_items)
        sums: dict[str, float] = {}
        done = 0
        stop = None
        for b in range(per_epoch):
            if context.cancel.cancelled:
                stop = "cancelled"
                break
            if plan.time_budget is not None and time.perf_counter() - started >= plan.time_budget:
                stop = "time_budget"
                break
            losses = step(order[b * batch:(b + 1) * batch])
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            done += 1
            result.batches += 1
            result.images += batch
            now = time.perf_counter()
            if now - last_report >= PROGRESS_EVERY_S or b == per_epoch - 1:
                last_report = now
                shown = " ".join(f"{k} {v / done:.4g}" for k, v in sums.items())
                total = plan.epochs if plan.epochs < UNBOUNDED_EPOCHS else "?"
                yield Progress(f"{label} epoch {epoch}/{total} {shown}", done, per_epoch)
        result.seconds = time.perf_counter() - started
        if done:
            means = {k: v / done for k, v in sums.items()}
            for key, value in means.items():
                result.history.setdefault(key, []).append(value)
            pending = (epoch if done == per_epoch else epoch - 1 + done / per_epoch, means)
            if done == per_epoch:
                result.epochs_done += 1
        now = time.perf_counter()
        if pending and (stop or epoch == plan.epochs or now - last_save >= CHECKPOINT_EVERY_S):
            save(*pending)
            pending, last_save = None, now
        if done and after_epoch is not None and stop != "cancelled":
            yield from after_epoch(epoch, means)
        if stop:
            result.stopped = stop
            if stop == "cancelled":
                yield Notice("warning", f"{label} cancelled after {result.batches} batches; checkpoint saved")
            break
    result.seconds = time.perf_counter() - started
    return result


def update_history(path: Any, model: str, result: TrainResult, start_epoch: float, extra: dict[str, Any] | None = None,
                   ) -> dict[str, Any]:
    """Append this run's per-epoch losses to history.json (atomic) and return it."""
    from course_assistant_plugins.images.checkpoints import load_history, save_history

    history = load_history(path) if start_epoch > 0 else {}
    history.setdefault("model", model)
    history.setdefault("losses", {})
    for key, values in result.history.items():
        history["losses"].setdefault(key, []).extend(float(v) for v in values)
    history.setdefault("runs", []).append(dict({
        "start_epoch": start_epoch, "epochs_done": result.epochs_done, "batches": result.batches,
        "images": result.images, "seconds": round(result.seconds, 2),
        "images_per_second": round(result.images_per_second, 1), "stopped": result.stopped}, **(extra or {})))
    save_history(path, history)
    return history


def resolve_config(context: Any, model: str, options: dict[str, Any], defaults: dict[str, Any],
                   arch_keys: tuple[str, ...]) -> tuple[dict[str, Any], Any, list[Notice]]:
    """(config, checkpoint to resume or None, notices) for a training run.

    With --resume the checkpoint's architecture wins; asking for a different
    one is an error (nothing is touched). A corrupt checkpoint raises.
    """
    from course_assistant_plugins.images.checkpoints import MissingCheckpoint, checkpoint_path, read_checkpoint

    config = dict(defaults)
    for key in defaults:
        if options.get(key) is not None:
            config[key] = options[key]
    notices: list[Notice] = []
    path = checkpoint_path(context, model)
    if not options.get("resume"):
        if path.exists():
            notices.append(Notice("info", f"starting a new {model}; its checkpoint is replaced after the first "
                                          f"epoch (use --resume to continue it)"))
        return config, None, notices
    try:
        ckpt = read_checkpoint(path)
    except MissingCheckpoint:
        notices.append(Notice("warning", f"no {model} checkpoint to resume; starting a new one"))
        return config, None, notices
    for key in arch_keys:
        wanted = options.get(key)
        if wanted is not None and ckpt.config.get(key) != wanted:
            raise ValueError(f"the {model} checkpoint has {key.replace('_', '-')} {ckpt.config.get(key)}, not {wanted}; "
                             f"drop --{key.replace('_', '-')} or train without --resume")
    merged = dict(config)
    merged.update({k: ckpt.config[k] for k in arch_keys if k in ckpt.config})
    if options.get("data") is None and "data" in ckpt.config:
        merged["data"] = ckpt.config["data"]
    return merged, ckpt, notices


@dataclass
class KerasRun:
    """What a Keras image model needs to start (or resume) training."""

    config: dict[str, Any]
    data: Any  # course_assistant_plugins.images.data.DigitData
    plan: TrainPlan
    model: Any
    start_epoch: float
    save: Callable[[float, dict[str, float]], None]


def load_training_data(context: Any, model: str, record: dict[str, Any], options: dict[str, Any]):
    """The training split, announced: a one-line summary and a preview grid in outputs/.

    A generator: yields the events, returns the DigitData (use `yield from`).
    `record` (the checkpoint's config or state) gets the source and folder, so
    that `image eval` can score against the held-out part of the same data.
    """
    from course_assistant_plugins.images.data import load_digits_data, resolve_source, summary_line
    from course_assistant_plugins.images.display import save_grid
    from course_assistant_plugins.images.models import default_output

    source, path = resolve_source(options.get("data") or record.get("data"), options.get("data_path"))
    data = load_digits_data(source, "train", path, context)
    record.update(data=source, data_path=data.info.get("path"))
    if data.notice:
        yield Notice("info", data.notice)
    yield Notice("info", summary_line(data))
    pick = np.random.default_rng(0).permutation(len(data))[:PREVIEW_IMAGES]
    preview = save_grid(data.x[pick], default_output(context, model, "training-data"), nrow=8)
    yield Image(str(preview), f"{model}: {len(pick)} of the {len(data):,} prepared training images "
                              f"(what the model learns from)")
    return data


def prepare_keras_run(context: Any, name: str, options: dict[str, Any], *, defaults: dict[str, Any],
                      arch_keys: Any, arch_version: int, default_epochs: int, default_batch: int,
                      build: Callable[[dict[str, Any], int | None], Any], parts: Callable[[Any], Any]):
    """Config, data, plan, model and resume state for the VAE and the GAN.

    A generator: yields the notices, returns a KerasRun (use `yield from`).
    `build(config, seed)` makes the compiled model, `parts(model)` its saved sub-models.
    """
    from course_assistant_plugins.images.checkpoints import checkpoint_path, restore, save_checkpoint
    from course_assistant_plugins.images.runtime import backend_name, seed_everything

    config, ckpt, notices = resolve_config(context, name, options, defaults, arch_keys)
    yield from notices
    data = yield from load_training_data(context, name, config, options)
    plan = plan_from_options(options, default_epochs, default_batch)
    seed_everything(plan.seed)
    model = build(config, plan.seed)
    start_epoch = 0.0
    if ckpt is not None:
        restored_optimizer = restore(ckpt, parts(model), {"optimizer": model.optimizer})
        start_epoch = float(ckpt.state.get("epoch", 0))
        yield Notice("info", f"resuming the {name} from epoch {start_epoch:g}"
                             + ("" if restored_optimizer else " (fresh optimizer state)"))
    config.update(model=name, arch_version=arch_version, data_used=data.source)

    def save(epoch: float, means: dict[str, float]) -> None:
        save_checkpoint(checkpoint_path(context, name), parts(model), config,
                        {"epoch": epoch, "losses": means, "backend": backend_name()},
                        {"optimizer": model.optimizer})

    return KerasRun(config, data, plan, model, start_epoch, save)
