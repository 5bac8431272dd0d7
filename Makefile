VENV := .venv
PYTHON := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.mmkd-setup

.PHONY: setup test bench clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml requirements/constraints.txt tools/setup_env.sh tools/build_mmcv.sh
	bash tools/setup_env.sh
	touch $@

test: setup
	$(PYTHON) -m pytest -q

bench: setup
	$(PYTHON) tools/benchmark_losses.py

clean:
	rm -rf $(VENV) work_dirs
