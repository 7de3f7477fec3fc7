"""Backend-agnostic training (the same code under PyTorch) and a light plugin import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TORCH_SMOKE = r"""
import json, numpy as np
from course_assistant_plugins.images.runtime import keras_module, backend_name
keras_module()
from course_assistant_plugins.images import vae, gan
from course_assistant_plugins.images.data import load_digits_data
x = load_digits_data("digits", "train").x[:32]
out = {"backend": backend_name()}
m = vae.compiled({"latent_dim": 4, "beta": 1.0})
before = [w.copy() for w in m.decoder.get_weights()]
logs = m.train_on_batch(x, return_dict=True)
out["vae_loss"] = float(logs["reconstruction"]) + float(logs["kl"])
out["vae_changed"] = any(not np.allclose(a, b) for a, b in zip(before, m.decoder.get_weights()))
g = gan.compiled({"latent_dim": 8})
bd = [w.copy() for w in g.discriminator.get_weights()]
bg = [w.copy() for w in g.generator.get_weights()]
logs = g.train_on_batch(x * 2 - 1, return_dict=True)
out["gan_losses"] = [float(logs["d_loss"]), float(logs["g_loss"])]
out["d_changed"] = any(not np.allclose(a, b) for a, b in zip(bd, g.discriminator.get_weights()))
out["g_changed"] = any(not np.allclose(a, b) for a, b in zip(bg, g.generator.get_weights()))
print(json.dumps(out))
"""


@pytest.mark.slow
def test_same_models_train_a_step_under_torch():
    env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", TORCH_SMOKE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "torch"
    assert out["vae_changed"] and out["d_changed"] and out["g_changed"]
    assert all(v == v and abs(v) < 1e6 for v in [out["vae_loss"], *out["gan_losses"]])


def test_gan_loss_gives_each_network_only_its_own_gradient():
    """The combined loss must equal the two-tape update: D gets dD_loss, G gets dG_loss."""
    import numpy as np
    import tensorflow as tf

    from course_assistant_plugins.images import gan
    from course_assistant_plugins.images.runtime import keras_module

    keras_module()
    model = gan.build(8)
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype("float32"))
    model(real)
    z = tf.random.normal((16, 8), seed=1)
    d_vars, g_vars = model.discriminator.trainable_variables, model.generator.trainable_variables

    def bce(logits, target):
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), target), logits))

    with tf.GradientTape(persistent=True) as tape:
        fake = model.generator(z, training=True)
        total = model.compute_loss(real, None, fake, training=True)
        real_logits = model.discriminator(real)
        fake_logits = model.discriminator(fake)
        d_loss = bce(real_logits, gan.REAL_TARGET) + bce(model.discriminator(tf.stop_gradient(fake)), 0.0)
        g_loss = bce(fake_logits, 1.0)
    for got, want in zip(tape.gradient(total, d_vars), tape.gradient(d_loss, d_vars)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
    for got, want in zip(tape.gradient(total, g_vars), tape.gradient(g_loss, g_vars)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)


def test_plugin_import_stays_light():
    code = ("import sys, course_assistant_plugins.images, course_assistant_plugins.images.models; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'torch', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
