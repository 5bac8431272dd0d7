VENV := .venv
PYTHON := $(VENV)/bin/python
# MMCV_OPS=torchvision (default: mmcv-lite + mmkd.ops) or compiled (mmcv built with its ops).
MMCV_OPS ?= torchvision
export MMCV_OPS
SETUP_STAMP := $(VENV)/.mmkd-setup-$(MMCV_OPS)

.PHONY: setup test demo bench gpu-kit clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml requirements/constraints.txt tools/setup_env.sh tools/build_mmcv.sh
	bash tools/setup_env.sh
	touch $@

test: setup
	$(PYTHON) -m pytest -q -rs

# DEMO_ARGS="--methods kd nst_poly" runs a subset; "--redo" reruns finished runs.
demo: setup
	$(PYTHON) tools/demo.py $(DEMO_ARGS)

# The loss table, the distillation-step table and the input-pipeline table (docs/benchmarks.md);
# BENCH_ARGS="--device cuda" for the first two on a GPU.
bench: setup
	$(PYTHON) tools/benchmark_losses.py $(BENCH_ARGS)
	$(PYTHON) tools/benchmark_distill.py $(BENCH_ARGS)
	$(PYTHON) tools/benchmark_input.py

# dist/gpu-kit/: wheels + install.sh for a GPU machine without a package index (README).
gpu-kit: setup
	bash tools/make_gpu_kit.sh --python $(PYTHON)

clean:
	rm -rf $(VENV) work_dirs dist
