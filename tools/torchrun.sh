#!/usr/bin/env bash
# torchrun with mmkd's defaults; used by dist_train.sh and dist_test.sh.
#   bash tools/torchrun.sh NUM_PROCS SCRIPT [args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node. TORCHRUN_ARGS: more torchrun
# options, e.g. "--max-restarts=3" (a relaunched tools/train.py resumes from its work dir).
# The interpreter: $PYTHON, else this checkout's .venv (make setup), else python3 on the PATH.
set -euo pipefail
NPROC=$1
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then PYTHON=$repo/.venv/bin/python; else PYTHON=python3; fi
fi
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
  exec "$PYTHON" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
  ${TORCHRUN_ARGS:-} "$@"
