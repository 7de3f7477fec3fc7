"""The noise schedule of a diffusion model, in numpy and apart from the network.

As in diffusers, the schedule only knows the betas and the closed forms that
follow from them; the samplers (ddpm.py, ddim.py) use it, the network never
does. Its config round-trips through JSON so a checkpoint records exactly the
schedule it was trained with.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

SCHEDULE_KINDS = ("linear", "cosine")


@dataclass(frozen=True)
class ScheduleConfig:
    """What defines a schedule: number of steps T and how the betas grow."""

    steps: int = 500  # T
    kind: str = "cosine"  # "linear" | "cosine"
    # Linear betas of the DDPM paper (1e-4..0.02 over T=1000) rescaled to 500
    # steps, so x_T is still pure noise (unscaled, 0.02 at T=300 leaves 5% signal).
    beta_start: float = 1e-4 * 1000 / 500  # linear only
    beta_end: float = 0.02 * 1000 / 500  # linear only
    cosine_offset: float = 0.008  # the small s of the cosine schedule

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"unknown noise schedule {self.kind!r}: use one of {', '.join(SCHEDULE_KINDS)}")
        if int(self.steps) < 2:
            raise ValueError(f"a schedule needs at least 2 steps, got {self.steps}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError("linear schedule needs 0 < beta_start < beta_end < 1")

    @classmethod
    def rescaled(cls, steps: int, kind: str = "cosine") -> "ScheduleConfig":
        """A schedule of `steps` steps whose linear betas scale as 1000/steps."""
        scale = 1000.0 / int(steps)
        return cls(steps=int(steps), kind=kind, beta_start=1e-4 * scale, beta_end=min(0.02 * scale, 0.999))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ScheduleConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict) -> "ScheduleConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def make_betas(config: ScheduleConfig) -> np.ndarray:
    """beta_1..beta_T as float64."""
    T = int(config.steps)
    if config.kind == "linear":
        return np.linspace(config.beta_start, config.beta_end, T, dtype=np.float64)
    # Cosine schedule (Nichol & Dhariwal): alpha_bar follows a squared cosine,
    # which destroys information more evenly than the linear one at small T.
    s = config.cosine_offset
    steps = np.arange(T + 1, dtype=np.float64) / T
    f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
    return np.clip(betas, 1e-8, 0.999)


class NoiseSchedule:
    """Betas, alphas and cumulative alphas for t = 0..T-1 (index t is step t+1)."""

    def __init__(self, config: ScheduleConfig | None = None):
        self.config = config or ScheduleConfig()
        self.betas = make_betas(self.config)
        self.alphas = 1.0 - self.betas
        self.alpha_bar = np.cumprod(self.alphas)
        # alpha_bar before step t (1 for the first step): used by the posterior.
        self.alpha_bar_prev = np.concatenate([[1.0], self.alpha_bar[:-1]])
        # Variance of q(x_{t-1} | x_t, x_0), the "beta tilde" of the DDPM paper.
        self.posterior_variance = self.betas * (1.0 - self.alpha_bar_prev) / (1.0 - self.alpha_bar)

    @property
    def steps(self) -> int:
        return int(self.config.steps)

    def check_step(self, t: np.ndarray | int) -> np.ndarray:
        t = np.asarray(t)
        if np.any(t < 0) or np.any(t >= self.steps):
            raise ValueError(f"time step out of range 0..{self.steps - 1}")
        return t

    def add_noise(self, x0: np.ndarray, noise: np.ndarray, t: np.ndarray | int) -> np.ndarray:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps: q(x_t | x_0) in closed form."""
        t = self.check_step(t)
        ab = self.alpha_bar[t].reshape(-1, *([1] * (np.ndim(x0) - 1))) if np.ndim(t) else self.alpha_bar[t]
        return (np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * noise).astype(x0.dtype)

    def predict_x0(self, x_t: np.ndarray, eps: np.ndarray, t: int) -> np.ndarray:
        """Invert the closed form: the clean image the predicted noise implies."""
        ab = self.alpha_bar[t]
        return (x_t - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)

    def timesteps(self, k: int | None = None) -> np.ndarray:
        """k evenly spaced steps from T-1 down to 0 (all T when k is None)."""
        if k is None:
            return np.arange(self.steps - 1, -1, -1)
        k = int(k)
        if k < 1:
            raise ValueError(f"the number of sampling steps must be at least 1, got {k}")
        if k > self.steps:
            raise ValueError(f"{k} sampling steps is more than the {self.steps} steps the model was trained with")
        if k == 1:
            return np.array([self.steps - 1])
        # Evenly spaced from T-1 to 0 (spacing >= 1 since k <= T, so no duplicates).
        ts = np.round(np.linspace(0, self.steps - 1, k)).astype(np.int64)
        return ts[::-1].copy()
