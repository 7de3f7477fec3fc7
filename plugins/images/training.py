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

from assistant.events import Event, Notice, Progress

PROGRESS_EVERY_S = 0.5
UNBOUNDED_EPOCHS = 100_000


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
    anything else is yielded, so cancelling right after still keeps the work.
    Batches are full-size only (static shapes compile once); the remainder of
    each shuffled epoch is left for the next shuffle.
    """
    rng = np.random.default_rng(plan.seed)
    batch = max(1, min(plan.batch_size, n_items))
    per_epoch = max(1, n_items // batch)
    result = TrainResult()
    started = time.perf_counter()
    last_report = 0.0
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
            save(epoch if done == per_epoch else epoch - 1 + done / per_epoch, means)
            if done == per_epoch:
                result.epochs_done += 1
            if after_epoch is not None and stop != "cancelled":
                yield from after_epoch(epoch, means)
        if stop:
            result.stopped = stop
            if stop == "cancelled":
                yield Notice("warning", f"{label} cancelled after {result.batches} batches; checkpoint saved")
            break
    result.seconds = time.perf_counter() - started
    return result
