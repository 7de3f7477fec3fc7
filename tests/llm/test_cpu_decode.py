"""int8 weights for decoding: the same answers as bfloat16, with every Linear swapped."""

from __future__ import annotations

import pytest

from assistant import llm
from assistant.llm.hf_local import convert, start_load
from assistant.llm.weights import SMOLLM2

PROMPTS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Write one sentence about variational autoencoders and the reparameterization trick in deep learning.",
]


@pytest.fixture(scope="module")
def models(model_cache):
    import torch
    import transformers

    from assistant.llm.cpu_decode import quantize_weights_int8, register_attention

    path = str(convert(SMOLLM2, model_cache, "bfloat16"))
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    reference = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval()
    fast = transformers.AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.bfloat16, attn_implementation=register_attention()).eval()
    swapped = quantize_weights_int8(fast)
    return tokenizer, reference, fast, swapped


def test_every_linear_layer_including_the_head_is_int8(models):
    import torch

    from assistant.llm.cpu_decode import Int8Linear

    _, _, fast, swapped = models
    from assistant.llm.cpu_decode import GateUpMLP

    assert swapped > 0 and not any(isinstance(m, torch.nn.Linear) for m in fast.modules())
    assert all(isinstance(layer.mlp, GateUpMLP) for layer in fast.model.layers)
    assert isinstance(fast.lm_head, Int8Linear) and fast.lm_head.qweight.dtype == torch.int8


def test_int8_model_predicts_what_the_bfloat16_model_predicts(models):
    """Teacher-forced over the bfloat16 model's own replies: the int8 model's next-token choice agrees."""
    import torch

    tokenizer, reference, fast, _ = models
    agree = total = 0
    with torch.inference_mode():
        for prompt in PROMPTS:
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True)["input_ids"]
            assert ids.shape[1] > 8  # the prompt takes the dequantized path, single tokens the int8 kernel
            reply = reference.generate(ids, max_new_tokens=24, do_sample=False)
            want = reference(reply).logits[0, ids.shape[1] - 1:-1].float()
            got = fast(reply).logits[0, ids.shape[1] - 1:-1].float()
            agree += int((want.argmax(-1) == got.argmax(-1)).sum())
            total += want.shape[0]
            # Per-row int8 rounding moves a few logits: near-identical on average, never far off at any position
            # (the minimum depends on the CPU's kernels: 0.977 on an AVX-512 Xeon, above 0.98 elsewhere).
            similarity = torch.nn.functional.cosine_similarity(want, got, dim=-1)
            assert similarity.mean() > 0.99 and similarity.min() > 0.95
            # and generating token by token through the int8 kernel starts the same way
            assert torch.equal(fast.generate(ids, max_new_tokens=4, do_sample=False), reply[:, :ids.shape[1] + 4])
    assert agree / total >= 0.9, (agree, total)


def test_a_padded_batch_decodes_each_row_as_if_it_were_alone(models):
    """Left padding must be masked out by the single-token attention (batched sampling relies on it)."""
    import torch

    tokenizer, _, fast, _ = models
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
             for p in (PROMPTS[0], PROMPTS[2])]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    assert not bool(batch["attention_mask"].all())  # the prompts differ in length
    with torch.inference_mode():
        together = fast.generate(**batch, max_new_tokens=8, do_sample=False)[:, batch["input_ids"].shape[1]:]
        for row, text in enumerate(texts):
            alone = tokenizer(text, return_tensors="pt")
            single = fast.generate(**alone, max_new_tokens=8, do_sample=False)[0, alone["input_ids"].shape[1]:]
            assert tokenizer.decode(together[row], skip_special_tokens=True) == tokenizer.decode(single, skip_special_tokens=True)


def test_int8_is_the_default_and_bfloat16_stays_selectable(configure, model_cache):
    from assistant.llm.cpu_decode import Int8Linear

    context = configure("smollm2")
    assert context.config.get("llm.dtype") == "int8"
    assert isinstance(start_load(SMOLLM2, model_cache, "int8").wait().model.lm_head, Int8Linear)
    plain = start_load(SMOLLM2, model_cache, "bfloat16").wait().model
    assert not isinstance(plain.lm_head, Int8Linear)
    context = configure("smollm2", dtype="bfloat16")
    assert llm.complete(context, [{"role": "user", "content": "What is the capital of France?"}], max_tokens=8).strip()


