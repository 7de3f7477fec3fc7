"""DDIM sampling: k of the T steps, deterministic at eta=0.

Uses the same trained noise predictor as DDPM (Song et al., 2021): from x_t
it predicts x_0, then jumps straight to an earlier time step along the
non-Markovian path that has the same marginals q(x_t | x_0). eta scales the
fresh noise: 0 is deterministic, 1 matches DDPM's variance on the sub-chain.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from course_assistant_plugins.images.diffusion.ddpm import EpsFn, SamplerStep
from course_assistant_plugins.images.diffusion.scheduler import NoiseSchedule


def ddim_sample(schedule: NoiseSchedule, eps_fn: EpsFn, shape: tuple[int, ...], rng: np.random.Generator,
                k: int = 50, eta: float = 0.0, clip_x0: bool = True) -> Iterator[SamplerStep]:
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be between 0 and 1, got {eta}")
    timesteps = schedule.timesteps(k)  # raises a clear error when k > T
    x = rng.standard_normal(shape).astype(np.float32)
    for i, t in enumerate(timesteps, start=1):
        t = int(t)
        prev = int(timesteps[i]) if i < len(timesteps) else -1
        ab = schedule.alpha_bar[t]
        ab_prev = schedule.alpha_bar[prev] if prev >= 0 else 1.0  # past the last step: clean
        eps = eps_fn(x, t)
        x0 = schedule.predict_x0(x, eps, t)
        if clip_x0:
            x0 = np.clip(x0, -1.0, 1.0)
        sigma = float(eta) * math.sqrt((1.0 - ab_prev) / (1.0 - ab)) * math.sqrt(max(1.0 - ab / ab_prev, 0.0))
        direction = math.sqrt(max(1.0 - ab_prev - sigma**2, 0.0)) * eps
        x = math.sqrt(ab_prev) * x0 + direction
        if sigma > 0:
            x = x + sigma * rng.standard_normal(shape)
        x = x.astype(np.float32)
        yield SamplerStep(i, len(timesteps), t, x, x0.astype(np.float32))
