#!/usr/bin/env bash
# Idempotent set-up of a virtual environment (.venv/, or $VENV): torch from this machine's disk,
# mmcv 2.1.0, mmdet, mmengine and mmkd (editable).
#
# MMCV_OPS picks the form of mmcv:
#   torchvision (default)  mmcv-lite, pure Python, installs in seconds; mmkd.ops provides the compiled
#                          ops mmdet's detectors call (nms, roi_align, ...) from torchvision
#   compiled               mmcv built with its compiled ops (tools/build_mmcv.sh: ~10 min on 2 cores
#                          the first time on a machine, then a cached wheel)
# The two own the same files (mmcv/), so switching uninstalls the other one first.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
venv=${VENV:-.venv}
ops=${MMCV_OPS:-torchvision}
start=$(date +%s)
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
rm -f "$venv"/.mmkd-setup-*   # make's stamps: the venv is about to change
pip() { "$venv/bin/python" -m pip --disable-pip-version-check "$@"; }
constraints=(-c requirements/constraints.txt)
# pip's index warnings about local file locations are noise; errors still surface.
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }
echo "[setup] torch, torchvision, setuptools"
quiet pip install -q "${constraints[@]}" torch torchvision setuptools
case "$ops" in
  torchvision)
    echo "[setup] mmcv-lite (compiled ops from torchvision through mmkd.ops)"
    pip uninstall -q -y mmcv 2>/dev/null || true
    quiet pip install -q "${constraints[@]}" mmcv-lite ;;
  compiled)
    echo "[setup] mmcv with compiled ops"
    wheel=$(bash tools/build_mmcv.sh --python "$venv/bin/python" | tail -n 1)
    pip uninstall -q -y mmcv-lite 2>/dev/null || true
    quiet pip install -q "${constraints[@]}" "$wheel" ;;
  *) echo "setup_env.sh: MMCV_OPS=$ops: use torchvision (default) or compiled" >&2; exit 2 ;;
esac
echo "[setup] mmkd (editable) with mmdet, mmengine, pycocotools"
quiet pip install -q "${constraints[@]}" -e ".[tests,demo]"
"$venv/bin/python" -c "
import mmcv.ops, mmdet, mmkd  # mmcv.ops before mmkd: the start-up hook provides its ops
from mmkd.ops import mmcv_ops_backend
import mmcv.ops
print('[setup] ok: mmcv', mmcv.__version__, '(ops:', mmcv_ops_backend() + ')', 'mmdet', mmdet.__version__, 'mmkd', mmkd.__version__)"
echo "[setup] done in $(( $(date +%s) - start )) s"
