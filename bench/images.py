"""Image models: ours (conv VAE, DCGAN) against the course's reference models.

The course's reference VAE (dense, 2-d latent) and dense GAN are re-created
below from the course text, as the baseline. Every model trains on the same
digits (the training split) for the same wall-clock budget, in this one run,
and every model is scored by the same evaluator (FID/KID in the feature space
of our digit classifier, against the held-out test split).

    python bench/images.py [--budget SECONDS] [--n 1000] [--figures docs/images]

Prints one row per model and the ratios ours/course: FID (lower is better)
and training images per second (higher is better).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


# --- The course's reference VAE (dense encoder/decoder, latent_dim 2, batch 64) ---------------
def course_vae(x_train: np.ndarray, budget: float, seed: int) -> tuple[callable, dict]:
    import tensorflow as tf
    from tensorflow import keras
    from tensorflow.keras import layers

    keras.utils.set_random_seed(seed)
    original_dim, intermediate_dim, latent_dim = 28 * 28, 256, 2

    class Encoder(layers.Layer):
        def __init__(self, latent_dim, intermediate_dim, name="encoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.flatten = layers.Flatten()
            self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
            self.dense_mean = layers.Dense(latent_dim, name="z_mean")
            self.dense_log_var = layers.Dense(latent_dim, name="z_log_var")

        def call(self, inputs):
            x = self.dense_proj(self.flatten(inputs))
            return self.dense_mean(x), self.dense_log_var(x)

    class Sampling(layers.Layer):
        def call(self, inputs):
            z_mean, z_log_var = inputs
            epsilon = tf.random.normal(shape=tf.shape(z_mean))
            return z_mean + tf.exp(0.5 * z_log_var) * epsilon

    class Decoder(layers.Layer):
        def __init__(self, original_dim, intermediate_dim, name="decoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
            self.dense_output = layers.Dense(original_dim, activation="sigmoid")
            self.reshape = layers.Reshape((28, 28, 1))

        def call(self, inputs):
            return self.reshape(self.dense_output(self.dense_proj(inputs)))

    class VAE(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.encoder = Encoder(latent_dim, intermediate_dim)
            self.sampling = Sampling()
            self.decoder = Decoder(original_dim, intermediate_dim)
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

        def call(self, inputs):
            z_mean, z_log_var = self.encoder(inputs)
            return self.decoder(self.sampling((z_mean, z_log_var))), z_mean, z_log_var

        @property
        def metrics(self):
            return [self.total_loss_tracker]

        def train_step(self, data):
            with tf.GradientTape() as tape:
                reconstruction, z_mean, z_log_var = self(data)
                reconstruction_loss = tf.reduce_mean(tf.reduce_sum(
                    keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
                kl_loss = -0.5 * (1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))
                kl_loss = tf.reduce_mean(tf.reduce_sum(kl_loss, axis=1))
                total_loss = reconstruction_loss + kl_loss
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.total_loss_tracker.update_state(total_loss)
            return {"loss": self.total_loss_tracker.result()}

    class Budget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.start, self.batches = time.perf_counter(), 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if time.perf_counter() - self.start >= budget:
                self.model.stop_training = True

    vae = VAE()
    vae.compile(optimizer=keras.optimizers.Adam())
    stopper = Budget()
    vae.fit(x_train, epochs=100_000, batch_size=64, verbose=0, callbacks=[stopper])
    seconds = time.perf_counter() - stopper.start

    def generate(n: int) -> np.ndarray:
        return vae.decoder(tf.random.normal((n, latent_dim))).numpy()

    return generate, {"images": stopper.batches * 64, "seconds": seconds}


# --- The course's reference GAN (dense generator and discriminator, batch 64, Adam 1e-4) --------
def course_gan(x_train: np.ndarray, budget: float, seed: int) -> tuple[callable, dict]:
    """The course's dense GAN. As printed, its generator reshapes to (7, 7, 256) and then
    keeps applying Dense layers, which yields (7, 7, 784) instead of 784 pixels; its own
    comment says to stick to dense layers, so the reshape is left out here."""
    import tensorflow as tf
    from tensorflow import keras
    from tensorflow.keras import layers

    keras.utils.set_random_seed(seed)
    latent_dim, image_dim, BATCH_SIZE = 100, 784, 64
    x = x_train.reshape(len(x_train), 784) * 2.0 - 1.0  # [-1, 1] for tanh

    def make_generator_model():
        model = keras.Sequential()
        model.add(keras.Input((latent_dim,)))
        model.add(layers.Dense(7 * 7 * 256, use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Dense(256, use_bias=False))
        model.add(layers.BatchNormalization())
        model.add(layers.LeakyReLU())
        model.add(layers.Dense(image_dim, activation="tanh"))
        return model

    def make_discriminator_model():
        model = keras.Sequential()
        model.add(keras.Input((image_dim,)))
        model.add(layers.Dense(256))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))
        model.add(layers.Dense(256))
        model.add(layers.LeakyReLU())
        model.add(layers.Dropout(0.3))
        model.add(layers.Dense(1, activation="sigmoid"))
        return model

    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=False)
    generator, discriminator = make_generator_model(), make_discriminator_model()
    generator_optimizer, discriminator_optimizer = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([BATCH_SIZE, latent_dim])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
        g_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
        d_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))
        return gen_loss, disc_loss

    dataset = tf.data.Dataset.from_tensor_slices(x.astype("float32")).shuffle(len(x)).batch(BATCH_SIZE, drop_remainder=True)
    start, batches = time.perf_counter(), 0
    while time.perf_counter() - start < budget:
        for image_batch in dataset:
            train_step(image_batch)
            batches += 1
            if time.perf_counter() - start >= budget:
                break
    seconds = time.perf_counter() - start

    def generate(n: int) -> np.ndarray:
        out = generator(tf.random.normal([n, latent_dim]), training=False).numpy()
        return ((out.reshape(n, 28, 28, 1) + 1.0) / 2.0).clip(0, 1)

    return generate, {"images": batches * BATCH_SIZE, "seconds": seconds}


# --- Ours, through the plugin's own training code --------------------------------------------
def ours(model: str, context, budget: float, seed: int) -> tuple[callable, dict]:
    from assistant.events import Data, Error
    from course_assistant_plugins.images.models import model_module

    module = model_module(model)
    summary = {}
    for event in module.train(context, {"time_budget": budget, "seed": seed, "quiet": True}):
        if isinstance(event, Data):
            summary = event.obj
        elif isinstance(event, Error):
            raise RuntimeError(event.line())
    return (lambda n: module.generate(context, n, {"seed": seed})), {
        "images": summary["images"], "seconds": summary["seconds"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per model (default 60)")
    parser.add_argument("--n", type=int, default=1000, help="samples scored per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", metavar="DIR", help="write a small sample grid per model here")
    parser.add_argument("--home", metavar="DIR", help="state directory (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from assistant.config import Config, resolve_home
    from assistant.plugin import Context
    from course_assistant_plugins.images.data import load_digits_data
    from course_assistant_plugins.images.display import save_grid
    from course_assistant_plugins.images.evaluate import evaluate_samples, load_classifier
    from course_assistant_plugins.images.runtime import keras_module

    keras_module()
    context = Context(Config(resolve_home(args.home or tempfile.mkdtemp(prefix="bench-images-"))))
    train = load_digits_data("mnist", "train", context=context)
    classifier = load_classifier(context)
    print(f"data: {train.source}, {len(train)} training digits; classifier test accuracy "
          f"{classifier.meta['test_accuracy']:.3f}; budget {args.budget:g} s per model; cpus {os.cpu_count()}",
          flush=True)

    rows = {}
    rng = np.random.default_rng(args.seed)
    real = train.x[rng.choice(len(train.x), min(args.n, len(train.x)), replace=False)]
    rows["real training digits (floor)"] = {"metrics": evaluate_samples(real, context)}
    rows["uniform noise (ceiling)"] = {"metrics": evaluate_samples(rng.random((args.n, 28, 28, 1)), context)}
    runs = [("course VAE (dense, 2-d latent)", lambda: course_vae(train.x, args.budget, args.seed)),
            ("our VAE (conv, 16-d latent)", lambda: ours("vae", context, args.budget, args.seed)),
            ("course GAN (dense)", lambda: course_gan(train.x, args.budget, args.seed)),
            ("our GAN (DCGAN)", lambda: ours("gan", context, args.budget, args.seed))]
    for name, run in runs:
        generate, stats = run()
        samples = np.asarray(generate(args.n), dtype=np.float32)
        stats["images_per_second"] = stats["images"] / stats["seconds"]
        stats["metrics"] = evaluate_samples(samples, context)
        rows[name] = stats
        if args.figures:
            slug = name.split(" (")[0].lower().replace(" ", "-")
            save_grid(samples[:36], Path(args.figures) / f"bench-{slug}.png", nrow=6, scale=1)
        m = stats["metrics"]
        print(f"{name:<32} FID {m['fid']:8.2f}  KID {m['kid']:7.4f}  conf {m['confidence']:.2f}  "
              f"classes>5% {m['classes_over_5pct']:2d}  {stats['images_per_second']:8.0f} img/s "
              f"({stats['images']} images in {stats['seconds']:.1f} s)", flush=True)

    for a, b in (("our VAE (conv, 16-d latent)", "course VAE (dense, 2-d latent)"), ("our GAN (DCGAN)", "course GAN (dense)")):
        fid_ratio = rows[a]["metrics"]["fid"] / rows[b]["metrics"]["fid"]
        speed_ratio = rows[a]["images_per_second"] / rows[b]["images_per_second"]
        print(f"{a.split(' (')[0]} vs {b.split(' (')[0]}: FID ratio {fid_ratio:.2f} (lower is better), "
              f"images/s ratio {speed_ratio:.2f}x")
    for name in ("real training digits (floor)", "uniform noise (ceiling)"):
        print(f"{name:<32} FID {rows[name]['metrics']['fid']:8.2f}  KID {rows[name]['metrics']['kid']:7.4f}")
    if args.json:
        print(json.dumps(rows, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
