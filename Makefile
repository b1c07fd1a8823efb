# flipscope: `make run` sets up and opens the TUI on the embedded default;
# `make test` sets up and runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
TORCH_WHEEL ?= torch==2.11.0
# Another CUDA build of the same torch, e.g. https://download.pytorch.org/whl/cu126
TORCH_INDEX ?=
export LIBTORCH ?= $(shell ls -d $(VENV)/lib/python3*/site-packages/torch 2>/dev/null | head -1)
export LIBTORCH_CXX11_ABI ?= 1
CARGO ?= cargo

.PHONY: setup run test build release bench clean-venv demo-model

$(VENV)/.ready:
	@# The TUI's end-to-end test drives the real binary in tmux.
	@command -v tmux >/dev/null || apt-get install -y -q tmux >/dev/null 2>&1 || echo "note: tmux is missing; the tmux end-to-end test will say so"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) --extra-index-url https://pypi.org/simple) "$(TORCH_WHEEL)"
	$(VENV)/bin/pip install -q transformers peft pillow
	touch $@

setup: $(VENV)/.ready

# LIBTORCH is recomputed after setup, so call cargo through a sub-make.
release: setup
	$(MAKE) --no-print-directory _cargo ARGS="build --release --bin flipscope"

run: release
	./target/release/flipscope

test: setup
	$(MAKE) --no-print-directory _cargo ARGS="test --no-fail-fast"

bench: release
	./target/release/flipscope bench --python $(VENV)/bin/python

_cargo:
	@test -n "$(LIBTORCH)" || { echo "torch not found in $(VENV); run make setup"; exit 1; }
	PATH=$(VENV)/bin:$$PATH FLIPSCOPE_PYTHON=$(VENV)/bin/python $(CARGO) $(ARGS)

# Rebuilds the embedded demo model from scratch on the CPU (about 25 min on
# 2 cores): a random 2.4M-parameter Qwen2.5-VL-architecture checkpoint, a
# small BPE trained on the scenes' prompts, then full training in two
# stages on synthetic camera-perspective scenes: the two named objects alone,
# then with distractors. Held-out scenes (another seed) are evaluated.
DEMO := target/demo-model
demo-model: release
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	./target/release/flipscope model random --preset assets/demo-model/config.json --dtype f32 --seed 1 --out $(DEMO)/init
	./target/release/flipscope data tokenizer 'synth:3000#seed=11' --base assets/demo-model/tokenizer.json --vocab 1024 --out $(DEMO)/init
	cp assets/demo-model/tokenizer_config.json assets/demo-model/preprocessor_config.json $(DEMO)/init/
	./target/release/flipscope train --model $(DEMO)/init --full all --data 'synth:10000#seed=11,kinds=camera,distractors=0' \
		--lr 1e-3 --batch 8 --max-steps 700 --seed 42 --out $(DEMO)/stage1 --device cpu \
		--eval 'synth:2000#seed=7,split=test,kinds=camera,distractors=0' --eval-every 350
	./target/release/flipscope train --model $(DEMO)/stage1 --full all --data 'synth:15000#seed=12,kinds=camera' \
		--lr 1e-3 --batch 8 --max-steps 900 --seed 43 --out $(DEMO)/stage2 --device cpu \
		--eval 'synth:2000#seed=7,split=test,kinds=camera' --eval-every 300
	cp $(DEMO)/stage2/model.safetensors $(DEMO)/init/tokenizer.json assets/demo-model/
