"""The folder experiment: a user's folder of real MNIST PNGs, ours against the course's models.

The 4,000 training digits of the bundled MNIST set are written as 28x28 PNG
files into one folder (no labels), as a user would have them. Our VAE, GAN and
diffusion model train on that folder through the plugin (`--data DIR`: its
80% train split, 3,200 images); the course's VAE, GAN and DDPM (re-created in
bench/images.py and bench/diffusion.py) train on the very same 3,200 prepared
images; every model gets the same wall-clock budget in this one run. Then our
three models train again on the built-in MNIST source (4,000 digits), for the
two data paths side by side. All samples are scored by the same evaluator
against the 1,000 held-out real MNIST digits, which are not in the folder.

    python bench/images_folder.py [--budget 300] [--n 1000] [--figures docs/images] [--json]

Also prints the FID of the real folder digits as prepared now and as the old
preparation (every image shrunk into 20x20) left them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import numpy as np  # noqa: E402

MODELS = ("vae", "gan", "diffusion")
COURSE = {"vae": "course VAE (dense, 2-d latent)", "gan": "course GAN (dense)",
          "diffusion": "course DDPM (simplified, T=100)"}


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export_pngs(images: np.ndarray, folder: Path) -> None:
    from PIL import Image as PILImage

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        PILImage.fromarray((img[..., 0] * 255).round().astype(np.uint8)).save(folder / f"digit-{i:05d}.png")


def old_preparation(images: np.ndarray) -> np.ndarray:
    """What the plugin did before: every image, whatever its size, shrunk whole into 20x20 and centred."""
    from PIL import Image as PILImage

    out = np.zeros_like(images)
    for i, img in enumerate(images):
        box = PILImage.fromarray((img[..., 0] * 255).round().astype(np.uint8))
        box.thumbnail((20, 20), PILImage.LANCZOS)
        canvas = PILImage.new("L", (28, 28), 0)
        canvas.paste(box, ((28 - box.width) // 2, (28 - box.height) // 2))
        out[i, ..., 0] = np.asarray(canvas, dtype=np.float32) / 255.0
    return out


def _context(home: Path):
    from assistant.config import Config, resolve_home
    from assistant.plugin import Context

    return Context(Config(resolve_home(home)))


def train_ours(model: str, context, budget: float, seed: int, data: str) -> tuple[dict, callable]:
    from assistant.events import Data, Error
    from course_assistant_plugins.images.models import model_module

    module = model_module(model)
    info: dict = {}
    for event in module.train(context, {"time_budget": budget, "seed": seed, "quiet": True, "data": data}):
        if isinstance(event, Error):
            raise RuntimeError(event.line())
        if isinstance(event, Data) and isinstance(event.obj, dict) and event.obj.get("action") == "train":
            info = event.obj
    stats = {"images": info.get("images") or info.get("batches", 0) * 32, "seconds": info.get("seconds"),
             "batches": info.get("batches"), "data": info.get("data")}
    return stats, lambda n: module.generate(context, n, {"seed": seed})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per model (default 300)")
    parser.add_argument("--n", type=int, default=1000, help="samples scored per model (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="vae,gan,diffusion")
    parser.add_argument("--skip-builtin", action="store_true", help="leave out the built-in MNIST runs")
    parser.add_argument("--figures", metavar="DIR", help="write a sample grid per model here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="no-keras-mnist-")  # the bundled digits, everywhere

    from course_assistant_plugins.images.data import load_digits_data
    from course_assistant_plugins.images.display import save_grid
    from course_assistant_plugins.images.evaluate import evaluate_samples, load_classifier
    from course_assistant_plugins.images.runtime import keras_module

    keras_module()
    work = Path(tempfile.mkdtemp(prefix="bench-folder-"))
    judge = _context(work / "judge")
    mnist_train = load_digits_data("mnist", "train", context=judge)
    folder = work / "my-digits"
    export_pngs(mnist_train.x, folder)
    folder_train = load_digits_data(str(folder), "train")
    classifier = load_classifier(judge)
    homes = {}
    for kind in ("folder", "builtin"):
        homes[kind] = _context(work / kind)
        shutil.copytree(work / "judge" / "models", work / kind / "models", dirs_exist_ok=True)
    models = [m for m in args.models.split(",") if m in MODELS]
    print(f"folder {folder}: {len(folder_train)} training images of {folder_train.info['total']} PNGs "
          f"(mean ink {folder_train.x.mean():.3f}; MNIST {mnist_train.x.mean():.3f}); judge: classifier test accuracy "
          f"{classifier.meta['test_accuracy']:.3f}, reference: the 1,000 held-out MNIST digits; budget {args.budget:g} s "
          f"per model; n {args.n}; cpus {os.cpu_count()}; load {os.getloadavg()[0]:.1f}", flush=True)

    rows: dict[str, dict] = {}

    def score(name: str, samples: np.ndarray, stats: dict | None = None) -> None:
        metrics = evaluate_samples(np.asarray(samples, dtype=np.float32), judge)
        rows[name] = dict(stats or {}, metrics=metrics)
        ips = (stats or {}).get("images", 0) / (stats or {}).get("seconds", 1) if stats else 0
        print(f"{name:44s} FID {metrics['fid']:8.2f}  KID {metrics['kid']:7.4f}  conf {metrics['confidence']:.2f}  "
              f"classes>5% {metrics['classes_over_5pct']:2d}" + (f"  {ips:8.0f} img/s" if stats else ""), flush=True)
        if args.figures and stats:
            slug = name.split(" (")[0].lower().replace(" ", "-")
            save_grid(np.asarray(samples)[:36], Path(args.figures) / f"folder-{slug}.png", nrow=6, scale=1)

    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(folder_train), min(args.n, len(folder_train)), replace=False)
    score("real folder digits, prepared now (floor)", folder_train.x[pick])
    score("real folder digits, old preparation", old_preparation(folder_train.x[pick]))

    images_bench, diffusion_bench = _bench_module("images"), _bench_module("diffusion")
    course = {"vae": images_bench.course_vae, "gan": images_bench.course_gan, "diffusion": diffusion_bench.course_ddpm}
    for model in models:
        generate, stats = course[model](folder_train.x, args.budget, args.seed)
        if "images" not in stats:  # the course DDPM reports batches (of 128) and images/s
            stats = dict(stats, images=stats["batches"] * 128, seconds=stats["batches"] * 128 / stats["images_per_s"])
        score(COURSE[model], generate(args.n), stats)
        stats, generate = train_ours(model, homes["folder"], args.budget, args.seed, str(folder))
        score(f"our {model} on the folder", generate(args.n), stats)
        if not args.skip_builtin:
            stats, generate = train_ours(model, homes["builtin"], args.budget, args.seed, "mnist")
            score(f"our {model} on built-in MNIST", generate(args.n), stats)

    print()
    fid = {name: row["metrics"]["fid"] for name, row in rows.items()}
    for model in models:
        ours = fid[f"our {model} on the folder"]
        print(f"our {model} (folder) / {COURSE[model]}: FID ratio {ours / fid[COURSE[model]]:.2f} (goal <= 0.75)")
        if not args.skip_builtin:
            print(f"our {model}: built-in MNIST FID {fid[f'our {model} on built-in MNIST']:.2f} vs folder {ours:.2f}")
    if "diffusion" in models:
        best_course = min(fid[COURSE[m]] for m in models)
        print(f"our diffusion (folder) FID {fid['our diffusion on the folder']:.2f} vs the best course model "
              f"{best_course:.2f}: {'beats' if fid['our diffusion on the folder'] < best_course else 'does not beat'} "
              f"every course model")
    if args.json:
        print(json.dumps(rows, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
