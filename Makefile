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

.PHONY: setup run test build release bench clean-venv demo-model fuzz grpo-vs-sft why-it-flips

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

# The property tests of tests/it/fuzz.rs with many more cases than `make
# test` runs (64 each); FUZZ_CASES sets how many.
FUZZ_CASES ?= 20000
fuzz: setup
	PROPTEST_CASES=$(FUZZ_CASES) $(MAKE) --no-print-directory _cargo ARGS="test --test it fuzz::"

bench: release
	./target/release/flipscope bench --python $(VENV)/bin/python

_cargo:
	@test -n "$(LIBTORCH)" || { echo "torch not found in $(VENV); run make setup"; exit 1; }
	PATH=$(VENV)/bin:$$PATH FLIPSCOPE_PYTHON=$(VENV)/bin/python $(CARGO) $(ARGS)

# Rebuilds the embedded demo model from scratch on the CPU (about 25 min on
# 2 cores): a random 2.4M-parameter Qwen2.5-VL-architecture checkpoint
# (rope_theta 3, so the language model's M-RoPE can tell apart the 5x5 image
# tokens of a 140-px scene; full attention in every vision block), a small BPE
# trained on the scenes' prompts, then full training in two stages on
# synthetic camera-perspective scenes with objects drawn at scale 3: the bare
# question answered in words with only the two named objects, then the
# four-option question (answered in words) with and without distractors.
# Held-out scenes (another seed) are evaluated as lmms-eval does: generate,
# then read the option the answer names.
DEMO := target/demo-model
DEMO_TEST := synth:2000\#seed=7,split=test,kinds=camera,scale=3
demo-model: release
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	./target/release/flipscope model random --preset assets/demo-model/config.json --dtype f32 --seed 1 --out $(DEMO)/init
	./target/release/flipscope data tokenizer 'synth:3000#seed=11' --base assets/demo-model/tokenizer.json --vocab 1024 --out $(DEMO)/init
	cp assets/demo-model/tokenizer_config.json assets/demo-model/preprocessor_config.json $(DEMO)/init/
	./target/release/flipscope train --model $(DEMO)/init --full all \
		--data 'synth:40000#seed=11,kinds=camera,distractors=0,options=0,scale=3' \
		--lr 1e-3 --batch 16 --max-steps 2600 --seed 42 --out $(DEMO)/stage1 --device cpu
	./target/release/flipscope train --model $(DEMO)/stage1 --full all \
		--data 'synth:40000#seed=12,kinds=camera,distractors=0,scale=3,answer=words,synth:40000#seed=13,kinds=camera,scale=3,answer=words' \
		--lr 1e-3 --batch 16 --max-steps 2400 --seed 43 --out $(DEMO)/stage2 --device cpu
	cp $(DEMO)/stage2/model.safetensors $(DEMO)/init/tokenizer.json assets/demo-model/
	./target/release/flipscope eval --model $(DEMO)/stage2 --mode generate --max-new-tokens 6 --batch 8 --limit 200 \
		--data '$(DEMO_TEST),distractors=0' --device cpu --run $(DEMO)/eval-two-objects
	./target/release/flipscope eval --model $(DEMO)/stage2 --mode generate --max-new-tokens 6 --batch 8 --limit 200 \
		--data '$(DEMO_TEST)' --device cpu --run $(DEMO)/eval-distractors

