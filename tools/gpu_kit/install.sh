#!/usr/bin/env bash
# Install mmkd and its OpenMMLab stack from this folder alone: no package index is used.
#
#   bash install.sh [--python PY]     (default python3)
#
# PY's environment must already have torch and torchvision (never replaced: every wheel is installed
# with --no-deps) and numpy, scipy, matplotlib, opencv (-python or -python-headless), pyyaml, rich,
# six, tqdm, pillow, packaging. Ends with an import check that prints the versions and the ops backend.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=python3
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    *) echo "install.sh: unknown argument '$1' (use --python PY)" >&2; exit 2 ;;
  esac
done
missing=$("$python" - <<'PY'
import importlib.util
need = dict(torch='torch', torchvision='torchvision', numpy='numpy', scipy='scipy', matplotlib='matplotlib',
            cv2='opencv-python-headless', yaml='pyyaml', rich='rich', six='six', tqdm='tqdm', PIL='pillow',
            packaging='packaging')
print(' '.join(name for module, name in need.items() if importlib.util.find_spec(module) is None))
PY
)
if [ -n "$missing" ]; then
  echo "install.sh: $python lacks $missing; the kit brings only what the GPU image does not have." >&2
  exit 1
fi
# mmcv-lite and a compiled mmcv own the same files: keep one.
"$python" -m pip uninstall -q -y mmcv 2>/dev/null || true
PIP_NO_INDEX=1 "$python" -m pip install -q --disable-pip-version-check --no-index --no-deps \
  --find-links "$here/wheels" -r "$here/requirements.txt"
"$python" - <<'PY'
import mmcv, mmdet, mmengine, torch, torchvision
import mmkd
import mmcv.ops  # noqa: F401  (needs mmcv._ext: compiled, or mmkd's torchvision-backed one)
from mmkd.ops import mmcv_ops_backend
print(f'[gpu-kit] ok: torch {torch.__version__} (CUDA {torch.version.cuda}, '
      f'{torch.cuda.device_count()} GPU(s)), torchvision {torchvision.__version__}, '
      f'mmengine {mmengine.__version__}, mmcv {mmcv.__version__} (ops: {mmcv_ops_backend()}), '
      f'mmdet {mmdet.__version__}, mmkd {mmkd.__version__}')
PY
