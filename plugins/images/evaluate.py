"""Score generated digits: FID, KID, classifier confidence and class coverage.

All scores live in the feature space of a small CNN digit classifier that we
train on real training digits only (never on generator output) and cache in
<home>/models/digit_classifier/. The real reference set is the held-out test
split of the same source, which no model trains on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

CLASSIFIER_DIR = "digit_classifier"
CLASSIFIER_VERSION = 1
FEATURE_DIM = 128
BATCH = 500
_cache: dict[tuple, Any] = {}


class DigitClassifier:
    """A small CNN: logits for 10 classes and a 128-d penultimate feature."""

    def __init__(self, model: Any, meta: dict[str, Any]):
        self.model = model  # inputs -> [features, logits]
        self.meta = meta

    @staticmethod
    def build() -> Any:
        from course_assistant_plugins.images.runtime import keras_module

        keras = keras_module()
        layers = keras.layers
        inputs = keras.Input((28, 28, 1))
        h = layers.Conv2D(32, 3, activation="relu", padding="same")(inputs)
        h = layers.MaxPooling2D()(h)
        h = layers.Conv2D(64, 3, activation="relu", padding="same")(h)
        h = layers.MaxPooling2D()(h)
        h = layers.Flatten()(h)
        features = layers.Dense(FEATURE_DIM, activation="relu", name="features")(h)
        logits = layers.Dense(10, name="logits")(layers.Dropout(0.3)(features))
        return keras.Model(inputs, [features, logits], name="digit_classifier")

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features (N,128), class probabilities (N,10)) in batches."""
        images = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28, 1)
        feats, probs = [], []
        for start in range(0, len(images), BATCH):
            f, logits = self.model(images[start:start + BATCH], training=False)
            logits = np.asarray(logits, dtype=np.float64)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            feats.append(np.asarray(f, dtype=np.float64))
            probs.append(e / e.sum(axis=1, keepdims=True))
        return np.concatenate(feats), np.concatenate(probs)


def classifier_dir(context: Any) -> Path:
    return Path(context.home) / "models" / CLASSIFIER_DIR


def classifier_ready(context: Any) -> bool:
    return (classifier_dir(context) / "classifier.npz").exists()


CLASSIFIER_NOTICE = "training the evaluator's digit classifier on real training digits (once, 10-20 s)"


def train_classifier(context: Any, source: str = "mnist", epochs: int = 4, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None) -> DigitClassifier:
    """Train the evaluator's classifier on real training digits and cache it."""
    from course_assistant_plugins.images.checkpoints import save_checkpoint
    from course_assistant_plugins.images.data import load_digits_data
    from course_assistant_plugins.images.runtime import keras_module, seed_everything

    keras = keras_module()
    seed_everything(seed)
    train = load_digits_data(source, "train", context=context)
    test = load_digits_data(source, "test", context=context)
    model = DigitClassifier.build()
    trainer = keras.Model(model.input, model.outputs[1])
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    start = time.time()
    rng = np.random.default_rng(seed)
    # Small shifts make the features less brittle on slightly off-centre samples.
    for epoch in range(epochs):
        context.cancel.raise_if_cancelled()
        x = np.roll(train.x, shift=tuple(rng.integers(-1, 2, size=2)), axis=(1, 2)) if epoch else train.x
        trainer.fit(x, train.y, batch_size=64, epochs=1, verbose=0, shuffle=True)
        if progress:
            progress(epoch + 1, epochs)
    _, accuracy = trainer.evaluate(test.x, test.y, batch_size=BATCH, verbose=0)
    meta = {"version": CLASSIFIER_VERSION, "source": train.source, "train_images": len(train),
            "test_images": len(test), "test_accuracy": float(accuracy), "epochs": epochs,
            "seconds": round(time.time() - start, 1)}
    save_checkpoint(classifier_dir(context) / "classifier.npz", {"classifier": model}, meta)
    return DigitClassifier(model, meta)


