"""Fast decoding on a CPU: int8 weights read per token, bfloat16 math for the prompt.

Decoding one token reads every weight once, so on a 2-core laptop it is bound
by memory bandwidth (~15 GB/s here): Qwen 0.5B in bfloat16 is ~1 GB per token,
which caps it near 9 tokens/s whatever the kernels do. Storing the Linear
weights as int8 with one scale per output row halves what is read
(`torch._weight_int8pack_mm` multiplies them without dequantizing), measured
at ~1.8x faster decoding.

Only the weights are quantized: activations stay bfloat16, which is why the
answers match the bfloat16 model's (dynamic int8, which also quantized
activations, broke the small models' answers). The GGUF weights were 4-6 bit
to begin with, so an 8-bit copy of them loses little.

Reading a long prompt is compute-bound instead, and the int8 kernel is slow
for many rows: a call with more than `PROMPT_ROWS` rows dequantizes the layer's
weights to bfloat16 for that call (cheap next to the matmul), or to float32 on
a CPU without bfloat16 hardware, where an emulated bfloat16 matmul is ~7x
slower than float32 (`native_bfloat16`).

The attention for a single new token is our own (`decode_attention`): PyTorch's
kernels copy the key/value cache once per query head, which cost a third of
each decoding step at a 1,000-token context.
"""

from __future__ import annotations

from typing import Any

import torch  # this module is imported only when a local model loads

PROMPT_ROWS = 8
ATTENTION = "sdpa_grouped_decode"


def native_bfloat16() -> bool:
    """This CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX), as PyTorch is allowed to use it.

    Without it (most laptops: AVX2 only) a bfloat16 matmul is emulated: reading a 1,000-token prompt took
    Qwen 0.5B 38 s instead of 5 s in float32 (measured with PyTorch limited to AVX2, docs/llm.md).
    """
    from assistant.llm.cpuinfo import cpu_has_bfloat16

    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AMX"):
        return False  # also when ATEN_CPU_CAPABILITY limits PyTorch to AVX2
    return cpu_has_bfloat16()


_NATIVE_BF16: bool | None = None


