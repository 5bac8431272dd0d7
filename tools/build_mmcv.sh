#!/usr/bin/env bash
# Build mmcv 2.1.0 with compiled ops (mmcv._ext) from the registry's sdist and cache the wheel.
#
# mmcv 2.1.0 ships no wheels for current torch, and its setup.py breaks twice on it:
#   * it imports pkg_resources, which setuptools >= 81 no longer provides;
#   * it compiles with -std=c++17, while torch >= 2.10 headers require C++20.
# We patch both in a private copy of the sdist, build once, and keep the wheel under
# $MMKD_CACHE (default ~/.cache/mmkd), keyed by mmcv, torch, Python and device flavour,
# so later set-ups on the same machine only install it.
#
# Usage: tools/build_mmcv.sh [--cuda] [--python PATH]
#   --cuda           build the CUDA kernels too (set TORCH_CUDA_ARCH_LIST, e.g. "9.0" for H100/H200)
#   --python PATH    interpreter whose torch the ops are built against (default .venv/bin/python)
# Prints the path of the cached wheel on its last line.
set -euo pipefail

MMCV_VERSION=2.1.0
flavour=cpu
python=.venv/bin/python
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) flavour=cuda; shift ;;
    --python) python=$2; shift 2 ;;
    *) echo "build_mmcv.sh: unknown argument '$1' (use --cuda, --python PATH)" >&2; exit 2 ;;
  esac
done

torch_version=$("$python" -c 'import torch; print(torch.__version__.split("+")[0])')
py_tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
cache=${MMKD_CACHE:-$HOME/.cache/mmkd}/mmcv-$MMCV_VERSION-torch$torch_version-$py_tag-$flavour
if [ "$flavour" = cuda ]; then cache=$cache-sm${TORCH_CUDA_ARCH_LIST:-native}; cache=${cache// /_}; fi

existing=$(ls "$cache"/mmcv-*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$existing" ]; then
  echo "mmcv $MMCV_VERSION: cached wheel $existing" >&2
  echo "$existing"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "mmcv $MMCV_VERSION: no cached wheel in $cache; building from source (20-40 min on 2 cores)" >&2

# pip prepares an sdist's metadata even to download it; that step runs the unpatched
# setup.py, so its isolated build environment gets a setuptools that still has pkg_resources.
printf 'setuptools<81\ntorch<=%s\n' "$torch_version" > "$work/build-constraints.txt"
PIP_CONSTRAINT="$work/build-constraints.txt" "$python" -m pip download -q --no-deps \
  --no-binary :all: "mmcv==$MMCV_VERSION" -d "$work" >&2
tar xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
src=$work/mmcv-$MMCV_VERSION

"$python" - "$src/setup.py" <<'PY'
import pathlib, sys
setup = pathlib.Path(sys.argv[1])
text = setup.read_text()
old_import = 'from pkg_resources import DistributionNotFound, get_distribution, parse_version\n'
new_import = (
    'from importlib.metadata import PackageNotFoundError as DistributionNotFound\n'
    'from importlib.metadata import distribution as get_distribution\n'
    'from packaging.version import parse as parse_version\n')
assert old_import in text, 'unexpected mmcv setup.py: pkg_resources import not found'
text = text.replace(old_import, new_import)
assert "'-std=c++17'" in text, 'unexpected mmcv setup.py: -std=c++17 flag not found'
text = text.replace("'-std=c++17'", "'-std=c++20'")
setup.write_text(text)
PY

"$python" -m pip install -q ninja packaging >&2
export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
# mmcv's setup.py builds the CUDA kernels whenever it sees a GPU, FORCE_CUDA=0 or not: hide the GPUs
# from a CPU build.
if [ "$flavour" = cuda ]; then export FORCE_CUDA=1; else export FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=; fi
start=$(date +%s)
"$python" -m pip wheel -v --no-deps --no-build-isolation "$src" -w "$work/dist" >&2
echo "mmcv $MMCV_VERSION: built in $(( $(date +%s) - start )) s" >&2

mkdir -p "$cache"
cp "$work"/dist/mmcv-*.whl "$cache/"
ls "$cache"/mmcv-*.whl | head -n 1
