"""A trained diffusion model: network + EMA weights + schedule, and guided noise prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from plugins.images.diffusion.ddim import ddim_sample
from plugins.images.diffusion.ddpm import SamplerStep, ddpm_sample
from plugins.images.diffusion.scheduler import NoiseSchedule, ScheduleConfig
from plugins.images.diffusion.unet import UNetConfig, build_unet

from assistant import UserError

SAMPLERS = ("ddpm", "ddim")
# Used when a label is asked for and --guidance is not given. Plain conditional
# sampling: on our CPU-trained models the null-class branch (10% of the steps) is
# weak, and guidance > 1 amplifies its errors: the shipped model draws the asked
# digit 86% of the time at 1 and 61% at 2 (all ten digits; 0% for 7s at 3; docs/diffusion.md).
DEFAULT_GUIDANCE = 1.0
DEFAULT_DDIM_STEPS = 50


class SamplingError(UserError, ValueError):
    """A sampling request the model cannot honour (bad label, guidance, steps)."""


class DiffusionModel:
    """The network used for sampling carries the EMA weights."""

    def __init__(self, unet_config: UNetConfig, schedule_config: ScheduleConfig, info: dict[str, Any] | None = None):
        self.unet_config = unet_config
        self.schedule = NoiseSchedule(schedule_config)
        self.net = build_unet(unet_config)
        self.info = info or {}

    @classmethod
    def load(cls, path: Path) -> "DiffusionModel":
        """The EMA network of a checkpoint (weights only; the architecture comes from its JSON config)."""
        from plugins.images.checkpoints import CheckpointError, read_checkpoint, restore

        checkpoint = read_checkpoint(path)
        cfg = checkpoint.config
        if cfg.get("model") != "diffusion":
            raise CheckpointError(f"{path} is not a diffusion checkpoint")
        try:
            model = cls(UNetConfig.from_dict(cfg["unet"]), ScheduleConfig.from_dict(cfg["schedule"]),
                        info={"config": cfg, "state": checkpoint.state})
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"incompatible checkpoint {path}: bad diffusion config ({exc})") from exc
        restore(checkpoint, {"ema": model.net})
        return model

    # -- guided noise prediction -------------------------------------------------

    def resolve_labels(self, n: int, label: int | None, guidance: float | None) -> tuple[np.ndarray | None, float]:
        """Labels for n samples and the guidance scale, or a SamplingError saying why not."""
        cfg = self.unet_config
        if not cfg.conditional:
            if label is not None:
                raise SamplingError("this diffusion model was trained without labels, so --label cannot be used")
            if guidance is not None:
                raise SamplingError("guidance needs a class-conditional model; this one was trained without labels")
            return None, 1.0
        if label is not None:
            label = int(label)
            if not 0 <= label < cfg.num_classes:
                raise SamplingError(f"label {label} is outside the classes 0..{cfg.num_classes - 1} this model was trained on")
            labels = np.full(n, label, dtype=np.int32)
        else:  # no label asked: an even mix of all classes
            labels = (np.arange(n) % cfg.num_classes).astype(np.int32)
        if guidance is None:
            scale = DEFAULT_GUIDANCE if label is not None else 1.0
        else:
            scale = float(guidance)
        if not np.isfinite(scale) or scale < 0:
            raise SamplingError(f"guidance must be a number >= 0, got {guidance}")
        return labels, scale

    def eps_fn(self, labels: np.ndarray | None, guidance: float, batch: int = 256):
        """eps(x_t, t) with classifier-free guidance: uncond + w * (cond - uncond)."""
        null = self.unet_config.null_label

        def predict(x: np.ndarray, lab: np.ndarray, t: int) -> np.ndarray:
            outs = []
            for s in range(0, len(x), batch):
                xs = x[s:s + batch]
                ts = np.full(len(xs), t, dtype=np.int32)
                outs.append(np.asarray(self.net.predict_on_batch([xs, ts, lab[s:s + batch]])))
            return np.concatenate(outs).astype(np.float32)

        def eps(x: np.ndarray, t: int) -> np.ndarray:
            n = len(x)
            nulls = np.full(n, null, dtype=np.int32)
            if labels is None:
                return predict(x, nulls, t)
            if guidance == 1.0:
                return predict(x, labels, t)
            if guidance == 0.0:
                return predict(x, nulls, t)
            both = predict(np.concatenate([x, x]), np.concatenate([labels, nulls]), t)
            cond, uncond = both[:n], both[n:]
            return uncond + guidance * (cond - uncond)

        return eps

    def sampler(self, n: int, *, sampler: str = "ddim", steps: int | None = None, eta: float = 1.0,
                label: int | None = None, guidance: float | None = None, seed: int | None = None) -> Iterator[SamplerStep]:
        """Validate everything first, then return the step generator."""
        sampler = (sampler or "ddim").lower()
        if sampler not in SAMPLERS:
            raise SamplingError(f"unknown sampler {sampler!r}: use ddpm or ddim")
        if n < 1:
            raise SamplingError(f"--n must be at least 1, got {n}")
        labels, scale = self.resolve_labels(n, label, guidance)
        T = self.schedule.steps
        if steps is not None and int(steps) > T:
            raise SamplingError(f"--steps {steps} is more than the {T} diffusion steps this model was trained with")
        if steps is not None and int(steps) < 1:
            raise SamplingError(f"--steps must be at least 1, got {steps}")
        if not 0.0 <= float(eta) <= 1.0:
            raise SamplingError(f"--eta must be between 0 and 1, got {eta}")
        if sampler == "ddpm" and steps is not None and int(steps) != T:
            raise SamplingError(f"the DDPM sampler always runs all {T} steps; use --sampler ddim for --steps {steps}")
        rng = np.random.default_rng(seed)
        eps = self.eps_fn(labels, scale)
        shape = (n, self.unet_config.image_size, self.unet_config.image_size, 1)
        if sampler == "ddpm":
            return ddpm_sample(self.schedule, eps, shape, rng)
        return ddim_sample(self.schedule, eps, shape, rng, k=int(steps or min(DEFAULT_DDIM_STEPS, T)), eta=float(eta))


def to_unit(x: np.ndarray) -> np.ndarray:
    """[-1, 1] model space -> [0, 1] images."""
    return np.clip((np.asarray(x, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0)
