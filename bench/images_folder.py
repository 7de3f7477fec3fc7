"""The folder experiment: a user's folder of real MNIST PNGs, ours against the course's models.

The 4,000 training digits of the bundled MNIST set are written as 28x28 PNG
files into one folder (no labels), as a user would have them. Our VAE, GAN and
diffusion model train on that folder through the plugin (`--data DIR`: its
80% train split, 3,200 images); the course's VAE, GAN and DDPM (re-created in
bench/images.py and bench/diffusion.py) train on the very same 3,200 prepared
images; every model gets the same wall-clock budget in this one run. Then our
three models train on the built-in MNIST source and on the same digits read
from PNGs, for the two data paths side by side (below). All samples are
scored by the same evaluator against the 1,000 held-out real MNIST digits,
which are not in the folder.

The data-path comparison is matched so that only the path differs: the folder
side reads a labelled copy of the digits (sub-folders 0-9), so diffusion is
class-conditional on both sides, and both sides train on the same number of
images (a fixed epoch count each, not a time budget, so machine load cannot
change the result). `--path-seeds 0,1` repeats it per seed to show the noise.

    python bench/images_folder.py [--budget 300] [--n 1000] [--figures docs/images] [--json]
    python bench/images_folder.py --skip-course --path-seeds 0,1    # the data-path comparison alone

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


# Training images per model for the data-path comparison: about 300 s each on a quiet 2-core machine.
PATH_IMAGES = {"vae": 1_600_000, "gan": 800_000, "diffusion": 32_000}


def export_pngs(images: np.ndarray, folder: Path, labels: np.ndarray | None = None) -> None:
    """One 28x28 PNG per digit; with labels, in sub-folders 0-9 as a user labels them."""
    from PIL import Image as PILImage

    for i, img in enumerate(images):
        target = folder / str(int(labels[i])) if labels is not None else folder
        target.mkdir(parents=True, exist_ok=True)
        PILImage.fromarray((img[..., 0] * 255).round().astype(np.uint8)).save(target / f"digit-{i:05d}.png")


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


def train_ours(model: str, context, options: dict, seed: int, data: str) -> tuple[dict, callable]:
    """Train through the plugin with `options` (a time budget or epochs); returns stats and a sampler."""
    from assistant.events import Data, Error
    from course_assistant_plugins.images.models import model_module

    module = model_module(model)
    info: dict = {}
    for event in module.train(context, dict(options, seed=seed, quiet=True, data=data)):
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
    parser.add_argument("--skip-builtin", action="store_true", help="leave out the data-path comparison")
    parser.add_argument("--skip-course", action="store_true", help="leave out the course models and our folder runs")
    parser.add_argument("--path-seeds", default="0", help="seeds of the data-path comparison (default 0)")
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
    for kind in ("folder", "labelled", "builtin"):
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
    budget = {"time_budget": args.budget}
    for model in models if not args.skip_course else ():
        generate, stats = course[model](folder_train.x, args.budget, args.seed)
        if "images" not in stats:  # the course DDPM reports batches (of 128) and images/s
            stats = dict(stats, images=stats["batches"] * 128, seconds=stats["batches"] * 128 / stats["images_per_s"])
        score(COURSE[model], generate(args.n), stats)
        stats, generate = train_ours(model, homes["folder"], budget, args.seed, str(folder))
        score(f"our {model} on the folder", generate(args.n), stats)

    seeds = [int(s) for s in args.path_seeds.split(",") if s.strip()]
    if not args.skip_builtin:
        labelled = work / "my-digits-labelled"
        export_pngs(mnist_train.x, labelled, mnist_train.y)
        labelled_train = load_digits_data(str(labelled), "train")
        sides = {"built-in MNIST": ("builtin", "mnist", len(mnist_train)),
                 "labelled PNG folder": ("labelled", str(labelled), len(labelled_train))}
        for model in models:
            for seed in seeds:
                for side, (home, data, n_train) in sides.items():
                    epochs = max(1, round(PATH_IMAGES[model] / n_train))
                    stats, generate = train_ours(model, homes[home], {"epochs": epochs}, seed, data)
                    score(f"our {model} on {side}, seed {seed} ({epochs} epochs)", generate(args.n), stats)

    print()
    fid = {name: row["metrics"]["fid"] for name, row in rows.items()}
    for model in models if not args.skip_course else ():
        ours = fid[f"our {model} on the folder"]
        print(f"our {model} (folder) / {COURSE[model]}: FID ratio {ours / fid[COURSE[model]]:.2f} (goal <= 0.75)")
    for model in models if not args.skip_builtin else ():
        by_side = {side: [v for k, v in fid.items() if k.startswith(f"our {model} on {side},")] for side in
                   ("built-in MNIST", "labelled PNG folder")}
        print(f"our {model}: built-in MNIST FID {' / '.join(f'{v:.2f}' for v in by_side['built-in MNIST'])} vs "
              f"PNG folder {' / '.join(f'{v:.2f}' for v in by_side['labelled PNG folder'])} (seeds {args.path_seeds}, "
              f"{PATH_IMAGES[model]:,} training images each)")
    if "diffusion" in models and not args.skip_course:
        best_course = min(fid[COURSE[m]] for m in models)
        print(f"our diffusion (folder) FID {fid['our diffusion on the folder']:.2f} vs the best course model "
              f"{best_course:.2f}: {'beats' if fid['our diffusion on the folder'] < best_course else 'does not beat'} "
              f"every course model")
    if args.json:
        print(json.dumps(rows, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
