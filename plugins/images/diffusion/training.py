"""Training the noise predictor: the simple DDPM loss, EMA weights, epoch checkpoints.

Each step draws t ~ U{0..T-1} and eps ~ N(0, I), builds x_t in closed form
(numpy, through the schedule) and fits the U-Net to predict eps (MSE). Labels
are replaced by the null class with probability `label_dropout`, so one network
learns both eps(x_t, t, y) and eps(x_t, t), which classifier-free guidance
combines when sampling. The shared image epoch loop (course_assistant_plugins.images.training)
handles budget, cancel, progress and the atomic per-epoch checkpoints.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np

from assistant import Data, Event, Image, Notice
from course_assistant_plugins.images.diffusion.scheduler import SCHEDULE_KINDS, NoiseSchedule, ScheduleConfig
from course_assistant_plugins.images.diffusion.unet import UNetConfig, build_unet
from course_assistant_plugins.images.runtime import keras_module

MODEL = "diffusion"
DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32  # small batches: more updates per CPU-second, which matters most early on
DEFAULT_STEPS = 500  # T: DDIM with 50 steps is then 10x fewer network calls


def ema_decay_at(step: int, target: float) -> float:
    """EMA warm-up: average quickly at first, so short runs still get useful EMA weights."""
    return min(target, (1.0 + step) / (10.0 + step))


class Trainer:
    """The trained network, its EMA copy (numpy during training) and the optimizer."""

    def __init__(self, unet_config: UNetConfig, schedule_config: ScheduleConfig, learning_rate: float = 2e-3,
                 label_dropout: float = 0.1, ema_decay: float = 0.999):
        keras = keras_module()
        self.unet_config = unet_config
        self.schedule = NoiseSchedule(schedule_config)
        self.learning_rate = float(learning_rate)
        self.label_dropout = float(label_dropout)
        self.ema_decay = float(ema_decay)
        self.net = build_unet(unet_config)
        self.ema_net = build_unet(unet_config)  # holds the EMA weights at save time
        self.optimizer = keras.optimizers.Adam(self.learning_rate, clipnorm=1.0)
        self.net.compile(optimizer=self.optimizer, loss="mse")
        self.optimizer.build(self.net.trainable_variables)
        self.ema = [w.copy() for w in self.net.get_weights()]
        self.steps_done = 0

    def config(self) -> dict[str, Any]:
        return {"model": MODEL, "unet": self.unet_config.to_dict(),
                "schedule": json.loads(self.schedule.config.to_json()),
                "learning_rate": self.learning_rate, "label_dropout": self.label_dropout,
                "ema_decay": self.ema_decay}

    def train_step(self, x0: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> float:
        n = len(x0)
        t = rng.integers(0, self.schedule.steps, size=n)
        noise = rng.standard_normal(x0.shape).astype(np.float32)
        x_t = self.schedule.add_noise(x0, noise, t)
        if self.unet_config.conditional:
            labels = np.where(rng.random(n) < self.label_dropout, self.unet_config.null_label, labels)
        else:
            labels = np.zeros(n)
        loss = self.net.train_on_batch([x_t, t.astype(np.int32), labels.astype(np.int32)], noise)
        self.steps_done += 1
        decay = ema_decay_at(self.steps_done, self.ema_decay)
        for avg, w in zip(self.ema, self.net.get_weights()):
            avg *= decay
            avg += (1.0 - decay) * w
        return float(np.asarray(loss).reshape(-1)[0])

    def save(self, path, state: dict[str, Any]) -> None:
        from course_assistant_plugins.images.checkpoints import save_checkpoint

        self.ema_net.set_weights(self.ema)
        save_checkpoint(path, {"net": self.net, "ema": self.ema_net}, self.config(),
                        dict(state, steps_done=self.steps_done), {"adam": self.optimizer})

    @classmethod
    def from_checkpoint(cls, checkpoint) -> "Trainer":
        from course_assistant_plugins.images.checkpoints import CheckpointError, restore

        cfg = checkpoint.config
        if cfg.get("model") != MODEL:
            raise CheckpointError(f"{checkpoint.path} is not a diffusion checkpoint")
        try:
            trainer = cls(UNetConfig.from_dict(cfg["unet"]), ScheduleConfig.from_dict(cfg["schedule"]),
                          cfg.get("learning_rate", 2e-3), cfg.get("label_dropout", 0.1), cfg.get("ema_decay", 0.999))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"incompatible checkpoint {checkpoint.path}: bad diffusion config ({exc})") from exc
        restore(checkpoint, {"net": trainer.net, "ema": trainer.ema_net}, {"adam": trainer.optimizer})
        trainer.ema = [np.array(w) for w in trainer.ema_net.get_weights()]
        trainer.steps_done = int(checkpoint.state.get("steps_done", 0))
        return trainer


def new_trainer(options: dict[str, Any], conditional: bool) -> Trainer:
    """A fresh model from options (bench and tests may pass the extra keys)."""
    kind = str(options.get("schedule", "cosine")).lower()
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"unknown noise schedule {kind!r}: use {' or '.join(SCHEDULE_KINDS)}")
    steps = int(options.get("timesteps", DEFAULT_STEPS))
    if not 2 <= steps <= 4000:
        raise ValueError(f"the number of diffusion steps must be between 2 and 4000, got {steps}")
    unet = UNetConfig(base_channels=int(options.get("base_channels", 16)),
                      channel_mults=tuple(options.get("channel_mults", (1, 2, 2))),
                      attention=bool(options.get("attention", True)),
                      num_classes=10 if conditional else 0)
    return Trainer(unet, ScheduleConfig.rescaled(steps, kind), options.get("learning_rate", 2e-3),
                   options.get("label_dropout", 0.1), options.get("ema_decay", 0.999))


def train(context: Any, options: dict[str, Any]) -> Iterator[Event]:
    from course_assistant_plugins.images.checkpoints import MissingCheckpoint, checkpoint_path, model_dir, read_checkpoint
    from course_assistant_plugins.images.runtime import seed_everything
    from course_assistant_plugins.images.training import load_training_data, plan_from_options, run_epochs, update_history

    trained_on: dict[str, Any] = {}
    data = yield from load_training_data(context, MODEL, trained_on, options)
    x = data.x * 2.0 - 1.0  # [0, 1] -> [-1, 1]: the scale the noise schedule assumes
    y = data.y.astype(np.int64)
    labelled = bool(len(y)) and bool((y >= 0).all()) and int(y.max()) < 10
    seed_everything(options.get("seed"))
    path = checkpoint_path(context, MODEL)
    start_epoch = 0.0
    trainer = None
    if options.get("resume"):
        try:
            checkpoint = read_checkpoint(path)
        except MissingCheckpoint:
            yield Notice("warning", "no diffusion checkpoint to resume from: starting a new model")
            checkpoint = None
        if checkpoint is not None:
            trainer = Trainer.from_checkpoint(checkpoint)
            start_epoch = float(checkpoint.state.get("epoch", 0))
            if trainer.unet_config.conditional and not labelled:
                raise ValueError("this diffusion model is class-conditional but the data has no labels 0-9")
            yield Notice("info", f"resuming diffusion training after epoch {start_epoch:g}")
    if trainer is None:
        trainer = new_trainer(options, conditional=labelled)
        if not labelled:
            yield Notice("info", "the data has no digit labels: training an unconditional model (no --label)")

    # --epochs counts the total with --resume, as for the VAE and the GAN (Keras' initial_epoch)
    plan = plan_from_options(options, DEFAULT_EPOCHS, DEFAULT_BATCH)
    rng = np.random.default_rng(plan.seed)

    def step(idx: np.ndarray) -> dict[str, float]:
        return {"loss": trainer.train_step(x[idx], y[idx], rng)}

    def save(epoch: float, means: dict[str, float]) -> None:
        trainer.save(path, {"epoch": epoch, "losses": means, "data_used": data.source, **trained_on})

    result = yield from run_epochs(context, plan, len(x), step, save, start_epoch=int(start_epoch), label="diffusion")
    history = update_history(model_dir(context, MODEL) / "history.json", MODEL, result, start_epoch,
                             {"steps_done": trainer.steps_done, "data": data.source})
    losses = history.get("losses", {}).get("loss", [])
    if len(losses) > 1:
        from course_assistant_plugins.images.display import save_line_plot

        plot = save_line_plot({"noise MSE": losses}, model_dir(context, MODEL) / "loss.png", "diffusion training loss")
        yield Image(str(plot), "diffusion training loss per epoch")
    yield Data({"action": "train", "model": MODEL, "checkpoint": str(path), "epochs_done": result.epochs_done,
                "batches": result.batches, "steps_done": trainer.steps_done, "seconds": round(result.seconds, 1),
                "images_per_second": round(result.images_per_second, 1), "stopped": result.stopped,
                "final_loss": losses[-1] if losses else None, "data": data.source,
                "conditional": trainer.unet_config.conditional, "timesteps": trainer.schedule.steps,
                "schedule": trainer.schedule.config.kind})