# GRPO against SFT on the embedded demo model, the same CPU budget each
# (about 25 minutes on 2 cores): LoRA on camera scenes with 1-3 distractors,
# where the demo model's SFT left it near chance. Then each of base, SFT and
# GRPO is evaluated on the held-out scenes twice: greedy (accuracy, error
# kinds) and 8 samples at temperature 1 (pass@k, maj@8, answer entropy,
# flip rate). `make grpo-vs-sft FS=path/to/flipscope` runs another binary.
FS ?= ./target/release/flipscope
GVS := target/grpo-vs-sft
GVS_TRAIN := synth:20000\#seed=21,kinds=camera,scale=3,answer=words
GVS_FT := --model assets/demo-model --data '$(GVS_TRAIN)' --batch 8 --lr 2e-4 --seed 1 --device cpu
GVS_EVAL := --model assets/demo-model --mode generate --max-new-tokens 6 --batch 8 --data '$(DEMO_TEST)' --device cpu
grpo-vs-sft:
	@test -x $(FS) || $(MAKE) --no-print-directory release
	rm -rf $(GVS) && mkdir -p $(GVS)
	$(FS) train $(GVS_FT) --method grpo --group 8 --max-completion-tokens 6 --max-steps 780 --out $(GVS)/grpo
	$(FS) train $(GVS_FT) --max-steps 6000 --out $(GVS)/sft
	for m in base sft grpo; do \
		adapter=$$([ $$m = base ] || echo "--adapter $(GVS)/$$m"); \
		$(FS) eval $(GVS_EVAL) $$adapter --run $(GVS)/greedy-$$m || exit 1; \
		$(FS) eval $(GVS_EVAL) $$adapter --samples 8 --temperature 1.0 --seed 1 --run $(GVS)/sampled-$$m || exit 1; \
	done
	$(FS) report $(GVS)/greedy-base $(GVS)/greedy-sft $(GVS)/greedy-grpo --by error
	$(FS) report $(GVS)/sampled-base $(GVS)/sampled-sft $(GVS)/sampled-grpo
	$(FS) report $(GVS)/greedy-grpo --vs $(GVS)/greedy-sft
	$(FS) report --loss $(GVS)/curves.png $(GVS)/grpo $(GVS)/sft

# Why the demo model flips left and right (README, "What the demo model
# shows"), about 6 minutes on 2 cores: its greedy answers on the 480
# held-out camera scenes (1-3 distractors) of one synthetic set; the logit
# lens, knockout and patching over all of them; left/right probes trained on
# the same set's 5,520 other scenes and scored by the model's outcome;
# steering along them; and one horizontal flip's plots in docs/why-it-flips/.
WHY := target/why-it-flips
WHY_DATA := synth:6000\#seed=9,kinds=camera,scale=3
WHY_MODEL := --model assets/demo-model --device cpu
WHY_FLIP := synth-00020
why-it-flips:
	@test -x $(FS) || $(MAKE) --no-print-directory release
	rm -rf $(WHY) && mkdir -p $(WHY) docs/why-it-flips
	$(FS) eval $(WHY_MODEL) --mode generate --max-new-tokens 6 --batch 8 --data '$(WHY_DATA),split=test' --run $(WHY)/greedy
	for x in lens knockout patch; do \
		$(FS) $$x $(WHY_MODEL) --data '$(WHY_DATA),split=test' --run $(WHY)/greedy 2>/dev/null || exit 1; \
	done
	$(FS) report $(WHY)/greedy --by error
	$(FS) probe-linear $(WHY_MODEL) --data '$(WHY_DATA)' --run $(WHY)/greedy --axes left-right \
		--out $(WHY)/probes.safetensors --plot docs/why-it-flips/probes.png
	for site in last target; do for at in site all; do \
		$(FS) steer $(WHY_MODEL) --data '$(WHY_DATA),split=test' --probes $(WHY)/probes.safetensors \
			--site $$site --at $$at --layer 2 --alpha=-4,-1,0,1,4 2>/dev/null || exit 1; \
	done; done
	for layer in 0 1; do \
		$(FS) steer $(WHY_MODEL) --data '$(WHY_DATA),split=test' --probes $(WHY)/probes.safetensors \
			--site target --at site --layer $$layer --alpha=-4,-1,0,1,4 2>/dev/null || exit 1; \
	done
	for x in lens knockout patch; do \
		$(FS) $$x $(WHY_MODEL) --data '$(WHY_DATA),split=test' --id $(WHY_FLIP) --out docs/why-it-flips/$$x-flip.png || exit 1; \
	done
