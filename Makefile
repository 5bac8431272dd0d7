VENV := .venv
PYTHON := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.mmkd-setup

.PHONY: setup test demo bench clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml requirements/constraints.txt tools/setup_env.sh tools/build_mmcv.sh
	bash tools/setup_env.sh
	touch $@

test: setup
	$(PYTHON) -m pytest -q

# DEMO_ARGS="--methods kd nst_poly" runs a subset; "--redo" reruns finished runs.
demo: setup
	$(PYTHON) tools/demo.py $(DEMO_ARGS)

bench: setup
	$(PYTHON) tools/benchmark_losses.py

clean:
	rm -rf $(VENV) work_dirs
