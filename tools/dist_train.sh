#!/usr/bin/env bash
# Multi-process training, one process per GPU (or CPU process with gloo).
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
exec bash "$(dirname "$0")/torchrun.sh" "$NPROC" "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"
