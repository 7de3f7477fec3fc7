"""Noise schedule and sampler math (numpy only, no network)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from course_assistant_plugins.images.diffusion.ddim import ddim_sample
from course_assistant_plugins.images.diffusion.ddpm import ddpm_sample
from course_assistant_plugins.images.diffusion.scheduler import NoiseSchedule, ScheduleConfig


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule_shapes_and_end_points(kind):
    s = NoiseSchedule(ScheduleConfig.rescaled(200, kind))
    assert s.betas.shape == (200,) and np.all(s.betas > 0) and np.all(s.betas < 1)
    assert np.all(np.diff(s.alpha_bar) < 0)  # signal only ever decreases
    assert s.alpha_bar[0] > 0.99  # the first step barely changes the image
    assert s.alpha_bar[-1] < 1e-3  # x_T is (almost) pure noise
    assert np.allclose(s.posterior_variance[1:], s.betas[1:] * (1 - s.alpha_bar[:-1]) / (1 - s.alpha_bar[1:]))


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_forward_process_matches_closed_form_statistics(kind):
    s = NoiseSchedule(ScheduleConfig.rescaled(100, kind))
    rng = np.random.default_rng(0)
    x0 = np.full((20000, 1), 0.7, dtype=np.float32)
    for t in (0, 30, 99):
        xt = s.add_noise(x0, rng.standard_normal(x0.shape).astype(np.float32), t)
        ab = s.alpha_bar[t]
        assert xt.mean() == pytest.approx(np.sqrt(ab) * 0.7, abs=0.02)
        assert xt.var() == pytest.approx(1 - ab, abs=0.02 + 0.03 * (1 - ab))
    # Per-sample time steps broadcast over the image axes.
    batch = s.add_noise(np.ones((3, 4, 4, 1), np.float32), np.zeros((3, 4, 4, 1), np.float32), np.array([0, 50, 99]))
    assert np.allclose(batch[:, 0, 0, 0], np.sqrt(s.alpha_bar[[0, 50, 99]]))


def test_config_round_trips_through_json():
    for config in (ScheduleConfig(), ScheduleConfig.rescaled(250, "linear"), ScheduleConfig(steps=40, kind="cosine")):
        text = config.to_json()
        assert json.loads(text)["steps"] == config.steps
        again = ScheduleConfig.from_json(text)
        assert again == config
        assert np.array_equal(NoiseSchedule(again).betas, NoiseSchedule(config).betas)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="unknown noise schedule"):
        ScheduleConfig(kind="quadratic")
    with pytest.raises(ValueError, match="at least 2"):
        ScheduleConfig(steps=1)


def test_ddim_timesteps_and_k_larger_than_t():
    s = NoiseSchedule(ScheduleConfig.rescaled(100))
    ts = s.timesteps(10)
    assert len(ts) == 10 and ts[0] == 99 and ts[-1] == 0 and np.all(np.diff(ts) < 0)
    assert len(s.timesteps(100)) == 100 and len(set(s.timesteps(100))) == 100
    with pytest.raises(ValueError, match="more than the 100 steps"):
        s.timesteps(101)
    with pytest.raises(ValueError, match="at least 1"):
        s.timesteps(0)
    with pytest.raises(ValueError, match="more than the 100 steps"):
        next(ddim_sample(s, lambda x, t: x, (1, 2), np.random.default_rng(0), k=500))


def _oracle(s: NoiseSchedule, target: np.ndarray):
    """The exact noise predictor when the data is one known image."""
    def eps(x, t):
        ab = s.alpha_bar[t]
        return (x - np.sqrt(ab) * target) / np.sqrt(1 - ab)
    return eps


def test_samplers_recover_the_only_training_image():
    s = NoiseSchedule(ScheduleConfig.rescaled(60))
    target = np.linspace(-0.9, 0.9, 16, dtype=np.float32).reshape(1, 4, 4, 1)
    for sampler in (lambda rng: ddpm_sample(s, _oracle(s, target), (3, 4, 4, 1), rng),
                    lambda rng: ddim_sample(s, _oracle(s, target), (3, 4, 4, 1), rng, k=12, eta=0.0),
                    lambda rng: ddim_sample(s, _oracle(s, target), (3, 4, 4, 1), rng, k=12, eta=1.0)):
        steps = list(sampler(np.random.default_rng(1)))
        assert [st.index for st in steps] == list(range(1, len(steps) + 1))
        assert np.allclose(steps[-1].x, np.broadcast_to(target, (3, 4, 4, 1)), atol=1e-3)


def test_ddim_eta_zero_is_deterministic_given_the_start_noise():
    s = NoiseSchedule(ScheduleConfig.rescaled(50))
    eps = lambda x, t: 0.3 * x + 0.01 * t  # noqa: E731 - any fixed predictor
    rng = np.random.default_rng(5)
    a = list(ddim_sample(s, eps, (2, 3), rng, k=10, eta=0.0))[-1].x
    # eta = 0 draws nothing after the start noise...
    only_start = np.random.default_rng(5)
    only_start.standard_normal((2, 3))
    assert rng.bit_generator.state == only_start.bit_generator.state
    b = list(ddim_sample(s, eps, (2, 3), np.random.default_rng(5), k=10, eta=0.0))[-1].x
    assert np.array_equal(a, b)
    # ...while eta = 1 injects fresh noise at each step.
    c = list(ddim_sample(s, eps, (2, 3), np.random.default_rng(5), k=10, eta=1.0))[-1].x
    assert not np.allclose(a, c)
    with pytest.raises(ValueError, match="eta"):
        next(ddim_sample(s, eps, (2, 3), np.random.default_rng(5), k=10, eta=1.5))


def test_ddim_with_every_step_and_eta_one_is_ddpm():
    """Song et al.: DDIM over all T steps with eta=1 is exactly DDPM's ancestral sampler."""
    s = NoiseSchedule(ScheduleConfig.rescaled(40, "linear"))
    eps = lambda x, t: np.tanh(x) * (0.5 + t / 80)  # noqa: E731
    ddpm = list(ddpm_sample(s, eps, (4, 5), np.random.default_rng(3), clip_x0=False))
    ddim = list(ddim_sample(s, eps, (4, 5), np.random.default_rng(3), k=40, eta=1.0, clip_x0=False))
    assert len(ddpm) == len(ddim) == 40
    for a, b in zip(ddpm, ddim):
        assert a.t == b.t
        assert np.allclose(a.x, b.x, atol=1e-4)