def _prompt_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of a prompt-sized matmul: float32 where bfloat16 would be emulated."""
    global _NATIVE_BF16
    if dtype != torch.bfloat16:
        return dtype
    if _NATIVE_BF16 is None:
        _NATIVE_BF16 = native_bfloat16()
    return dtype if _NATIVE_BF16 else torch.float32


class Int8Linear(torch.nn.Module):
    """A Linear layer whose weight is int8 rows times a per-row scale."""

    def __init__(self, linear: torch.nn.Linear, dtype: torch.dtype, saved: dict[str, torch.Tensor] | None = None):
        super().__init__()
        shape = (linear.out_features, linear.in_features)
        if saved is not None and {"qweight", "scale"} <= set(saved) and tuple(saved["qweight"].shape) == shape:
            qweight, scale = saved["qweight"], saved["scale"]
        else:
            weight = linear.weight.detach().float()
            scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
            qweight = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
        self.register_buffer("qweight", qweight.contiguous())
        self.register_buffer("scale", scale.to(dtype))
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().to(dtype), requires_grad=False)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        if rows.dtype != self.scale.dtype:
            rows = rows.to(self.scale.dtype)
        if rows.shape[0] > PROMPT_ROWS:
            math = _prompt_dtype(rows.dtype)
            weight = self.qweight.to(math) * self.scale.to(math)[:, None]
            bias = None if self.bias is None else self.bias.to(math)
            out = torch.nn.functional.linear(rows.to(math), weight, bias).to(rows.dtype)
        else:
            out = torch._weight_int8pack_mm(rows.contiguous(), self.qweight, self.scale)
            if self.bias is not None:
                out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


class GateUpMLP(torch.nn.Module):
    """A gated MLP (Llama/Qwen) whose gate and up projections are one int8 matmul (fewer kernel calls)."""

    def __init__(self, mlp: torch.nn.Module, dtype: torch.dtype, saved: dict[str, torch.Tensor] | None = None):
        super().__init__()
        keys = {"gate_up.qweight", "gate_up.scale", "down_proj.qweight", "down_proj.scale"}
        saved = saved if saved is not None and keys <= set(saved) else None
        fused = torch.nn.Linear(mlp.gate_proj.in_features, 2 * mlp.gate_proj.out_features, bias=False,
                                device="meta" if saved is not None else None)
        if saved is None:
            fused.weight = torch.nn.Parameter(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]),
                                              requires_grad=False)
        self.gate_up = Int8Linear(fused, dtype, _sub(saved, "gate_up"))
        self.down_proj = Int8Linear(mlp.down_proj, dtype, _sub(saved, "down_proj"))
        self.act_fn = mlp.act_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down_proj(self.act_fn(gate) * up)


def _sub(saved: dict[str, torch.Tensor] | None, prefix: str) -> dict[str, torch.Tensor] | None:
    """The entries of `saved` under `prefix.` (None when nothing was saved, or some are missing)."""
    if saved is None:
        return None
    found = {key[len(prefix) + 1:]: value for key, value in saved.items() if key.startswith(prefix + ".")}
    return found or None


def _is_gated_mlp(module: torch.nn.Module) -> bool:
    parts = [getattr(module, name, None) for name in ("gate_proj", "up_proj", "down_proj")]
    return (all(isinstance(p, torch.nn.Linear) and p.bias is None for p in parts) and hasattr(module, "act_fn")
            and parts[0].weight.shape == parts[1].weight.shape)


def quantize_weights_int8(model: Any, saved: dict[str, torch.Tensor] | None = None) -> int:
    """Swap every Linear (the output head included) for an int8-weight one; returns how many layers changed.

    A gated MLP becomes one `GateUpMLP`; a layer whose shape the int8 kernel rejects keeps its bfloat16 weights.
    `saved` is `int8_state(model)` of an earlier start (same model): its rounded weights are used as they are
    instead of rounding again (~10x less work at start-up; rounding reads every weight as float32).
    """
    dtype = next(model.parameters()).dtype
    swapped = 0

    def visit(parent: torch.nn.Module, prefix: str) -> None:
        nonlocal swapped
        for name, child in list(parent.named_children()):
            path = f"{prefix}{name}"
            if _is_gated_mlp(child):
                replacement, probe = GateUpMLP(child, dtype, _sub(saved, path)), child.gate_proj.in_features
            elif isinstance(child, torch.nn.Linear):
                replacement, probe = Int8Linear(child, dtype, _sub(saved, path)), child.in_features
            else:
                visit(child, path + ".")
                continue
            try:
                replacement(torch.zeros(1, probe, dtype=dtype))
            except RuntimeError:  # a shape the int8 kernel does not take: keep the layer as it is
                continue
            setattr(parent, name, replacement)
            swapped += 1

    with torch.inference_mode():
        visit(model, "")
    return swapped


def int8_state(model: Any) -> dict[str, torch.Tensor]:
    """The rounded weights of every int8 layer, by module path: what `quantize_weights_int8(saved=...)` takes."""
    state = {}
    for path, module in model.named_modules():
        if isinstance(module, Int8Linear):
            state[f"{path}.qweight"] = module.qweight
            state[f"{path}.scale"] = module.scale
    return state


def decode_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None, **_: Any):
    """Attention for one new token per sequence, with grouped-query heads read in place.

    PyTorch's kernels first copy every key/value head once per query head that
    shares it (7 copies of the whole cache per layer for Qwen 0.5B); grouping the
    query heads instead reads the cache once.
    """
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    scores = torch.matmul(grouped, key.transpose(-1, -2)).float()
    scores *= module.scaling if scaling is None else scaling
    if attention_mask is not None:  # [batch, 1, 1, keys]: broadcasts over the grouped heads
        mask = attention_mask[..., -key.shape[2]:]
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.matmul(weights, value)  # [batch, kv_heads, group, dim]
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def register_attention() -> str:
    """Register the attention used by `local`/`smollm2` and return its name for `from_pretrained`."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: Any, **kwargs: Any):
        if query.shape[2] == 1 and not getattr(module, "sliding_window", None):
            return decode_attention(module, query, key, value, attention_mask, **kwargs)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    return ATTENTION
