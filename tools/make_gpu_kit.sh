#!/usr/bin/env bash
# make gpu-kit: dist/gpu-kit/, everything mmkd needs on a machine without a package index that already
# has torch + torchvision and the common scientific stack (numpy, scipy, matplotlib,
# opencv-python-headless, pyyaml, rich, six, tqdm, pillow, packaging: the lent GPU machines' image).
#
#   dist/gpu-kit/wheels/   the OpenMMLab stack and its small pure-Python dependencies, at the versions
#                          of this checkout's set-up (.venv), for CPython 3.11 and 3.12 on x86_64
#   dist/gpu-kit/install.sh --python PY    installs them with no index, then checks the imports
#
# Usage: tools/make_gpu_kit.sh [--python PY] [--out DIR]
#   (defaults: .venv/bin/python, made by `make setup`; dist/gpu-kit)
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
kit=dist/gpu-kit
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    --out) kit=$2; shift 2 ;;
    *) echo "make_gpu_kit.sh: unknown argument '$1' (use --python PY, --out DIR)" >&2; exit 2 ;;
  esac
done
rm -rf "$kit"
mkdir -p "$kit/wheels"
pip() { "$python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2); }

# The set-up's versions: the kit installs what `make test` tested.
version() { "$python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
pure=(mmengine mmdet mmcv-lite addict yapf termcolor terminaltables platformdirs)
compiled=(pycocotools shapely)
pins=()
for name in "${pure[@]}" "${compiled[@]}"; do pins+=("$name==$(version "$name")"); done
# mmengine 0.10.7 resolves mmdet:: configs through pkg_resources, gone from setuptools >= 81.
setuptools="setuptools==$(version setuptools)"

echo "[gpu-kit] pure-Python wheels"
pip download -q --no-deps --only-binary=:all: -d "$kit/wheels" \
  "${pins[@]:0:${#pure[@]}}" "$setuptools"
for py in 3.11 3.12; do
  echo "[gpu-kit] compiled wheels for CPython $py"
  pip download -q --no-deps --only-binary=:all: --implementation cp --python-version "$py" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$kit/wheels" "${pins[@]:${#pure[@]}}"
done
echo "[gpu-kit] mmkd"
pip wheel -q --no-deps --no-build-isolation -w "$kit/wheels" .
cp tools/gpu_kit/install.sh "$kit/install.sh"
printf '%s\n' "${pins[@]}" "$setuptools" "mmkd==$("$python" -c 'import mmkd; print(mmkd.__version__)')" \
  > "$kit/requirements.txt"
size=$(du -sm "$kit" | cut -f1)
echo "[gpu-kit] $kit: $(ls "$kit/wheels" | wc -l) wheels, ${size} MiB"
if [ "$size" -gt 60 ]; then echo "[gpu-kit] over the 60 MiB budget" >&2; exit 1; fi