@pytest.mark.parametrize("mask_kind", ["none", "bool", "additive"])
def test_single_token_attention_matches_pytorch_with_grouped_heads_and_masks(mask_kind):
    import torch

    from assistant.llm.cpu_decode import decode_attention

    torch.manual_seed(0)
    batch, heads, kv_heads, keys, dim = 2, 14, 2, 37, 16
    query = torch.randn(batch, heads, 1, dim)
    key, value = torch.randn(batch, kv_heads, keys, dim), torch.randn(batch, kv_heads, keys, dim)
    keep = torch.ones(batch, 1, 1, keys, dtype=torch.bool)
    keep[0, ..., :20] = False  # row 0 is left-padded
    mask = {"none": None, "bool": keep,
            "additive": torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))}[mask_kind]
    module = type("Attention", (), {"scaling": dim ** -0.5})()
    got, _ = decode_attention(module, query, key, value, mask)
    want = torch.nn.functional.scaled_dot_product_attention(
        query, key.repeat_interleave(heads // kv_heads, 1), value.repeat_interleave(heads // kv_heads, 1),
        attn_mask=None if mask is None else keep)
    assert got.shape == (batch, 1, heads, dim)
    assert torch.allclose(got, want.transpose(1, 2), atol=1e-5)


def test_saved_int8_weights_load_back_identical(models, model_cache, tmp_path):
    """The rounded weights saved at the first start are what the next start uses: same tensors, same logits."""
    import shutil

    import torch
    import transformers

    from assistant.llm.cpu_decode import int8_state, register_attention
    from assistant.llm.hf_local import INT8_FILE, quantize_cached

    tokenizer, _, fast, _ = models
    folder = tmp_path / "converted"
    shutil.copytree(convert(SMOLLM2, model_cache, "bfloat16"), folder)

    def fresh():
        return transformers.AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=torch.bfloat16, attn_implementation=register_attention()).eval()

    first = fresh()
    quantize_cached(first, folder)  # rounds and saves
    assert (folder / INT8_FILE).is_file()
    second = fresh()
    (folder / INT8_FILE).touch()
    quantize_cached(second, folder)  # reads the saved copy
    want, got = int8_state(fast), int8_state(second)
    assert want.keys() == got.keys() and want
    assert all(torch.equal(want[k], got[k]) for k in want)
    ids = tokenizer("The reparameterization trick", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        assert torch.equal(fast(ids).logits, second(ids).logits)

    (folder / INT8_FILE).write_bytes(b"not a safetensors file")  # a damaged copy is rebuilt, not trusted
    third = fresh()
    quantize_cached(third, folder)
    assert all(torch.equal(want[k], v) for k, v in int8_state(third).items())


def test_a_cpu_without_bfloat16_hardware_reads_prompts_in_float32(monkeypatch):
    import torch

    from assistant.llm import cpu_decode

    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32, bias=True).to(torch.bfloat16)
    layer = cpu_decode.Int8Linear(linear, torch.bfloat16)
    rows = torch.randn(3, cpu_decode.PROMPT_ROWS + 4, 64, dtype=torch.bfloat16)
    seen: list[torch.dtype] = []
    real_linear = torch.nn.functional.linear

    def spy(x, weight, bias=None):
        seen.append(x.dtype)
        return real_linear(x, weight, bias)

    monkeypatch.setattr(torch.nn.functional, "linear", spy)
    results = {}
    for native in (True, False):
        monkeypatch.setattr(cpu_decode, "_NATIVE_BF16", native)
        results[native] = layer(rows)
    assert seen == [torch.bfloat16, torch.float32]  # emulated bfloat16 would be ~7x slower
    assert results[False].dtype == torch.bfloat16 and results[False].shape == (3, cpu_decode.PROMPT_ROWS + 4, 32)
    torch.testing.assert_close(results[False], results[True], rtol=0.05, atol=0.05)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not cpu_decode.native_bfloat16()
