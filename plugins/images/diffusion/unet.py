"""The noise predictor: a small U-Net for 28x28 digits, in Keras 3.

eps_theta(x_t, t, label): residual blocks with group normalisation, a
sinusoidal embedding of the time step (plus a learned class embedding, whose
last row is the "no label" class used for classifier-free guidance), skip
connections between matching resolutions, and self-attention at the lowest
resolution (7x7). Only backend-neutral `keras.ops` are used.

The architecture is rebuilt from `UNetConfig` (stored as JSON in the
checkpoint); weights are plain arrays, so loading never runs stored code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from course_assistant_plugins.images.runtime import keras_module


@dataclass(frozen=True)
class UNetConfig:
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)  # 28x28, 14x14, 7x7
    time_dim: int = 128
    groups: int = 8
    attention: bool = True  # self-attention at the lowest resolution
    num_classes: int = 10  # 0: unconditional model
    image_size: int = 28

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["channel_mults"] = list(self.channel_mults)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "UNetConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "channel_mults" in known:
            known["channel_mults"] = tuple(int(m) for m in known["channel_mults"])
        return cls(**known)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def null_label(self) -> int:
        """The extra class index meaning "no label" (label dropout, guidance)."""
        return self.num_classes


def _layers():
    keras = keras_module()
    ops = keras.ops

    class SinusoidalEmbedding(keras.layers.Layer):
        """Integer time step -> [sin, cos] at geometric frequencies, as in transformers."""

        def __init__(self, dim: int, **kwargs):
            super().__init__(**kwargs)
            self.dim = dim

        def call(self, t):
            half = self.dim // 2
            freqs = ops.exp(-math.log(10000.0) * ops.arange(half, dtype="float32") / half)
            args = ops.cast(ops.reshape(t, (-1, 1)), "float32") * ops.reshape(freqs, (1, -1))
            return ops.concatenate([ops.sin(args), ops.cos(args)], axis=-1)

        def get_config(self):
            return {**super().get_config(), "dim": self.dim}

    return keras, ops, SinusoidalEmbedding


def build_unet(config: UNetConfig):
    """A Keras functional model: [x (B,28,28,1), t (B,), label (B,)] -> eps (B,28,28,1)."""
    keras, ops, SinusoidalEmbedding = _layers()
    L = keras.layers
    size = config.image_size

    def norm(h):
        return L.GroupNormalization(groups=min(config.groups, h.shape[-1]), epsilon=1e-5)(h)

    def res_block(h, emb, channels):
        skip = h if h.shape[-1] == channels else L.Conv2D(channels, 1)(h)
        h = L.Conv2D(channels, 3, padding="same")(L.Activation("silu")(norm(h)))
        # The time (and class) embedding shifts every channel of the block.
        shift = L.Dense(channels)(L.Activation("silu")(emb))
        h = h + L.Reshape((1, 1, channels))(shift)
        h = L.Conv2D(channels, 3, padding="same")(L.Activation("silu")(norm(h)))
        return skip + h

    def attention(h):
        side, channels = h.shape[1], h.shape[-1]
        flat = L.Reshape((side * side, channels))(norm(h))
        attended = L.MultiHeadAttention(num_heads=4, key_dim=max(channels // 4, 8))(flat, flat)
        return h + L.Reshape((side, side, channels))(attended)

    x_in = keras.Input((size, size, 1), name="x_t")
    t_in = keras.Input((), dtype="int32", name="t")
    label_in = keras.Input((), dtype="int32", name="label")

    emb = SinusoidalEmbedding(config.time_dim)(t_in)
    emb = L.Dense(config.time_dim, activation="silu")(emb)
    emb = L.Dense(config.time_dim)(emb)
    if config.conditional:
        emb = emb + L.Embedding(config.num_classes + 1, config.time_dim)(label_in)

    channels = [config.base_channels * m for m in config.channel_mults]
    h = L.Conv2D(channels[0], 3, padding="same")(x_in)
    skips = []
    for level, ch in enumerate(channels):
        h = res_block(h, emb, ch)
        if config.attention and level == len(channels) - 1:
            h = attention(h)
        skips.append(h)
        if level < len(channels) - 1:
            h = L.Conv2D(ch, 3, strides=2, padding="same")(h)  # 28 -> 14 -> 7

    h = res_block(h, emb, channels[-1])
    if config.attention:
        h = attention(h)
    h = res_block(h, emb, channels[-1])

    for level in reversed(range(len(channels))):
        h = L.Concatenate()([h, skips[level]])
        h = res_block(h, emb, channels[level])
        if config.attention and level == len(channels) - 1:
            h = attention(h)
        if level > 0:
            h = L.UpSampling2D(2, interpolation="nearest")(h)
            h = L.Conv2D(channels[level - 1], 3, padding="same")(h)

    h = L.Activation("silu")(norm(h))
    # Zero-initialised output: training starts from "predict no noise", which is stable.
    out = L.Conv2D(1, 3, padding="same", kernel_initializer="zeros", name="eps")(h)
    inputs = [x_in, t_in, label_in]
    return keras.Model(inputs, out, name="diffusion_unet")
