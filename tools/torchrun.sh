#!/usr/bin/env bash
# torchrun with mmkd's defaults; used by dist_train.sh and dist_test.sh.
#   bash tools/torchrun.sh NUM_PROCS SCRIPT [args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
NPROC=$1
shift
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
  exec "${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" "$@"
