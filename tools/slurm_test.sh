#!/usr/bin/env bash
# Evaluate a checkpoint on a Slurm cluster (OpenMMLab's interface; environment in slurm_run.sh).
#   [GPUS=8 ...] bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
exec bash "$(dirname "$0")/slurm_run.sh" "$PARTITION" "$JOB_NAME" "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" \
  --launcher slurm "$@"
