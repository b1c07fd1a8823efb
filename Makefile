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

.PHONY: setup run test build release bench clean-venv

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
	./target/release/flipscope bench

_cargo:
	@test -n "$(LIBTORCH)" || { echo "torch not found in $(VENV); run make setup"; exit 1; }
	PATH=$(VENV)/bin:$$PATH FLIPSCOPE_PYTHON=$(VENV)/bin/python $(CARGO) $(ARGS)
