"""The shared epoch loop: checkpoints on short epochs, on stop and on cancel."""

from __future__ import annotations

import numpy as np

from course_assistant_plugins.images import training
from course_assistant_plugins.images.training import TrainPlan, run_epochs


def drive(context, plan, n_items=40, cancel_after=None):
    saves, steps = [], []

    def step(idx: np.ndarray) -> dict[str, float]:
        steps.append(len(idx))
        if cancel_after is not None and len(steps) == cancel_after:
            context.cancel.cancel()
        return {"loss": float(len(steps))}

    gen = run_epochs(context, plan, n_items, step, lambda epoch, means: saves.append(epoch))
    try:
        while True:
            next(gen)
    except StopIteration as done:
        return done.value, saves, steps


def test_short_epochs_save_at_most_every_few_seconds_and_always_at_the_end(context):
    result, saves, steps = drive(context, TrainPlan(epochs=30, time_budget=None, batch_size=10, seed=0))
    assert result.epochs_done == 30 and len(steps) == 120
    assert saves == [30]  # 30 epochs in far less than CHECKPOINT_EVERY_S: one checkpoint, the last


def test_every_epoch_is_saved_when_epochs_take_longer_than_the_interval(context, monkeypatch):
    monkeypatch.setattr(training, "CHECKPOINT_EVERY_S", 0.0)
    _, saves, _ = drive(context, TrainPlan(epochs=5, time_budget=None, batch_size=10, seed=0))
    assert saves == [1, 2, 3, 4, 5]


def test_cancel_mid_epoch_saves_the_partial_epoch(context):
    result, saves, steps = drive(context, TrainPlan(epochs=30, time_budget=None, batch_size=10, seed=0),
                                 cancel_after=6)
    assert result.stopped == "cancelled" and len(steps) == 6
    assert saves == [1.5]  # epoch 1 done (not saved yet: too recent), then half of epoch 2
