"""Import Keras lazily, with TensorFlow as the default backend and sane threading.

Every image module calls `keras_module()` inside its functions instead of
importing keras at module level, so the plugin package stays light to import.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def keras_module() -> Any:
    """The `keras` module, configured once per process.

    The backend comes from $KERAS_BACKEND (default tensorflow). On a small
    shared CPU, TensorFlow's default thread pools oversubscribe the cores, so
    we cap them at the core count ($ASSISTANT_THREADS overrides).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    threads = int(os.environ.get("ASSISTANT_THREADS", "0") or 0) or min(os.cpu_count() or 2, 8)
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # the runtime was already initialised by someone else
            pass
    elif os.environ["KERAS_BACKEND"] == "torch":
        import torch

        torch.set_num_threads(threads)
    import keras

    return keras


def backend_name() -> str:
    return keras_module().backend.backend()


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy and the Keras backend (None: leave random)."""
    if seed is None:
        return
    keras_module().utils.set_random_seed(int(seed))
