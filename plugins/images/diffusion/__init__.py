"""Diffusion model of handwritten digits: a DDPM noise predictor with DDPM and DDIM samplers.

Layout (as diffusers separates them): scheduler.py is the noise schedule in
numpy, ddpm.py and ddim.py one sampling algorithm each, unet.py the Keras
noise predictor, training.py the loop with EMA and classifier-free-guidance
label dropout, model.py guided prediction, api.py what the images plugin calls.
Importing this package stays light: Keras loads when a function runs.
"""

from __future__ import annotations

from typing import Any, Iterator


def train(context: Any, options: dict[str, Any]) -> Iterator[Any]:
    from course_assistant_plugins.images.diffusion.training import train as _train

    return _train(context, options)


def sample(context: Any, options: dict[str, Any]) -> Iterator[Any]:
    from course_assistant_plugins.images.diffusion.api import sample as _sample

    return _sample(context, options)


def generate(context: Any, n: int, options: dict[str, Any]) -> Any:
    from course_assistant_plugins.images.diffusion.api import generate as _generate

    return _generate(context, n, options)
