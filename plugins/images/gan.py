"""A DCGAN for 28x28 digits (Keras 3, any backend, no GradientTape).

Both networks live in one Keras model whose `compute_loss` (keras.ops only)
yields, in a single backward pass, the discriminator's gradient of its own
loss and the generator's gradient of its own loss:

    total = D_loss(D(real), D(sg(fake))) + G_loss(D(fake)) - G_loss(D(sg(fake)))

`sg` is stop_gradient. The last two terms have the same value, so they cancel
in the total, and their gradients with respect to the discriminator's weights
cancel too; only the generator keeps a gradient from G_loss. This is the
simultaneous update of the usual two-tape loop, written once for TensorFlow,
PyTorch and JAX. The discriminator has no dropout or batch norm so its two
passes over the fakes are identical, which the cancellation relies on.
Defaults follow DCGAN practice: Adam 2e-4, beta1 0.5, one-sided label
smoothing (real target 0.9), LeakyReLU 0.2 in the discriminator.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from assistant import Data, Event, Image, Notice, Text

NAME = "gan"
DEFAULTS = {"latent_dim": 64, "data": "mnist"}
ARCH_KEYS = ("latent_dim",)
DEFAULT_EPOCHS = 20
DEFAULT_BATCH = 128
LEARNING_RATE = 2e-4
BETA_1 = 0.5
REAL_TARGET = 0.9  # one-sided label smoothing
FIXED_NOISE_SEED = 1234
COVERAGE_SAMPLES = 500
ARCH_VERSION = 2  # 2: half the filters of version 1 (64/32 and 32/64)
# Narrow layers train ~2x as many images per second on a CPU (docs/images.md);
# the discriminator runs three times per step, so its width matters most.
GENERATOR_FILTERS = (32, 16)
DISCRIMINATOR_FILTERS = (16, 32)


def build(latent_dim: int, seed: int | None = None) -> Any:
    from course_assistant_plugins.images.runtime import keras_module

    keras = keras_module()
    layers, ops = keras.layers, keras.ops

    z_in = keras.Input((latent_dim,))
    h = layers.Dense(7 * 7 * GENERATOR_FILTERS[0], use_bias=False)(z_in)
    h = layers.BatchNormalization()(h)
    h = layers.LeakyReLU(0.2)(h)
    h = layers.Reshape((7, 7, GENERATOR_FILTERS[0]))(h)
    h = layers.Conv2DTranspose(GENERATOR_FILTERS[1], 4, strides=2, padding="same", use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    h = layers.LeakyReLU(0.2)(h)
    fake = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh")(h)
    generator = keras.Model(z_in, fake, name="generator")

    x_in = keras.Input((28, 28, 1))
    h = layers.Conv2D(DISCRIMINATOR_FILTERS[0], 4, strides=2, padding="same")(x_in)
    h = layers.LeakyReLU(0.2)(h)
    h = layers.Conv2D(DISCRIMINATOR_FILTERS[1], 4, strides=2, padding="same")(h)
    h = layers.LeakyReLU(0.2)(h)
    h = layers.Flatten()(h)
    logit = layers.Dense(1)(h)
    discriminator = keras.Model(x_in, logit, name="discriminator")

    def bce_logits(logits: Any, target: float) -> Any:
        return ops.mean(ops.relu(logits) - logits * target + ops.log1p(ops.exp(-ops.abs(logits))))

    class GAN(keras.Model):
        """Input: a batch of real images in [-1, 1]; output: as many fakes."""

        def __init__(self, **kwargs: Any):
            super().__init__(**kwargs)
            self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim
            self.noise = keras.random.SeedGenerator(seed)  # None: a random stream
            self.d_tracker = keras.metrics.Mean(name="d_loss")
            self.g_tracker = keras.metrics.Mean(name="g_loss")
            self.real_tracker = keras.metrics.Mean(name="d_real")

        def call(self, real: Any, training: bool = False) -> Any:
            z = keras.random.normal((ops.shape(real)[0], self.latent_dim), seed=self.noise)
            return self.generator(z, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            fake = y_pred
            real_logits = self.discriminator(x, training=training)
            fake_logits_sg = self.discriminator(ops.stop_gradient(fake), training=training)
            fake_logits = self.discriminator(fake, training=training)
            d_loss = bce_logits(real_logits, REAL_TARGET) + bce_logits(fake_logits_sg, 0.0)
            g_loss = bce_logits(fake_logits, 1.0)
            g_loss_sg = bce_logits(fake_logits_sg, 1.0)
            self.d_tracker.update_state(d_loss)
            self.g_tracker.update_state(g_loss)
            self.real_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
            return d_loss + g_loss - g_loss_sg

        @property
        def metrics(self) -> list:
            return [self.d_tracker, self.g_tracker, self.real_tracker]

    return GAN(name="gan")


def compiled(config: dict[str, Any], seed: int | None = None) -> Any:
    from course_assistant_plugins.images.runtime import keras_module

    keras = keras_module()
    model = build(int(config["latent_dim"]), seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE, beta_1=BETA_1))
    model(np.zeros((1, 28, 28, 1), dtype=np.float32))
    model.discriminator(np.zeros((1, 28, 28, 1), dtype=np.float32))
    model.optimizer.build(model.trainable_variables)
    return model


def parts(model: Any) -> dict[str, Any]:
    return {"generator": model.generator, "discriminator": model.discriminator}


def to_unit(images: Any) -> np.ndarray:
    return ((np.asarray(images, dtype=np.float32) + 1.0) / 2.0).clip(0.0, 1.0)


def fixed_noise(latent_dim: int, n: int = 64) -> np.ndarray:
    return np.random.default_rng(FIXED_NOISE_SEED).standard_normal((n, latent_dim)).astype(np.float32)


def load(context: Any, with_discriminator: bool = False) -> tuple[Any, dict[str, Any]]:
    from course_assistant_plugins.images.checkpoints import CheckpointError, read_checkpoint, restore, sampling_checkpoint

    ckpt = read_checkpoint(sampling_checkpoint(context, NAME)[0])
    if ckpt.config.get("model") != NAME:
        raise CheckpointError(f"incompatible checkpoint {ckpt.path}: it holds a {ckpt.config.get('model')!r} model")
    model = build(int(ckpt.config["latent_dim"]))
    model(np.zeros((1, 28, 28, 1), dtype=np.float32))
    model.discriminator(np.zeros((1, 28, 28, 1), dtype=np.float32))
    restore(ckpt, parts(model) if with_discriminator else {"generator": model.generator})
    return model, ckpt.config


def coverage_notice(context: Any, generator: Any, latent_dim: int) -> tuple[dict[str, Any], Notice | None]:
    """Class coverage of fixed-noise samples, judged by the evaluator's classifier."""
    from course_assistant_plugins.images.evaluate import load_classifier

    classifier = load_classifier(context)
    images = to_unit(generator(fixed_noise(latent_dim, COVERAGE_SAMPLES), training=False))
    _, probs = classifier.predict(images)
    hist = np.bincount(probs.argmax(axis=1), minlength=10) / len(probs)
    nonzero = hist[hist > 0]
    entropy = float(-(nonzero * np.log2(nonzero)).sum())
    covered = int((hist > 0.05).sum())
    stats = {"classes_over_5pct": covered, "coverage_entropy": round(entropy, 3),
             "class_histogram": [round(float(h), 3) for h in hist]}
    if covered < 7 or entropy < 2.5:
        top = int(hist.argmax())
        return stats, Notice("warning", f"possible mode collapse: fixed-noise samples cover {covered}/10 digit classes "
                                        f"(entropy {entropy:.2f} bits; {hist[top]:.0%} look like a {top}); "
                                        f"train longer, or retrain with another --seed")
    return stats, None


