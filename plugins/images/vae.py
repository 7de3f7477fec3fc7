"""A convolutional variational autoencoder for 28x28 digits (Keras 3, any backend).

The loss lives in `compute_loss` written with keras.ops only, so the same
model trains under TensorFlow (default), PyTorch or JAX via `train_on_batch`.
Beyond sampling it draws reconstructions, an interpolation between two test
digits, a latent scatter coloured by class and, for a 2-d latent, the decoded
latent grid.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from assistant import Data, Event, Image, Notice, Text

NAME = "vae"
DEFAULTS = {"latent_dim": 16, "beta": 1.0, "data": "mnist"}
ARCH_KEYS = ("latent_dim",)
DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 1024
LEARNING_RATE = 3e-3
ARCH_VERSION = 2  # 2: 8/16 filters, 2x2 encoder kernels (version 1 had 16/32 and 4x4)
# Narrow layers: on a CPU the step time, not the parameter count, decides how many
# images a time budget sees (measured in docs/images.md). The decoder keeps 4x4
# kernels for its stride-2 transposed convolutions (3x3 ones overlap unevenly: checkerboards).
FILTERS = (8, 16)
ENCODER_KERNEL = 2  # stride 2: non-overlapping 2x2 patches
DECODER_KERNEL = 4


def build(latent_dim: int, beta: float = 1.0, seed: int | None = None) -> Any:
    from course_assistant_plugins.images.runtime import keras_module

    keras = keras_module()
    layers, ops = keras.layers, keras.ops

    enc_in = keras.Input((28, 28, 1))
    h = layers.Conv2D(FILTERS[0], ENCODER_KERNEL, strides=2, padding="same", activation="relu")(enc_in)
    h = layers.Conv2D(FILTERS[1], ENCODER_KERNEL, strides=2, padding="same", activation="relu")(h)
    h = layers.Flatten()(h)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    encoder = keras.Model(enc_in, [z_mean, z_log_var], name="encoder")

    dec_in = keras.Input((latent_dim,))
    h = layers.Dense(7 * 7 * FILTERS[1], activation="relu")(dec_in)
    h = layers.Reshape((7, 7, FILTERS[1]))(h)
    h = layers.Conv2DTranspose(FILTERS[0], DECODER_KERNEL, strides=2, padding="same", activation="relu")(h)
    logits = layers.Conv2DTranspose(1, DECODER_KERNEL, strides=2, padding="same", name="pixel_logits")(h)
    decoder = keras.Model(dec_in, logits, name="decoder")

    class VAE(keras.Model):
        """Encoder -> reparameterised sample -> decoder; loss = BCE + beta * KL."""

        def __init__(self, **kwargs: Any):
            super().__init__(**kwargs)
            self.encoder, self.decoder, self.beta = encoder, decoder, float(beta)
            self.noise = keras.random.SeedGenerator(seed)  # None: a random stream
            self.recon_tracker = keras.metrics.Mean(name="reconstruction")
            self.kl_tracker = keras.metrics.Mean(name="kl")

        def call(self, x: Any, training: bool = False) -> Any:
            mean, log_var = self.encoder(x, training=training)
            eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.noise)
            z = mean + ops.exp(0.5 * log_var) * eps
            return self.decoder(z, training=training), mean, log_var

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            logits, mean, log_var = y_pred
            x = ops.convert_to_tensor(x, dtype=logits.dtype)  # torch hands over NumPy here
            # Per-pixel BCE from logits, summed over the image: log(1+e^l) - x*l, stable form.
            bce = ops.relu(logits) - logits * x + ops.log1p(ops.exp(-ops.abs(logits)))
            recon = ops.mean(ops.sum(bce, axis=(1, 2, 3)))
            kl = ops.mean(-0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=1))
            self.recon_tracker.update_state(recon)
            self.kl_tracker.update_state(kl)
            return recon + self.beta * kl

        @property
        def metrics(self) -> list:
            return [self.recon_tracker, self.kl_tracker]

    model = VAE(name="vae")
    return model


def compiled(config: dict[str, Any], seed: int | None = None) -> Any:
    from course_assistant_plugins.images.runtime import keras_module

    keras = keras_module()
    model = build(int(config["latent_dim"]), float(config["beta"]), seed)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    model(np.zeros((1, 28, 28, 1), dtype=np.float32))
    model.optimizer.build(model.trainable_variables)
    return model


def parts(model: Any) -> dict[str, Any]:
    return {"encoder": model.encoder, "decoder": model.decoder}


def decode(model: Any, z: np.ndarray) -> np.ndarray:
    logits = np.asarray(model.decoder(np.asarray(z, dtype=np.float32), training=False), dtype=np.float32)
    return 1.0 / (1.0 + np.exp(-logits))


def encode(model: Any, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    means = [np.asarray(model.encoder(x[i:i + batch], training=False)[0]) for i in range(0, len(x), batch)]
    return np.concatenate(means)


def load(context: Any) -> tuple[Any, dict[str, Any]]:
    """The trained VAE from the checkpoint (raises MissingCheckpoint / CheckpointError)."""
    from course_assistant_plugins.images.checkpoints import read_checkpoint, restore, sampling_checkpoint

    ckpt = read_checkpoint(sampling_checkpoint(context, NAME)[0])
    if ckpt.config.get("model") != NAME:
        from course_assistant_plugins.images.checkpoints import CheckpointError

        raise CheckpointError(f"incompatible checkpoint {ckpt.path}: it holds a {ckpt.config.get('model')!r} model")
    model = build(int(ckpt.config["latent_dim"]), float(ckpt.config.get("beta", 1.0)))
    model(np.zeros((1, 28, 28, 1), dtype=np.float32))
    restore(ckpt, parts(model))
    return model, ckpt.config


def train(context: Any, options: dict[str, Any]) -> Iterator[Event]:
    from course_assistant_plugins.images.checkpoints import checkpoint_path, model_dir
    from course_assistant_plugins.images.training import prepare_keras_run, run_epochs, update_history

    run = yield from prepare_keras_run(context, NAME, options, defaults=DEFAULTS, arch_keys=ARCH_KEYS,
                                       arch_version=ARCH_VERSION, default_epochs=DEFAULT_EPOCHS,
                                       default_batch=DEFAULT_BATCH, build=compiled, parts=parts)
    config, data, plan, model, start_epoch, save = (run.config, run.data, run.plan, run.model,
                                                    run.start_epoch, run.save)
    x = data.x
    out_dir = model_dir(context, NAME)

    def step(idx: np.ndarray) -> dict[str, float]:
        logs = model.train_on_batch(x[idx], return_dict=True)
        return {"loss": float(logs["reconstruction"]) + config["beta"] * float(logs["kl"]),
                "reconstruction": float(logs["reconstruction"]), "kl": float(logs["kl"])}

    result = yield from run_epochs(context, plan, len(x), step, save, int(start_epoch), "vae")
    if result.batches == 0:
        yield Notice("warning", "no training step ran; the checkpoint was not changed")
        return
    history = update_history(out_dir / "history.json", NAME, result, start_epoch, {"data": data.source})
    yield from figures(context, model, config, history)
    summary = {"action": "train", "model": NAME, "checkpoint": str(checkpoint_path(context, NAME)),
               "epochs_done": result.epochs_done, "batches": result.batches, "images": result.images,
               "seconds": round(result.seconds, 2), "images_per_second": round(result.images_per_second, 1),
               "stopped": result.stopped, "final_losses": {k: v[-1] for k, v in result.history.items()},
               "data": data.source, "latent_dim": config["latent_dim"], "beta": config["beta"]}
    yield Text(f"vae trained {result.batches} batches ({result.images_per_second:,.0f} images/s), "
               f"loss {summary['final_losses'].get('loss', float('nan')):.2f}; stopped by {result.stopped}.\n")
    yield Data(summary)


def figures(context: Any, model: Any, config: dict[str, Any], history: dict[str, Any]) -> Iterator[Event]:
    """Loss curve, reconstructions, prior samples, interpolation, latent scatter (+ grid for 2-d)."""
    from course_assistant_plugins.images.checkpoints import model_dir
    from course_assistant_plugins.images.data import DataError, load_digits_data
    from course_assistant_plugins.images.display import save_grid, save_line_plot, save_scatter, save_strip

    out = model_dir(context, NAME)
    losses = history.get("losses", {})
    yield Image(str(save_line_plot({k: losses[k] for k in ("loss", "reconstruction", "kl") if k in losses},
                                   out / "losses.png", "vae loss per epoch")), "vae losses")
    rng = np.random.default_rng(0)
    latent = int(config["latent_dim"])
    yield Image(str(save_grid(decode(model, rng.standard_normal((64, latent))), out / "prior-samples.png")),
                "vae samples from the prior")
    try:
        test = load_digits_data(config.get("data", "mnist"), "test", config.get("data_path"), context)
    except DataError:
        return
    pick = test.x[rng.choice(len(test.x), min(8, len(test.x)), replace=False)]
    recon = decode(model, encode(model, pick))
    yield Image(str(save_grid(np.concatenate([pick, recon]), out / "reconstructions.png", nrow=len(pick))),
                "vae: test digits (top) and their reconstructions (bottom)")
    if len(test.x) >= 2:
        za, zb = encode(model, test.x[:1]), encode(model, test.x[-1:])
        steps = np.linspace(0.0, 1.0, 10)[:, None]
        yield Image(str(save_strip(decode(model, (1 - steps) * za + steps * zb), out / "interpolation.png")),
                    "vae: interpolation between two test digits in latent space")
    codes = encode(model, test.x[:2000])
    if latent > 2:  # project to the two main directions
        centred = codes - codes.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        codes = centred @ vt[:2].T
    yield Image(str(save_scatter(codes, test.y[:2000], out / "latent-scatter.png",
                                 "vae latent means" + (" (PCA)" if latent > 2 else ""))),
                "vae latent space coloured by digit class")
    if latent == 2:
        axis = np.linspace(-2.5, 2.5, 15)
        grid = np.array([[x, y] for y in axis[::-1] for x in axis], dtype=np.float32)
        yield Image(str(save_grid(decode(model, grid), out / "latent-grid.png", nrow=15)),
                    "vae: decoded 2-d latent grid")


def generate(context: Any, n: int, options: dict[str, Any]) -> np.ndarray:
    from course_assistant_plugins.images.sampling import generate_in_batches

    model, config = load(context)
    rng = np.random.default_rng(options.get("seed"))
    latent = int(config["latent_dim"])
    return generate_in_batches(lambda start, count: decode(model, rng.standard_normal((count, latent))), n, context)


def sample(context: Any, options: dict[str, Any]) -> Iterator[Event]:
    from course_assistant_plugins.images.sampling import check_outputs, write_samples

    check_outputs(options)
    if options.get("label") is not None:
        yield Notice("warning", "the vae is not class-conditional; --label is ignored")
    images = generate(context, int(options["n"]), options)
    yield from write_samples(images, options, f"vae: {len(images)} samples from the prior")