def load_classifier(context: Any, train_if_missing: bool = True) -> DigitClassifier:
    """The cached classifier, trained first if missing, stale or corrupt."""
    from course_assistant_plugins.images.checkpoints import CheckpointError, read_checkpoint, restore

    path = classifier_dir(context) / "classifier.npz"
    key = ("classifier", str(path), path.stat().st_mtime_ns if path.exists() else 0)
    if key in _cache:
        return _cache[key]
    classifier = None
    if path.exists():
        try:
            ckpt = read_checkpoint(path)
            if ckpt.config.get("version") == CLASSIFIER_VERSION:
                model = DigitClassifier.build()
                restore(ckpt, {"classifier": model})
                classifier = DigitClassifier(model, ckpt.config)
        except CheckpointError:
            classifier = None  # retrain below and overwrite the bad file
    if classifier is None:
        if not train_if_missing:
            raise FileNotFoundError(f"no digit classifier in {path.parent}")
        classifier = train_classifier(context)
        key = ("classifier", str(path), path.stat().st_mtime_ns)
    _cache[key] = classifier
    return classifier


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets (Gaussian fit of each)."""
    import warnings

    from scipy import linalg

    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # singular covariances (e.g. collapsed samples) are expected here
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():  # near-singular: nudge the diagonals
            eps = np.eye(len(cov_a)) * 1e-6
            covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean)))


def kernel_distance(a: np.ndarray, b: np.ndarray, subsets: int = 20, subset_size: int = 200, seed: int = 0) -> float:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, averaged over subsets."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        return float("nan")
    d = a.shape[1]
    total = 0.0
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                  - 2 * kxy.mean())
    return float(total / subsets)


def _reference(context: Any, classifier: DigitClassifier, source: str, n_real: int,
               path: str | None = None) -> dict[str, Any]:
    from course_assistant_plugins.images.data import load_digits_data

    key = ("reference", str(context.home), id(classifier), source, path, n_real)
    if key not in _cache:
        test = load_digits_data(source, "test", path, context)
        x = test.x
        if len(x) > n_real:
            x = x[np.random.default_rng(0).choice(len(x), n_real, replace=False)]
        feats, _ = classifier.predict(x)
        where = f" {test.info['path']}" if test.info.get("path") else ""
        _cache[key] = {"features": feats, "source": test.source, "n": len(x),
                       "name": f"{test.source}{where} held-out test split ({len(x):,} images)"}
    return _cache[key]


def evaluate_samples(samples: np.ndarray, context: Any, n_real: int = 2000, source: str = "mnist",
                     path: str | None = None) -> dict[str, Any]:
    """FID/KID against held-out real images of `source` (a folder: its test split),
    plus confidence and class coverage.

    `samples`: (N, 28, 28, 1) in [0, 1]. Lower FID and KID are better;
    coverage_entropy is in bits (uniform over 10 classes: log2(10) = 3.32).
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 3:
        samples = samples[..., None]
    if samples.ndim != 4 or samples.shape[1:] != (28, 28, 1) or len(samples) < 2:
        raise ValueError(f"expected at least 2 samples shaped (N, 28, 28, 1), got {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("samples contain NaN or infinite values")
    samples = samples.clip(0.0, 1.0)
    classifier = load_classifier(context)
    ref = _reference(context, classifier, source, n_real, path)
    feats, probs = classifier.predict(samples)
    predicted = probs.argmax(axis=1)
    hist = np.bincount(predicted, minlength=10).astype(np.float64) / len(predicted)
    nonzero = hist[hist > 0]
    return {
        "fid": frechet_distance(feats, ref["features"]),
        "kid": kernel_distance(feats, ref["features"]),
        "confidence": float(probs.max(axis=1).mean()),
        "coverage_entropy": float(-(nonzero * np.log2(nonzero)).sum()),
        "classes_over_5pct": int((hist > 0.05).sum()),
        "class_histogram": [round(float(h), 4) for h in hist],
        "n_samples": int(len(samples)),
        "n_real": int(ref["n"]),
        "reference": ref["name"],
        "classifier_test_accuracy": round(float(classifier.meta.get("test_accuracy", float("nan"))), 4),
    }


def describe(metrics: dict[str, Any]) -> str:
    """One line for people: the figures that matter."""
    return (f"FID {metrics['fid']:.2f} · KID {metrics['kid']:.4f} · confidence {metrics['confidence']:.1%} · "
            f"{metrics['classes_over_5pct']}/10 classes over 5% · coverage entropy {metrics['coverage_entropy']:.2f} bits"
            + (f" · against {metrics['reference']}" if metrics.get("reference") else ""))


def dumps(metrics: dict[str, Any]) -> str:
    return json.dumps(metrics)
