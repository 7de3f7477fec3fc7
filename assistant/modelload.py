"""One model load at a time in this process.

transformers' from_pretrained changes process-wide torch state while it builds
a model (the default dtype, and weight initialisation switched off). Two loads
overlapping in different threads (the intent router training in the background
while the LLM warms up) corrupted that state: SmolLM2 loaded afterwards in
bfloat16 wrote gibberish. Every model construction in the app holds this lock.
"""

from __future__ import annotations

import threading

MODEL_LOAD_LOCK = threading.RLock()