def train(context: Any, options: dict[str, Any]) -> Iterator[Event]:
    from course_assistant_plugins.images.checkpoints import checkpoint_path, model_dir
    from course_assistant_plugins.images.display import save_grid, save_line_plot
    from course_assistant_plugins.images.training import prepare_keras_run, run_epochs, update_history

    run = yield from prepare_keras_run(context, NAME, options, defaults=DEFAULTS, arch_keys=ARCH_KEYS,
                                       arch_version=ARCH_VERSION, default_epochs=DEFAULT_EPOCHS,
                                       default_batch=DEFAULT_BATCH, build=compiled, parts=parts)
    config, data, plan, model, start_epoch, save = (run.config, run.data, run.plan, run.model,
                                                    run.start_epoch, run.save)
    x = data.x * 2.0 - 1.0  # the generator ends in tanh
    out_dir = model_dir(context, NAME)
    noise = fixed_noise(int(config["latent_dim"]))

    def step(idx: np.ndarray) -> dict[str, float]:
        logs = model.train_on_batch(x[idx], return_dict=True)
        return {"d_loss": float(logs["d_loss"]), "g_loss": float(logs["g_loss"]), "d_real": float(logs["d_real"])}

    def after_epoch(epoch: int, means: dict[str, float]) -> Iterator[Event]:
        grid = save_grid(to_unit(model.generator(noise, training=False)), out_dir / "progress" / f"epoch-{epoch:04d}.png")
        if not options.get("quiet"):
            yield Image(str(grid), f"gan epoch {epoch}: the same 64 noise vectors every epoch")

    result = yield from run_epochs(context, plan, len(x), step, save, int(start_epoch), "gan", after_epoch)
    if result.batches == 0:
        yield Notice("warning", "no training step ran; the checkpoint was not changed")
        return
    history = update_history(out_dir / "history.json", NAME, result, start_epoch, {"data": data.source})
    losses = history.get("losses", {})
    curve = save_line_plot({k: losses[k] for k in ("d_loss", "g_loss") if k in losses}, out_dir / "losses.png",
                           "gan losses per epoch")
    yield Image(str(curve), "gan discriminator and generator losses")
    final = save_grid(to_unit(model.generator(noise, training=False)), out_dir / "fixed-noise.png")
    yield Image(str(final), "gan samples from the fixed noise")
    from course_assistant_plugins.images.evaluate import CLASSIFIER_NOTICE, classifier_ready

    if not classifier_ready(context):
        yield Notice("info", CLASSIFIER_NOTICE + " for the class-coverage check")
    coverage, warning = coverage_notice(context, model.generator, int(config["latent_dim"]))
    if warning:
        yield warning
    summary = {"action": "train", "model": NAME, "checkpoint": str(checkpoint_path(context, NAME)),
               "epochs_done": result.epochs_done, "batches": result.batches, "images": result.images,
               "seconds": round(result.seconds, 2), "images_per_second": round(result.images_per_second, 1),
               "stopped": result.stopped, "final_losses": {k: v[-1] for k, v in result.history.items()},
               "data": data.source, "latent_dim": config["latent_dim"], "coverage": coverage}
    yield Text(f"gan trained {result.batches} batches ({result.images_per_second:,.0f} images/s); "
               f"d_loss {summary['final_losses']['d_loss']:.3f}, g_loss {summary['final_losses']['g_loss']:.3f}; "
               f"{coverage['classes_over_5pct']}/10 classes; stopped by {result.stopped}.\n")
    yield Data(summary)


def generate(context: Any, n: int, options: dict[str, Any]) -> np.ndarray:
    from course_assistant_plugins.images.sampling import generate_in_batches

    model, config = load(context)
    rng = np.random.default_rng(options.get("seed"))
    latent = int(config["latent_dim"])
    return generate_in_batches(
        lambda start, count: to_unit(model.generator(rng.standard_normal((count, latent)).astype(np.float32),
                                                     training=False)), n, context)


def sample(context: Any, options: dict[str, Any]) -> Iterator[Event]:
    from course_assistant_plugins.images.sampling import check_outputs, write_samples

    check_outputs(options)
    if options.get("label") is not None:
        yield Notice("warning", "the gan is not class-conditional; --label is ignored")
    images = generate(context, int(options["n"]), options)
    yield from write_samples(images, options, f"gan: {len(images)} samples")
