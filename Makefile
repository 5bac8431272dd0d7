VENV := .venv
PYTHON := $(VENV)/bin/python
# MMCV_OPS=torchvision (default: mmcv-lite + mmkd.ops) or compiled (mmcv built with its ops).
MMCV_OPS ?= torchvision
export MMCV_OPS
SETUP_STAMP := $(VENV)/.mmkd-setup-$(MMCV_OPS)

.PHONY: setup test test-fast test-numerics demo bench gpu-kit clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml setup.py requirements/constraints.txt tools/setup_env.sh tools/build_mmcv.sh
	bash tools/setup_env.sh
	touch $@

# The whole suite (what .ci/run calls); test-fast is the unit tier for development (no `slow` runs).
test: setup
	$(PYTHON) -m pytest -q -rs

test-fast: setup
	$(PYTHON) -m pytest -q -rs -m "not slow"

# The `numerics` tests again under other CPU kernel paths and thread counts than this machine's
# default, as on another machine of this kind: a tolerance fitted to one machine's value fails here.
NUMERICS_PATHS := "ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1" \
                  "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=SSE41 MKL_CBWR=COMPATIBLE OMP_NUM_THREADS=2"
test-numerics: setup
	@set -e; for path in $(NUMERICS_PATHS); do \
	  echo "[test-numerics] $$path"; \
	  env $$path $(PYTHON) -m pytest -q -rs -p no:cacheprovider -m numerics; \
	done

# 3 seeds per method by default; DEMO_ARGS="--seeds 1" a quick single-seed run, "--methods kd nst_poly"
# a subset, "--redo" reruns finished runs, "--device cuda --seeds 10" on a GPU.
demo: setup
	$(PYTHON) tools/demo.py $(DEMO_ARGS)

# The loss, distillation-step, throughput, input-pipeline and stop tables (docs/benchmarks.md);
# BENCH_ARGS="--device cuda" for the first three on a GPU.
bench: setup
	$(PYTHON) tools/benchmark_losses.py $(BENCH_ARGS)
	$(PYTHON) tools/benchmark_distill.py $(BENCH_ARGS)
	$(PYTHON) tools/benchmark_throughput.py $(BENCH_ARGS)
	$(PYTHON) tools/benchmark_input.py
	$(PYTHON) tools/benchmark_stop.py

# dist/gpu-kit/: wheels + install.sh for a GPU machine without a package index (README).
gpu-kit: setup
	bash tools/make_gpu_kit.sh --python $(PYTHON)

clean:
	rm -rf $(VENV) work_dirs dist
