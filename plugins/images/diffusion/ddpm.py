"""DDPM ancestral sampling: all T reverse steps, fresh noise at each one.

The sampler is plain numpy over a noise-prediction function `eps_fn(x_t, t)`,
so it works with any network (ours, the course's baseline, a test double).
It is a generator: each step yields a `SamplerStep`, which lets the caller
show frames, report progress and stop between steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from course_assistant_plugins.images.diffusion.scheduler import NoiseSchedule

EpsFn = Callable[[np.ndarray, int], np.ndarray]


@dataclass
class SamplerStep:
    index: int  # 1-based number of reverse steps done
    total: int  # reverse steps in the whole chain
    t: int  # the time step just denoised
    x: np.ndarray  # the sample after this step, in [-1, 1] scale
    x0: np.ndarray  # the clean image predicted at this step


def ddpm_sample(schedule: NoiseSchedule, eps_fn: EpsFn, shape: tuple[int, ...],
                rng: np.random.Generator, clip_x0: bool = True) -> Iterator[SamplerStep]:
    """x_T ~ N(0, I), then x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) for t = T..1."""
    x = rng.standard_normal(shape).astype(np.float32)
    timesteps = schedule.timesteps()
    for i, t in enumerate(timesteps, start=1):
        t = int(t)
        eps = eps_fn(x, t)
        x0 = schedule.predict_x0(x, eps, t)
        if clip_x0:  # the data lives in [-1, 1]; clipping keeps early guesses sane
            x0 = np.clip(x0, -1.0, 1.0)
        ab, ab_prev = schedule.alpha_bar[t], schedule.alpha_bar_prev[t]
        beta, alpha = schedule.betas[t], schedule.alphas[t]
        # Mean of the Gaussian posterior q(x_{t-1} | x_t, x_0) with x_0 replaced by its estimate.
        mean = (math.sqrt(ab_prev) * beta / (1.0 - ab)) * x0 + (math.sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab)) * x
        if t > 0:
            noise = rng.standard_normal(shape)
            x = mean + math.sqrt(schedule.posterior_variance[t]) * noise
        else:
            x = mean
        x = x.astype(np.float32)
        yield SamplerStep(i, len(timesteps), t, x, x0.astype(np.float32))
