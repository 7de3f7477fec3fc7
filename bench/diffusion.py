"""Diffusion: our DDPM (U-Net, EMA, guidance) against the course's simplified DDPM,
and against our VAE and GAN, at an equal wall-clock training budget; then DDIM
(50 steps) against the full DDPM chain of the same trained model.

The course's model (a small U-Net-like net with a dense time embedding and
batch norm, T=100 linear betas, Adam 1e-4, batch 128, x in [-1, 1]) is
re-created below from the course text as the baseline, with its own sampler.
Every model trains on the same digits (the training split) for the same
budget in this one run, and is scored by the same evaluator (FID/KID in the
feature space of our digit classifier, against the held-out test split).

    python bench/diffusion.py [--budget SECONDS] [--n 500] [--chain-n 200] [--figures docs/images]

Prints one row per model and the ratios; with --figures it writes small PNGs.
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


# --- The course's simplified DDPM, re-created from the course text (the baseline) --------------
def course_ddpm(x_train: np.ndarray, budget: float, seed: int):
    import tensorflow as tf
    from tensorflow import keras
    from tensorflow.keras import layers

    keras.utils.set_random_seed(seed)
    IMG_SIZE, BATCH_SIZE, NUM_DIFFUSION_STEPS = 28, 128, 100
    beta = np.linspace(1e-4, 0.02, NUM_DIFFUSION_STEPS)
    alpha_bar = np.cumprod(1.0 - beta, axis=0)
    alpha_bar_tf = tf.constant(alpha_bar, dtype=tf.float32)

    def get_noise_predictor():
        image_input = keras.Input(shape=(IMG_SIZE, IMG_SIZE, 1))
        time_input = keras.Input(shape=(1,))
        time_embedding = layers.Dense(256)(time_input)
        time_embedding = layers.Activation("relu")(time_embedding)
        time_embedding = layers.Dense(256)(time_embedding)
        x = layers.Conv2D(32, 3, activation="relu", padding="same")(image_input)
        x = layers.BatchNormalization()(x)
        x_skip_1 = x
        x = layers.MaxPool2D(2)(x)
        x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
        x = layers.BatchNormalization()(x)
        x_skip_2 = x
        x = layers.MaxPool2D(2)(x)
        x = layers.Conv2D(128, 3, activation="relu", padding="same")(x)
        x = layers.BatchNormalization()(x)
        t = layers.Reshape((1, 1, 256))(time_embedding)
        t = layers.UpSampling2D(size=(x.shape[1], x.shape[2]))(t)
        # The course adds a 256-channel embedding to 128 channels; a 1x1 projection makes it add up.
        t = layers.Conv2D(128, 1)(t)
        x = layers.Add()([x, t])
        x = layers.Conv2DTranspose(128, 3, activation="relu", padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        x = layers.Concatenate()([x, x_skip_2])
        x = layers.Conv2DTranspose(64, 3, activation="relu", padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        x = layers.Concatenate()([x, x_skip_1])
        x = layers.Conv2DTranspose(32, 3, activation="relu", padding="same")(x)
        x = layers.BatchNormalization()(x)
        output = layers.Conv2D(1, 3, activation="linear", padding="same")(x)
        return keras.Model(inputs=[image_input, time_input], outputs=output)

    noise_predictor = get_noise_predictor()
    optimizer = keras.optimizers.Adam(learning_rate=1e-4)

    @tf.function
    def train_step(images):
        batch_size = tf.shape(images)[0]
        t = tf.random.uniform(shape=(batch_size, 1), minval=0, maxval=NUM_DIFFUSION_STEPS, dtype=tf.int32)
        t_float = tf.cast(t, tf.float32) / NUM_DIFFUSION_STEPS
        epsilon = tf.random.normal(shape=tf.shape(images))
        a = tf.reshape(tf.gather(alpha_bar_tf, t[:, 0]), (-1, 1, 1, 1))
        x_t = tf.sqrt(a) * images + tf.sqrt(1.0 - a) * epsilon
        with tf.GradientTape() as tape:
            predicted = noise_predictor([x_t, t_float], training=True)
            loss = tf.reduce_mean(tf.square(epsilon - predicted))
        grads = tape.gradient(loss, noise_predictor.trainable_variables)
        optimizer.apply_gradients(zip(grads, noise_predictor.trainable_variables))
        return loss

    data = (x_train * 2.0 - 1.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    start, batches = time.perf_counter(), 0
    while time.perf_counter() - start < budget:
        order = rng.permutation(len(data))
        for b in range(0, len(data) - BATCH_SIZE + 1, BATCH_SIZE):
            loss = train_step(data[order[b:b + BATCH_SIZE]])
            batches += 1
            if time.perf_counter() - start >= budget:
                break
    seconds = time.perf_counter() - start

    def generate_images(num_images: int) -> np.ndarray:
        x_t = tf.random.normal(shape=(num_images, IMG_SIZE, IMG_SIZE, 1))
        alpha_g = 1.0 - beta
        for t_step in reversed(range(NUM_DIFFUSION_STEPS)):
            t_in = tf.fill((num_images, 1), t_step / NUM_DIFFUSION_STEPS)
            eps = noise_predictor([x_t, t_in], training=False)
            mu = float(1.0 / np.sqrt(alpha_g[t_step])) * (
                x_t - float(beta[t_step] / np.sqrt(1.0 - alpha_bar[t_step])) * eps)
            x_t = mu + float(np.sqrt(beta[t_step])) * tf.random.normal(shape=tf.shape(x_t)) if t_step > 0 else mu
        return np.clip((x_t.numpy() + 1) / 2, 0, 1)

    return generate_images, {"batches": batches, "images_per_s": batches * BATCH_SIZE / seconds,
                             "final_loss": float(loss), "sampling_steps": NUM_DIFFUSION_STEPS}


OURS = "our DDPM (U-Net, EMA), DDIM 50 steps eta 1"


def train_ours(model: str, context, budget: float, seed: int, extra: dict | None = None) -> dict:
    from assistant.events import Data, Error
    from course_assistant_plugins.images.models import model_module

    info: dict = {}
    for event in model_module(model).train(context, dict({"time_budget": budget, "seed": seed, "quiet": True},
                                                         **(extra or {}))):
        if isinstance(event, Error):
            raise RuntimeError(event.line())
        if isinstance(event, Data) and event.obj.get("action") == "train":
            info = event.obj
    return {"batches": info.get("batches"), "images_per_s": info.get("images_per_second"),
            "final_loss": info.get("final_loss")}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per model (default 300)")
    parser.add_argument("--n", type=int, default=500, help="samples scored per model (default 500)")
    parser.add_argument("--chain-n", type=int, default=200, help="samples for DDPM chain vs DDIM (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--home", help="state directory (default: a temporary one)")
    parser.add_argument("--figures", help="write small PNG figures into this folder")
    parser.add_argument("--skip", default="", help="comma list of rows to skip: course,vae,gan")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    from assistant.config import Config, resolve_home
    from assistant.plugin import Context
    from course_assistant_plugins.images.data import load_digits_data
    from course_assistant_plugins.images.diffusion import generate
    from course_assistant_plugins.images.evaluate import evaluate_samples, load_classifier

    context = Context(Config(resolve_home(args.home or tempfile.mkdtemp(prefix="bench-diffusion-"))))
    train = load_digits_data("mnist", "train", context=context)
    classifier = load_classifier(context)
    print(f"data {train.source}: {len(train)} training digits; classifier test accuracy "
          f"{classifier.meta['test_accuracy']:.3f}; budget {args.budget:g} s per model; n {args.n}; "
          f"cpus {os.cpu_count()}; load {os.getloadavg()[0]:.1f}", flush=True)
    rows: dict[str, dict] = {}
    figures = Path(args.figures) if args.figures else None

    stats = train_ours("diffusion", context, args.budget, args.seed)
    samples, secs = timed(lambda: generate(context, args.n, {"sampler": "ddim", "steps": 50, "seed": args.seed}))
    rows[OURS] = dict(stats, sample_s=secs, metrics=evaluate_samples(samples, context))
    ours_samples = samples
    print("trained ours:", json.dumps({k: v for k, v in rows[next(iter(rows))].items() if k != "metrics"}), flush=True)

    if "course" not in skip:
        gen, stats = course_ddpm(train.x, args.budget, args.seed)
        samples, secs = timed(lambda: gen(args.n))
        rows["course DDPM (simplified, T=100)"] = dict(stats, sample_s=secs, metrics=evaluate_samples(samples, context))
        course_samples = samples
    for model in ("vae", "gan"):
        if model in skip:
            continue
        from course_assistant_plugins.images.models import model_module

        stats = train_ours(model, context, args.budget, args.seed)
        samples, secs = timed(lambda: model_module(model).generate(context, args.n, {"seed": args.seed}))
        rows[f"our {model.upper()}"] = dict(stats, sample_s=secs, metrics=evaluate_samples(samples, context))

    # The same trained diffusion model, two samplers, the same number of samples and seed.
    m = args.chain_n
    generate(context, m, {"sampler": "ddim", "steps": 1})  # compile for this batch size before timing
    full, full_s = timed(lambda: generate(context, m, {"sampler": "ddpm", "seed": args.seed + 1}))
    fast, fast_s = timed(lambda: generate(context, m, {"sampler": "ddim", "steps": 50, "eta": 1.0, "seed": args.seed + 1}))
    det, det_s = timed(lambda: generate(context, m, {"sampler": "ddim", "steps": 50, "eta": 0.0, "seed": args.seed + 1}))
    chain = {"ddpm": evaluate_samples(full, context), "ddim": evaluate_samples(fast, context),
             "ddim0": evaluate_samples(det, context)}

    print(f"\n{'model':42s} {'FID':>8s} {'KID':>8s} {'conf':>6s} {'cls>5%':>6s} {'img/s':>7s} {'batches':>7s}")
    for name, row in rows.items():
        mt = row["metrics"]
        print(f"{name:42s} {mt['fid']:8.2f} {mt['kid']:8.4f} {mt['confidence']:6.3f} {mt['classes_over_5pct']:6d} "
              f"{row['images_per_s'] or 0:7.1f} {row['batches'] or 0:7d}")
    ours_fid = rows[OURS]["metrics"]["fid"]
    for name, row in rows.items():
        if not name.startswith("our DDPM"):
            print(f"FID ratio ours / {name}: {ours_fid / row['metrics']['fid']:.3f}")
    from course_assistant_plugins.images.diffusion.api import load_model

    T = load_model(context).schedule.steps
    print(f"\nsamplers on {m} samples of the same model (T={T}):")
    print(f"  DDPM {T} steps: {full_s:7.1f} s  FID {chain['ddpm']['fid']:.2f}  KID {chain['ddpm']['kid']:.4f}")
    print(f"  DDIM  50 steps, eta 1: {fast_s:7.1f} s  FID {chain['ddim']['fid']:.2f}  KID {chain['ddim']['kid']:.4f}")
    print(f"  DDIM  50 steps, eta 0: {det_s:7.1f} s  FID {chain['ddim0']['fid']:.2f}  KID {chain['ddim0']['kid']:.4f}")
    print(f"  speed-up DDIM/DDPM: {full_s / fast_s:.1f}x; FID ratio DDIM/DDPM: eta 1 "
          f"{chain['ddim']['fid'] / chain['ddpm']['fid']:.3f}, eta 0 {chain['ddim0']['fid'] / chain['ddpm']['fid']:.3f}")

    if figures:
        from course_assistant_plugins.images.diffusion import sample as sample_events
        from course_assistant_plugins.images.display import save_grid

        figures.mkdir(parents=True, exist_ok=True)
        save_grid(ours_samples[:64], figures / "diffusion-samples.png", scale=1)
        save_grid(full[:64], figures / "diffusion-ddpm-chain.png", scale=1)
        if "course" not in skip:
            save_grid(course_samples[:64], figures / "diffusion-course.png", scale=1)
        rows_by_digit = [generate(context, 8, {"sampler": "ddim", "steps": 50, "label": d, "guidance": 3.0,
                                               "seed": args.seed + d}) for d in range(10)]
        save_grid(np.concatenate(rows_by_digit), figures / "diffusion-guided-digits.png", nrow=8, scale=1)
        out = Path(tempfile.mkdtemp()) / "sevens.png"
        for _ in sample_events(context, {"n": 16, "label": 7, "guidance": 3.0, "sampler": "ddim", "steps": 50,
                                         "seed": args.seed, "out": str(out)}):
            pass
        import shutil

        shutil.copy(out.with_name("sevens-denoising.png"), figures / "diffusion-denoising.png")
        print(f"figures written to {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
