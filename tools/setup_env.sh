#!/usr/bin/env bash
# Idempotent set-up of .venv/: torch from this machine's disk, mmcv 2.1.0 with compiled ops from
# the cached wheel (built once per machine by tools/build_mmcv.sh), mmdet, mmengine and mmkd.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
start=$(date +%s)
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check "$@"; }
constraints=(-c requirements/constraints.txt)
# pip's index warnings about local file locations are noise; errors still surface.
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }
echo "[setup] torch, torchvision, setuptools"
quiet pip install -q "${constraints[@]}" torch torchvision setuptools
echo "[setup] mmcv with compiled ops"
wheel=$(bash tools/build_mmcv.sh | tail -n 1)
quiet pip install -q "${constraints[@]}" "$wheel"
echo "[setup] mmkd (editable) with mmdet, mmengine, pycocotools"
quiet pip install -q "${constraints[@]}" -e ".[tests,demo]"
.venv/bin/python -c "import mmcv.ops, mmdet, mmkd; print('[setup] ok: mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmkd', mmkd.__version__)"
echo "[setup] done in $(( $(date +%s) - start )) s"
